// Package loadgen is the bench's load generator: viewers that join a
// Streaming mountpoint through the Janus API (HTTP long poll or WebSocket)
// of Spillway or of Janus itself, with real ICE and DTLS but without a
// PeerConnection each. A few of them are samples: they decrypt their SRTP
// and measure loss, jitter and source-to-viewer latency. The others only
// hold their session: the bench's sink (package bpf) counts and drops
// their media before it reaches them, so absorbing it costs the client
// nothing.
package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/logging"

	"github.com/spillway-rtc/spillway/controlplane/peer"
)

// Config describes a load.
type Config struct {
	URL         string        // Janus API: http://host:port/janus (long poll) or ws://host:port/
	Mountpoint  uint64        // Streaming mountpoint id
	LocalIP     netip.Addr    // the viewers' one host candidate address
	PerSession  int           // viewers (handles) per Janus session; 0: 200
	Concurrency int           // joins in flight; 0: 16
	JoinTimeout time.Duration // one viewer's attach, watch, ICE and DTLS; 0: 30 s
	// Profiles are the SRTP profiles offered in DTLS, by preference; nil:
	// AES-128-GCM, then AES-CM-128-HMAC-SHA1-80.
	Profiles []dtls.SRTPProtectionProfile
	Stamp    StampFunc // reads the source's send time from a payload; nil: no latency
	// Progress is called after every join, successful or not.
	Progress func(joined, failed, target int)
	Logger   *slog.Logger
}

// Load is a set of viewers on one mountpoint.
type Load struct {
	cfg         Config
	cert        tls.Certificate
	fingerprint string
	pionLog     logging.LoggerFactory
	lat         *latencies

	mu       sync.Mutex
	sessions []*session
	inSess   int // handles on the last session
	viewers  []*viewer
	samples  []*viewer
	failed   int
	closed   bool
}

// New prepares a load; Add joins its viewers.
func New(cfg Config) (*Load, error) {
	if cfg.URL == "" || cfg.Mountpoint == 0 || !cfg.LocalIP.IsValid() {
		return nil, errors.New("loadgen: URL, Mountpoint and LocalIP are required")
	}
	if cfg.PerSession <= 0 {
		cfg.PerSession = 200
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 30 * time.Second
	}
	if cfg.Profiles == nil {
		cfg.Profiles = []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// One certificate for every viewer: a key pair per viewer would cost
	// the client core a signature's worth each for nothing.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := selfsign.SelfSign(key)
	if err != nil {
		return nil, fmt.Errorf("loadgen: certificate: %w", err)
	}
	l := &Load{cfg: cfg, cert: cert, fingerprint: "sha-256 " + peer.Fingerprint(cert.Certificate[0]),
		pionLog: quietLoggers{}, lat: &latencies{max: 1 << 16}}
	return l, nil
}

// Add joins n more viewers, the first samples of them as samples, and
// returns when every one has joined or failed. It fails when ctx ends or
// when no viewer at all could join.
func (l *Load) Add(ctx context.Context, n, samples int) error {
	target := l.Viewers() + n
	jobs := make(chan bool) // sample?
	var wg sync.WaitGroup
	var joined atomic.Int64
	var firstErr error
	var errOnce sync.Once
	for range l.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sample := range jobs {
				err := l.joinOne(ctx, sample)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					l.mu.Lock()
					l.failed++
					l.mu.Unlock()
				} else {
					joined.Add(1)
				}
				if l.cfg.Progress != nil {
					l.cfg.Progress(l.Viewers(), l.Failed(), target)
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i < samples:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if joined.Load() == 0 && n > 0 {
		return fmt.Errorf("loadgen: no viewer joined: %w", firstErr)
	}
	if firstErr != nil {
		l.cfg.Logger.Warn("loadgen: some viewers failed to join", "failed", n-int(joined.Load()), "first", firstErr)
	}
	return nil
}

// joinOne joins one viewer on the current session, opening a new session
// every PerSession viewers.
func (l *Load) joinOne(ctx context.Context, sample bool) error {
	s, err := l.sessionFor(ctx)
	if err != nil {
		return err
	}
	v := &viewer{l: l, s: s, sample: sample, lat: l.lat}
	if sample {
		v.streams = map[uint32]*streamState{}
	}
	jctx, cancel := context.WithTimeout(ctx, l.cfg.JoinTimeout)
	defer cancel()
	if err := v.join(jctx); err != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		v.close(cctx)
		ccancel()
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		go v.close(context.Background())
		return errors.New("loadgen: closed")
	}
	l.viewers = append(l.viewers, v)
	if sample {
		l.samples = append(l.samples, v)
	}
	return nil
}

func (l *Load) sessionFor(ctx context.Context) (*session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("loadgen: closed")
	}
	if n := len(l.sessions); n > 0 && l.inSess < l.cfg.PerSession {
		l.inSess++
		return l.sessions[n-1], nil
	}
	// Dialing under the lock keeps sessions in order; it is one round trip
	// every PerSession joins.
	s, err := dialSession(ctx, l.cfg.URL, l.cfg.Logger)
	if err != nil {
		return nil, err
	}
	l.sessions = append(l.sessions, s)
	l.inSess = 1
	return s, nil
}

// Remove hangs up the n most recently joined viewers that are not
// samples (all of them if there are fewer), as a sweep steps down.
func (l *Load) Remove(ctx context.Context, n int) int {
	l.mu.Lock()
	var gone []*viewer
	keep := l.viewers[:0]
	for i := len(l.viewers) - 1; i >= 0; i-- {
		if v := l.viewers[i]; len(gone) < n && !v.sample {
			gone = append(gone, v)
			l.viewers[i] = nil
		}
	}
	for _, v := range l.viewers {
		if v != nil {
			keep = append(keep, v)
		}
	}
	clear(l.viewers[len(keep):])
	l.viewers = keep
	l.mu.Unlock()
	l.closeAll(ctx, gone)
	return len(gone)
}

// closeAll hangs viewers up, Concurrency at a time.
func (l *Load) closeAll(ctx context.Context, vs []*viewer) {
	sem := make(chan struct{}, l.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			v.close(ctx)
			<-sem
		}()
	}
	wg.Wait()
}

// Viewers is the number of viewers that joined and are still held.
func (l *Load) Viewers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.viewers)
}

// Failed is the number of joins that failed.
func (l *Load) Failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Up is the number of viewers whose server has not hung them up.
func (l *Load) Up() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.viewers {
		if v.up.Load() {
			n++
		}
	}
	return n
}

// SampleAddrs are the addresses the samples' media arrives at: the sink
// must let it through.
func (l *Load) SampleAddrs() []netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(l.samples))
	for _, v := range l.samples {
		out = append(out, v.local)
	}
	return out
}

// Sample is one sample viewer's figures.
type Sample struct {
	Local   netip.AddrPort
	Profile dtls.SRTPProtectionProfile
	Streams []StreamStats
}

// Samples returns every sample viewer's cumulative figures.
func (l *Load) Samples() []Sample {
	l.mu.Lock()
	vs := append([]*viewer(nil), l.samples...)
	l.mu.Unlock()
	out := make([]Sample, 0, len(vs))
	for _, v := range vs {
		out = append(out, Sample{Local: v.local, Profile: v.prof, Streams: v.stats()})
	}
	return out
}

// MediaPackets is the RTP packets that reached any viewer (the sink lets
// only the samples' through).
func (l *Load) MediaPackets() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, v := range l.viewers {
		n += v.media.Load()
	}
	return n
}

// Latency is the source-to-viewer delay of the samples' packets since the
// last ResetLatency.
func (l *Load) Latency() Percentiles { return l.lat.percentiles() }

// ResetLatency starts a new latency window.
func (l *Load) ResetLatency() { l.lat.reset() }

// Close hangs every viewer up and destroys the sessions.
func (l *Load) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	vs, ss := l.viewers, l.sessions
	l.viewers, l.samples, l.sessions = nil, nil, nil
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.closeAll(ctx, vs)
	for _, s := range ss {
		s.close()
	}
}

// quietLoggers silences pion: a thousand agents' warnings about a closed
// connection say nothing the load's own errors don't.
type quietLoggers struct{}

func (quietLoggers) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Trace(string)          {}
func (quietLogger) Tracef(string, ...any) {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(string)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(string)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(string)          {}
func (quietLogger) Errorf(string, ...any) {}
