package peer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"

	"github.com/spillway-rtc/spillway/dataplane"
)

// Events are the peer's callbacks. They are called from the peer's own
// goroutines, never under its locks, so they may call back into the Peer.
type Events struct {
	Up              func(h dataplane.Handoff)                      // ICE + DTLS up, keys extracted ("webrtcup")
	Down            func(reason string)                            // exactly once, after Up or instead of it
	KeyframeRequest func()                                         // PLI or FIR from the viewer
	SlowLink        func(mid, media string, uplink bool, lost int) // optional; NACK bursts
}

// Egress is the viewer's data-plane path as RTCP handling needs it.
type Egress interface {
	Retransmit(ssrc uint32, seqs []uint16) int
	Counters(ssrc uint32) (dataplane.StreamCounters, bool)
	SetPath(local, remote netip.AddrPort)
}

type egressBox struct{ e Egress }

type phase int

const (
	phaseNew      phase = iota
	phaseOffered        // agent gathered, offer completed
	phaseAnswered       // run goroutine owns the rest of the life
)

const gatherTimeout = 5 * time.Second

// Peer is the WebRTC transport of one Janus handle.
type Peer struct {
	t   *Transport
	ev  Events
	log *slog.Logger

	ctx      context.Context // canceled by shutdown
	cancel   context.CancelFunc
	stopOnce sync.Once
	finished chan struct{}  // closed after Down
	wg       sync.WaitGroup // run or the finisher
	readers  sync.WaitGroup // readLoop, dtlsReadLoop

	opMu sync.Mutex // serialises CompleteOffer, ApplyAnswer, AddCandidate

	egress      atomic.Pointer[egressBox]
	rtcpDecrypt atomic.Pointer[srtp.Context] // published after DTLS, then used by readLoop only

	mu          sync.Mutex
	reason      string
	phase       phase
	finishing   bool
	agent       *ice.Agent
	ufrag       string
	consent     *consent
	candidates  []candidateLine
	offer       *offer
	streams     []*streamState
	bySSRC      map[uint32]*streamState
	stats       peerStats
	iceState    ice.ConnectionState
	dtlsState   string
	dtlsRole    string
	profile     dataplane.Profile
	local       netip.AddrPort // selected pair
	remote      netip.AddrPort
	pairAt      time.Time
	up          bool
	upAt        time.Time
	handoffPath [2]netip.AddrPort // the pair the Handoff carried
}

// NewPeer creates a peer on the transport. Nothing happens on the wire
// until CompleteOffer and ApplyAnswer.
func (t *Transport) NewPeer(ev Events) *Peer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peer{
		t: t, ev: ev, log: t.log, ctx: ctx, cancel: cancel,
		finished: make(chan struct{}), bySSRC: map[uint32]*streamState{},
		iceState: ice.ConnectionStateNew, dtlsState: "new",
	}
	if !t.addPeer(p) {
		p.Close("transport closed")
	}
	return p
}

// CompleteOffer adds ICE-lite, DTLS and candidate attributes to the
// plugin's bare offer and records the offered streams. It can be called
// again until an answer is applied; the ICE credentials stay the same.
func (p *Peer) CompleteOffer(bare string) (string, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	if err := p.ctx.Err(); err != nil {
		return "", errors.New("peer: closed")
	}
	p.mu.Lock()
	ph, hasAgent := p.phase, p.agent != nil
	p.mu.Unlock()
	if ph == phaseAnswered {
		return "", errors.New("peer: renegotiation after the answer is not supported")
	}
	if !hasAgent {
		if err := p.newAgent(); err != nil {
			return "", err
		}
	}
	p.mu.Lock()
	c := completion{ufrag: p.ufrag, pwd: p.consent.pwd, fingerprint: p.t.fingerprint, candidates: p.candidates}
	p.mu.Unlock()
	sdpOut, o, err := completeOffer(bare, c)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return "", errors.New("peer: closed")
	}
	p.offer, p.phase = o, phaseOffered
	return sdpOut, nil
}

// newAgent creates the ICE-lite agent on the transport's mux and gathers
// its host candidates.
func (p *Peer) newAgent() error {
	ufrag := rand.Text()[:16]
	pwd := rand.Text() // 26 base32 characters: above ICE's 22 minimum
	cfg := p.t.cfg
	agent, err := ice.NewAgentWithOptions(
		ice.WithICELite(true),
		ice.WithUDPMux(p.t.mux),
		ice.WithNetworkTypes(p.t.networks),
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost}),
		ice.WithLocalCredentials(ufrag, pwd),
		ice.WithIncludeLoopback(),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		// Consent (RFC 7675) decides liveness; the agent's own timers,
		// which count any inbound packet, are only a backstop.
		ice.WithDisconnectedTimeout(cfg.ConsentTimeout),
		ice.WithFailedTimeout(cfg.ConsentTimeout),
		ice.WithLoggerFactory(p.t.pionLog),
	)
	if err != nil {
		return fmt.Errorf("peer: ice agent: %w", err)
	}
	_ = agent.OnConnectionStateChange(p.onICEState)
	_ = agent.OnSelectedCandidatePairChange(p.onPairChange)
	var gathered []ice.Candidate
	done := make(chan struct{})
	_ = agent.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(done)
			return
		}
		gathered = append(gathered, c)
	})
	if err := agent.GatherCandidates(); err != nil {
		_ = agent.Close()
		return fmt.Errorf("peer: gather: %w", err)
	}
	select {
	case <-done:
	case <-time.After(gatherTimeout):
		_ = agent.Close()
		return errors.New("peer: gathering timed out")
	}
	var cands []candidateLine
	for _, c := range gathered {
		ip, err := netip.ParseAddr(c.Address())
		if err != nil {
			continue
		}
		adv := p.t.advertised(ip.Unmap())
		cands = append(cands, candidateLine{
			value: fmt.Sprintf("%s %d udp %d %s %d typ host", c.Foundation(), c.Component(), c.Priority(), adv, c.Port()),
			addr:  adv, port: c.Port(),
		})
	}
	if len(cands) == 0 {
		_ = agent.Close()
		return errors.New("peer: no local candidate")
	}
	st := newConsent(pwd)
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		_ = agent.Close()
		return errors.New("peer: closed")
	}
	p.agent, p.ufrag, p.consent, p.candidates = agent, ufrag, st, cands
	p.mu.Unlock()
	p.t.registerConsent(ufrag, st)
	return nil
}

// ApplyAnswer takes the client's answer and starts ICE and DTLS in the
// background; Events.Up or Events.Down reports the outcome.
func (p *Peer) ApplyAnswer(sdpText string) error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.ctx.Err() != nil:
		return errors.New("peer: closed")
	case p.phase == phaseNew:
		return errors.New("peer: answer before offer")
	case p.phase == phaseAnswered:
		return errors.New("peer: answer already applied")
	}
	a, err := parseAnswer(sdpText, p.offer)
	if err != nil {
		return err
	}
	conn, err := p.agent.StartAccept(a.ufrag, a.pwd)
	if err != nil {
		return fmt.Errorf("peer: start ice: %w", err)
	}
	for _, c := range a.candidates {
		if err := p.addRemoteLocked(c); err != nil {
			p.log.Debug("ignoring answer candidate", "candidate", c, "err", err)
		}
	}
	for i := range a.streams {
		s := &a.streams[i]
		p.streams = append(p.streams, s)
		p.bySSRC[s.SSRC] = s
	}
	p.phase = phaseAnswered
	p.dtlsRole = "server"
	if a.dtlsClient {
		p.dtlsRole = "client"
	}
	p.wg.Add(1)
	go p.run(conn, a)
	return nil
}

// AddCandidate adds a trickled remote candidate ("candidate:..." with or
// without "a="). "" or an end-of-candidates marker is accepted and ignored:
// an ICE-lite agent only answers checks.
func (p *Peer) AddCandidate(c string) error {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "a="))
	if c == "" || c == "end-of-candidates" || c == "completed" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return errors.New("peer: closed")
	}
	if p.agent == nil {
		return errors.New("peer: candidate before offer")
	}
	return p.addRemoteLocked(c)
}

func (p *Peer) addRemoteLocked(c string) error {
	cand, err := ice.UnmarshalCandidate(strings.TrimPrefix(c, "candidate:"))
	if err != nil {
		return fmt.Errorf("peer: candidate %q: %w", c, err)
	}
	if strings.HasSuffix(cand.Address(), ".local") {
		return nil // mDNS: a lite agent never dials, so nothing to resolve
	}
	if err := p.agent.AddRemoteCandidate(cand); err != nil {
		return fmt.Errorf("peer: add candidate: %w", err)
	}
	return nil
}

// SetEgress attaches the data plane's egress (nil removes it). If the pair
// changed since the Handoff, the egress is told at once.
func (p *Peer) SetEgress(e Egress) {
	if e == nil {
		p.egress.Store(nil)
		return
	}
	p.egress.Store(&egressBox{e})
	p.mu.Lock()
	moved := p.up && (p.local != p.handoffPath[0] || p.remote != p.handoffPath[1])
	local, remote := p.local, p.remote
	p.mu.Unlock()
	if moved {
		e.SetPath(local, remote)
	}
}

func (p *Peer) currentEgress() Egress {
	if b := p.egress.Load(); b != nil {
		return b.e
	}
	return nil
}

// Close hangs up: DTLS close_notify, ICE stopped, Events.Down(reason) if
// not yet called. Idempotent; it returns before the teardown ends.
func (p *Peer) Close(reason string) { p.shutdown(reason) }

// shutdown records the first reason and makes sure someone tears down:
// the run goroutine once an answer started it, a finisher otherwise.
func (p *Peer) shutdown(reason string) {
	first := false
	p.stopOnce.Do(func() {
		first = true
		p.mu.Lock()
		p.reason = reason
		p.mu.Unlock()
		p.cancel()
	})
	if !first {
		return
	}
	p.mu.Lock()
	spawn := p.phase != phaseAnswered && !p.finishing
	p.finishing = true
	p.mu.Unlock()
	if spawn {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.finish()
		}()
	}
}

// wait blocks until Down has been delivered.
func (p *Peer) wait() { <-p.finished }

// finish stops the agent, forgets the peer and delivers Down.
func (p *Peer) finish() {
	p.mu.Lock()
	agent, ufrag := p.agent, p.ufrag
	p.mu.Unlock()
	if agent != nil {
		_ = agent.GracefulClose() // ends the ICE conn, so readLoop returns
	}
	p.readers.Wait()
	if ufrag != "" {
		p.t.unregisterConsent(ufrag)
	}
	p.t.removePeer(p)
	p.mu.Lock()
	reason := p.reason
	p.iceState = ice.ConnectionStateClosed
	if p.dtlsState != "failed" {
		p.dtlsState = "closed"
	}
	p.mu.Unlock()
	if p.ev.Down != nil {
		p.ev.Down(reason)
	}
	close(p.finished)
}

func (p *Peer) onICEState(s ice.ConnectionState) {
	p.mu.Lock()
	if p.iceState != ice.ConnectionStateClosed {
		p.iceState = s
	}
	p.mu.Unlock()
	if s == ice.ConnectionStateFailed {
		p.shutdown("ice failed")
	}
}

// onPairChange follows the lite agent's selected pair (USE-CANDIDATE from
// the viewer) into the data plane.
func (p *Peer) onPairChange(local, remote ice.Candidate) {
	l, r := candidateAddr(local), candidateAddr(remote)
	p.mu.Lock()
	changed := p.local != l || p.remote != r
	p.local, p.remote, p.pairAt = l, r, time.Now()
	notify := changed && p.up
	p.mu.Unlock()
	if !notify {
		return
	}
	p.log.Debug("selected pair changed", "local", l, "remote", r)
	if e := p.currentEgress(); e != nil {
		e.SetPath(l, r)
	}
}

func candidateAddr(c ice.Candidate) netip.AddrPort {
	ip, _ := netip.ParseAddr(c.Address())
	return netip.AddrPortFrom(ip.Unmap(), uint16(c.Port()))
}
