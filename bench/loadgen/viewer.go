package loadgen

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/spillway-rtc/spillway/controlplane/peer"
)

// viewer is one subscriber: a handle on a session, an ICE agent with one
// host candidate, a DTLS client, and for a sample viewer an SRTP context
// and stream statistics. No PeerConnection: a viewer that is not a sample
// costs its goroutines and a socket, and nothing per media packet when
// the bench's sink drops its media before it arrives.
type viewer struct {
	l      *Load
	s      *session
	handle uint64
	events <-chan msg
	sample bool

	agent  *ice.Agent
	conn   *ice.Conn
	dconn  *dtls.Conn
	dtlsEP *peer.DTLSEndpoint
	local  netip.AddrPort // where its media arrives
	remote netip.AddrPort
	prof   dtls.SRTPProtectionProfile

	up      atomic.Bool
	hungUp  atomic.Bool
	readers sync.WaitGroup

	// Sample viewers only.
	mu      sync.Mutex
	srtp    *srtp.Context
	clock   map[uint8]uint32
	streams map[uint32]*streamState
	lat     *latencies
	media   atomic.Uint64 // RTP packets that arrived (samples and not)
}

const streamingPlugin = "janus.plugin.streaming"

// join runs the Streaming plugin's watch flow to the end of the DTLS
// handshake: attach, watch, the server's offer, our answer with start,
// ICE, DTLS, and for a sample the SRTP keys.
func (v *viewer) join(ctx context.Context) error {
	h, events, err := v.s.attach(ctx, streamingPlugin)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	v.handle, v.events = h, events
	if _, err := v.s.message(ctx, h, msg{"request": "watch", "id": v.l.cfg.Mountpoint}, nil, true); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	offerSDP, err := v.waitOffer(ctx)
	if err != nil {
		return err
	}
	o, err := parseOffer(offerSDP)
	if err != nil {
		return err
	}
	if v.sample {
		v.clock = map[uint8]uint32{}
		for _, m := range o.media {
			for pt, c := range m.clock {
				v.clock[pt] = c
			}
		}
	}
	if err := v.startICE(o); err != nil {
		return err
	}
	cands, err := v.agent.GetLocalCandidates()
	if err != nil || len(cands) == 0 {
		return fmt.Errorf("ice: no local candidate (%v)", err)
	}
	ufrag, pwd, err := v.agent.GetLocalUserCredentials()
	if err != nil {
		return err
	}
	answer := buildAnswer(o, localAnswer{ufrag: ufrag, pwd: pwd, fingerprint: v.l.fingerprint, candidate: cands[0]})
	for _, c := range o.candidates {
		if err := v.agent.AddRemoteCandidate(c); err != nil {
			return fmt.Errorf("ice: remote candidate: %w", err)
		}
	}
	// The answer goes first: a full-ICE server (Janus) starts its checks
	// once it has our credentials and candidate.
	if _, err := v.s.message(ctx, h, msg{"request": "start"}, msg{"type": "answer", "sdp": answer}, true); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// An ICE-lite server never checks: we control. A full one that offers
	// (Janus) controls, so we are controlled.
	if o.lite {
		v.conn, err = v.agent.Dial(ctx, o.ufrag, o.pwd)
	} else {
		v.conn, err = v.agent.Accept(ctx, o.ufrag, o.pwd)
	}
	if err != nil {
		return fmt.Errorf("ice: %w", err)
	}
	pair, err := v.agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return fmt.Errorf("ice: no selected pair (%v)", err)
	}
	v.local, v.remote = candidateAddr(pair.Local), candidateAddr(pair.Remote)
	v.dtlsEP = peer.NewDTLSEndpoint(v.conn)
	v.readers.Add(1)
	go v.readLoop()
	if err := v.handshake(ctx, o.fingerprint); err != nil {
		return err
	}
	v.up.Store(true)
	v.readers.Add(1)
	go v.watchEvents()
	return nil
}

// waitOffer waits for the watch's event that carries the offer, or its
// error.
func (v *viewer) waitOffer(ctx context.Context) (string, error) {
	t := time.NewTimer(requestTimeout)
	defer t.Stop()
	for {
		select {
		case m := <-v.events:
			if e := m.pluginData().obj("error"); e != nil || m.pluginData().str("error") != "" {
				return "", fmt.Errorf("watch: %v %v", m.pluginData()["error_code"], m.pluginData()["error"])
			}
			if j := m.obj("jsep"); j != nil && j.str("type") == "offer" {
				return j.str("sdp"), nil
			}
			if m.str("janus") == "hangup" || m.str("janus") == "detached" {
				return "", fmt.Errorf("watch: %s before the offer (%s)", m.str("janus"), m.str("reason"))
			}
		case <-t.C:
			return "", errors.New("watch: no offer in time")
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (v *viewer) startICE(o *remoteOffer) error {
	cfg := v.l.cfg
	disconnected, failed, keepalive := 10*time.Second, 30*time.Second, 2*time.Second
	// Checks paced as a browser paces them (RFC 8445's Ta, 50 ms), not at
	// the agent's default 200 ms: a join waits on a check and on the
	// nomination after it.
	check := 50 * time.Millisecond
	a, err := ice.NewAgent(&ice.AgentConfig{
		NetworkTypes:        []ice.NetworkType{networkType(cfg.LocalIP)},
		CandidateTypes:      []ice.CandidateType{ice.CandidateTypeHost},
		IPFilter:            func(ip net.IP) bool { return ip.Equal(net.IP(cfg.LocalIP.AsSlice())) },
		IncludeLoopback:     cfg.LocalIP.IsLoopback(),
		MulticastDNSMode:    ice.MulticastDNSModeDisabled,
		DisconnectedTimeout: &disconnected,
		FailedTimeout:       &failed,
		KeepaliveInterval:   &keepalive,
		CheckInterval:       &check,
		LoggerFactory:       v.l.pionLog,
	})
	if err != nil {
		return fmt.Errorf("ice agent: %w", err)
	}
	v.agent = a
	gathered := make(chan struct{})
	if err := a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			close(gathered)
		}
	}); err != nil {
		return err
	}
	if err := a.GatherCandidates(); err != nil {
		return fmt.Errorf("ice gather: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return errors.New("ice gather: no end of candidates")
	}
	return nil
}

func networkType(a netip.Addr) ice.NetworkType {
	if a.Is4() {
		return ice.NetworkTypeUDP4
	}
	return ice.NetworkTypeUDP6
}

// readLoop demultiplexes what ICE delivers (RFC 7983): DTLS to the
// handshake, RTP to the sample's statistics, the rest dropped.
func (v *viewer) readLoop() {
	defer v.readers.Done()
	buf := make([]byte, 1500)
	var dec []byte
	var hdr rtp.Header
	for {
		n, err := v.conn.Read(buf)
		if err != nil {
			v.dtlsEP.Close()
			return
		}
		if n == 0 {
			continue
		}
		switch b := buf[0]; {
		case b >= 20 && b <= 63:
			if err := v.dtlsEP.Deliver(buf[:n]); err != nil {
				return
			}
		case b >= 128 && b <= 191 && n >= 12:
			if pt := buf[1]; pt >= 192 && pt <= 223 {
				continue // RTCP: sender reports, not measured here
			}
			v.media.Add(1)
			if v.sample {
				dec = v.onRTP(buf[:n], dec, &hdr)
			}
		}
	}
}

// onRTP decrypts a sample viewer's packet and adds it to its stream.
func (v *viewer) onRTP(pkt, dec []byte, hdr *rtp.Header) []byte {
	at := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	st := v.streams[ssrc]
	if st == nil {
		clock := v.clock[pkt[1]&0x7f]
		st = &streamState{StreamStats: StreamStats{SSRC: ssrc, Video: clock == 90000}, clock: float64(clock)}
		v.streams[ssrc] = st
	}
	if v.srtp == nil {
		// The server's handshake ends a flight before ours: media it sends
		// at once can come before we have the keys, and a browser drops it
		// too. Not a decryption failure, and not lost (nothing is expected
		// before the first packet that decrypts).
		st.Early++
		return dec
	}
	out, err := v.srtp.DecryptRTP(dec[:0], pkt, hdr)
	if err != nil {
		st.Failed++
		return dec
	}
	st.add(hdr.SequenceNumber, hdr.Timestamp, at)
	if f := v.l.cfg.Stamp; f != nil {
		payload := out[hdr.MarshalSize():]
		if hdr.Padding && len(payload) > 0 {
			payload = payload[:max(0, len(payload)-int(payload[len(payload)-1]))]
		}
		if sent, ok := f(payload, st.Video); ok {
			v.lat.add(at.UnixNano() - sent)
		}
	}
	return out
}

// handshake runs DTLS as the client (our answer said setup:active) and
// checks the server's certificate against the offer's fingerprint.
func (v *viewer) handshake(ctx context.Context, fingerprint string) error {
	algo, want, _ := strings.Cut(fingerprint, " ")
	if !strings.EqualFold(algo, "sha-256") {
		return fmt.Errorf("dtls: fingerprint algorithm %q (want sha-256)", algo)
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no server certificate")
		}
		if got := peer.Fingerprint(raw[0]); !strings.EqualFold(got, want) {
			return fmt.Errorf("server certificate %s does not match the offer's %s", got, want)
		}
		return nil
	}
	c, err := dtls.ClientWithOptions(dtlsnet.PacketConnFromConn(v.dtlsEP), v.conn.RemoteAddr(),
		dtls.WithCertificates(v.l.cert),
		dtls.WithSRTPProtectionProfiles(v.l.cfg.Profiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // self-signed: the SDP fingerprint is the trust anchor
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithLoggerFactory(v.l.pionLog),
	)
	if err != nil {
		return fmt.Errorf("dtls: %w", err)
	}
	if err := c.HandshakeContext(ctx); err != nil {
		c.Close()
		return fmt.Errorf("dtls handshake: %w", err)
	}
	v.dconn = c
	prof, ok := c.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("dtls: no SRTP profile negotiated")
	}
	v.prof = prof
	v.readers.Add(1)
	go func() { // keeps DTLS alive: retransmitted flights, alerts
		defer v.readers.Done()
		b := make([]byte, 1500)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
		}
	}()
	if !v.sample {
		return nil
	}
	state, ok := c.ConnectionState()
	if !ok {
		return errors.New("dtls: no connection state")
	}
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(prof)}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, true); err != nil {
		return fmt.Errorf("srtp keys: %w", err)
	}
	ctxSRTP, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
	if err != nil {
		return fmt.Errorf("srtp: %w", err)
	}
	v.mu.Lock()
	v.srtp = ctxSRTP
	v.mu.Unlock()
	return nil
}

// watchEvents notes a hangup from the server.
func (v *viewer) watchEvents() {
	defer v.readers.Done()
	for m := range v.events {
		if m.str("janus") == "hangup" || m.str("janus") == "detached" {
			v.hungUp.Store(true)
			v.up.Store(false)
		}
	}
}

// close hangs the viewer up and frees its agent and goroutines.
func (v *viewer) close(ctx context.Context) {
	if v.handle != 0 {
		_ = v.s.detach(ctx, v.handle)
	}
	if v.dconn != nil {
		v.dconn.Close()
	}
	if v.agent != nil {
		v.agent.Close()
	}
	if v.dtlsEP != nil {
		v.dtlsEP.Close()
	}
	v.s.forget(v.handle) // closes the events channel: watchEvents ends
	v.readers.Wait()
}

// stats is a copy of the sample viewer's stream figures.
func (v *viewer) stats() []StreamStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]StreamStats, 0, len(v.streams))
	for _, s := range v.streams {
		out = append(out, s.StreamStats)
	}
	return out
}
