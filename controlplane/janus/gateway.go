package janus

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
)

// Version is Spillway's version as the info reply shows it.
const (
	Version       = "0.1.0"
	versionNumber = 100 // Janus's encoding: major*1000 + minor*100 + patch
	serverAuthor  = "Spillway authors"
)

// Defaults, as in Janus.
const (
	DefaultSessionTimeout = 60 * time.Second
	defaultPollWait       = 30 * time.Second // long poll answered with a keepalive after this
	defaultQueueLen       = 1024             // events queued per WebSocket connection or HTTP session
	maxPendingTrickles    = 256
)

// Config configures a Gateway. Zero values mean defaults.
type Config struct {
	ServerName, APISecret, AdminSecret string
	// SessionTimeout: a session with no request for this long is destroyed
	// with a "timeout" event (default 60 s; negative disables it).
	SessionTimeout time.Duration
	// ReclaimTimeout: 0 destroys the sessions of a WebSocket connection when
	// it closes; > 0 keeps them that long so they can be claimed.
	ReclaimTimeout time.Duration
	Plugins        []plugin.Plugin
	Media          MediaFactory
	// Knobs, when set, is served by the Admin API's get_knobs, get_knob and
	// set_knob.
	Knobs Knobs
	// Status, when set, adds the server's own counters to get_status: each
	// key of what it returns joins the "status" object, read at the
	// request.
	Status func() map[string]any
	Logger *slog.Logger
}

// Knobs is the server's table of tunables as the Admin API sees it.
type Knobs interface {
	Paths() []string
	Get(path string) (string, error)
	// Set parses, validates and applies a value; an error leaves the old one.
	Set(path, value string) error
}

// Gateway is the Janus API core: sessions, handles, plugins and the
// handlers of its transports.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	plugins  map[string]plugin.Plugin
	started  time.Time
	pollWait time.Duration // tests shorten it
	queueLen int           // tests shorten it

	mu             sync.Mutex
	sessions       map[uint64]*session
	conns          map[*wsConn]struct{}
	sessionTimeout time.Duration
	closed         bool

	stop chan struct{}
	wg   sync.WaitGroup // watchdog, executors, WebSocket writers
}

// New validates cfg and starts the session watchdog.
func New(cfg Config) (*Gateway, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "Spillway"
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.SessionTimeout < 0 {
		cfg.SessionTimeout = 0
	}
	if cfg.ReclaimTimeout < 0 {
		return nil, fmt.Errorf("janus: negative reclaim timeout %v", cfg.ReclaimTimeout)
	}
	g := &Gateway{
		cfg:            cfg,
		log:            cfg.Logger.With("component", "janus"),
		plugins:        make(map[string]plugin.Plugin),
		started:        time.Now(),
		pollWait:       defaultPollWait,
		queueLen:       defaultQueueLen,
		sessions:       make(map[uint64]*session),
		conns:          make(map[*wsConn]struct{}),
		sessionTimeout: cfg.SessionTimeout,
		stop:           make(chan struct{}),
	}
	for _, p := range cfg.Plugins {
		pkg := p.Info().Package
		if pkg == "" {
			return nil, errors.New("janus: plugin with an empty package name")
		}
		if _, dup := g.plugins[pkg]; dup {
			return nil, fmt.Errorf("janus: plugin %s registered twice", pkg)
		}
		g.plugins[pkg] = p
	}
	if cfg.AdminSecret == "" {
		g.log.Warn("admin API has no admin_secret: anyone who reaches it can manage sessions")
	}
	g.wg.Add(1)
	go g.watchdog()
	return g, nil
}

// Close destroys every session (plugins' Destroy called), drops the
// WebSocket connections, stops the timers and closes the plugins.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	sessions := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		sessions = append(sessions, s)
	}
	clear(g.sessions)
	conns := make([]*wsConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()

	close(g.stop)
	for _, s := range sessions {
		s.destroy(endClosed)
	}
	for _, c := range conns {
		c.kill("server closing")
	}
	g.wg.Wait()
	var errs []error
	for _, pkg := range g.pluginPackages() {
		if err := g.plugins[pkg].Close(); err != nil {
			errs = append(errs, fmt.Errorf("janus: closing plugin %s: %w", pkg, err))
		}
	}
	return errors.Join(errs...)
}

func (g *Gateway) pluginPackages() []string {
	pkgs := make([]string, 0, len(g.plugins))
	for pkg := range g.plugins {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	return pkgs
}

// now is the gateway's monotonic clock in microseconds, as Janus reports
// created/last_activity/current_time in handle_info.
func (g *Gateway) micros(t time.Time) int64 { return t.Sub(g.started).Microseconds() }

// randomID returns a random non-zero 53-bit id: it fits in a JavaScript
// number, as Janus's ids do.
func randomID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // never fails on Linux (crypto/rand panics internally otherwise)
		if id := binary.LittleEndian.Uint64(b[:]) & (1<<53 - 1); id != 0 {
			return id
		}
	}
}

func secretOK(given, want string) bool {
	return subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}

// watchdog expires sessions: no request for the session timeout, or a
// transport gone for longer than the reclaim timeout.
func (g *Gateway) watchdog() {
	defer g.wg.Done()
	tick := time.Second
	for _, d := range []time.Duration{g.cfg.SessionTimeout / 4, g.cfg.ReclaimTimeout / 4} {
		if d > 0 && d < tick {
			tick = max(d, 20*time.Millisecond)
		}
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.expire(now)
		}
	}
}

type expiry struct {
	s   *session
	why endReason
}

func (g *Gateway) expire(now time.Time) {
	var out []expiry
	g.mu.Lock()
	global := g.sessionTimeout
	for id, s := range g.sessions {
		if why, ok := s.expired(now, global, g.cfg.ReclaimTimeout); ok {
			delete(g.sessions, id)
			out = append(out, expiry{s, why})
		}
	}
	g.mu.Unlock()
	for _, e := range out {
		g.log.Info("session expired", "session", e.s.id, "why", e.why.String())
		e.s.destroy(e.why)
	}
}

// findSession returns a live session.
func (g *Gateway) findSession(id uint64) *session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[id]
}

// removeSession takes a session out of the table; false when it was not
// there (already destroyed).
func (g *Gateway) removeSession(s *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[s.id] != s {
		return false
	}
	delete(g.sessions, s.id)
	return true
}

// transportGone applies the reclaim policy to the sessions whose events
// went to a sink that is gone (a closed WebSocket connection).
func (g *Gateway) transportGone(k sink) {
	var doomed []*session
	now := time.Now()
	g.mu.Lock()
	for id, s := range g.sessions {
		if !s.markGone(k, now) {
			continue
		}
		if g.cfg.ReclaimTimeout <= 0 {
			delete(g.sessions, id)
			doomed = append(doomed, s)
		}
	}
	g.mu.Unlock()
	for _, s := range doomed {
		g.log.Info("session destroyed with its transport", "session", s.id)
		s.destroy(endTransportGone)
	}
}

// goroutine runs f on a goroutine that Close waits for.
func (g *Gateway) goroutine(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// SetSessionTimeout changes the timeout of sessions that have none of
// their own (as the Admin API's set_session_timeout does); 0 disables it.
func (g *Gateway) SetSessionTimeout(d time.Duration) {
	g.mu.Lock()
	g.sessionTimeout = d
	g.mu.Unlock()
}
