package janus

import (
	"encoding/json"
	"sync"
	"time"
)

// sink is one transport instance that a session's events go to: a
// WebSocket connection, or the long-poll queue of an HTTP session.
type sink interface {
	// send queues one event without blocking; false when the sink is gone.
	send(ev []byte) bool
	// over tells the sink that a session no longer sends it events.
	over(sessionID uint64, why endReason)
	// dead reports a sink that failed on its own (an HTTP queue that
	// overflowed); the watchdog then treats it as a transport gone.
	dead() bool
	// transport is the package name Janus shows for it in handle_info.
	transport() string
}

// endReason says why a session ended or left a sink.
type endReason int

const (
	endDestroyed endReason = iota
	endTimeout
	endTransportGone
	endClaimed
	endClosed
)

func (r endReason) String() string {
	switch r {
	case endTimeout:
		return "timeout"
	case endTransportGone:
		return "transport gone"
	case endClaimed:
		return "claimed"
	case endClosed:
		return "server closing"
	default:
		return "destroyed"
	}
}

// session is one Janus session.
type session struct {
	g       *Gateway
	id      uint64
	created time.Time

	mu           sync.Mutex
	handles      map[uint64]*handle
	sink         sink
	lastActivity time.Time
	timeout      time.Duration // <0: the gateway's; 0: never
	gone         bool          // the sink's transport went away, waiting for a claim
	goneAt       time.Time
	destroyed    bool
}

func newSession(g *Gateway, id uint64, k sink) *session {
	now := time.Now()
	return &session{
		g: g, id: id, created: now, sink: k,
		handles: make(map[uint64]*handle), lastActivity: now, timeout: -1,
	}
}

func (s *session) touch() {
	s.mu.Lock()
	s.lastActivity = time.Now()
	s.mu.Unlock()
}

// notify sends an event to whoever holds the session now. Events of a
// destroyed session, or of one whose transport is gone, are dropped.
func (s *session) notify(ev msg) {
	b, err := json.Marshal(ev)
	if err != nil {
		s.g.log.Error("cannot encode event", "session", s.id, "err", err)
		return
	}
	s.notifyRaw(b)
}

func (s *session) notifyRaw(b []byte) {
	s.mu.Lock()
	k := s.sink
	drop := s.destroyed || s.gone || k == nil
	s.mu.Unlock()
	if drop {
		return
	}
	if !k.send(b) {
		s.g.log.Debug("event dropped: sink gone", "session", s.id)
	}
}

// expired reports whether the watchdog must destroy the session. Called
// with g.mu held.
func (s *session) expired(now time.Time, global, reclaim time.Duration) (endReason, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return 0, false
	}
	timeout := s.timeout
	if timeout < 0 {
		timeout = global
	}
	if timeout > 0 && now.Sub(s.lastActivity) >= timeout {
		return endTimeout, true
	}
	if !s.gone && s.sink != nil && s.sink.dead() {
		s.gone, s.goneAt = true, now
	}
	if s.gone && now.Sub(s.goneAt) >= reclaim {
		return endTransportGone, true
	}
	return 0, false
}

// markGone flags the session when its events went to k. Called with g.mu held.
func (s *session) markGone(k sink, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed || s.sink != k || s.gone {
		return false
	}
	s.gone, s.goneAt = true, now
	return true
}

// claim moves event delivery to the transport instance o.
func (s *session) claim(o origin) bool {
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return false
	}
	old := s.sink
	if old != nil && !s.gone && o.owns(old) {
		s.mu.Unlock()
		return true
	}
	s.sink = o.newSink(s.id)
	s.gone = false
	s.lastActivity = time.Now()
	s.mu.Unlock()
	if old != nil {
		old.over(s.id, endClaimed)
	}
	return true
}

// destroy ends the session: a "timeout" event when it timed out, the
// handles destroyed (plugins' Destroy called), the sink told. The caller
// has taken it out of the gateway's table.
func (s *session) destroy(why endReason) {
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return
	}
	s.destroyed = true
	k, gone, hs := s.sink, s.gone, s.handles
	s.handles = nil
	s.mu.Unlock()
	if why == endTimeout && k != nil && !gone {
		b, _ := json.Marshal(msg{"janus": "timeout", "session_id": s.id})
		k.send(b)
	}
	for _, h := range hs {
		h.destroy(false)
	}
	if k != nil {
		k.over(s.id, why)
	}
}

func (s *session) addHandle(h *handle) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return false
	}
	s.handles[h.id] = h
	return true
}

func (s *session) findHandle(id uint64) *handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handles[id]
}

func (s *session) removeHandle(h *handle) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handles[h.id] != h {
		return false
	}
	delete(s.handles, h.id)
	return true
}

// newHandleID picks a random id not used in this session.
func (s *session) newHandleID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		id := randomID()
		if _, taken := s.handles[id]; !taken {
			return id
		}
	}
}

func (s *session) handleIDs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint64, 0, len(s.handles))
	for id := range s.handles {
		ids = append(ids, id)
	}
	sortIDs(ids)
	return ids
}

// msg is one Janus API message (reply or event).
type msg map[string]any

// reply is a response to a request: it always echoes the transaction.
func reply(kind string, sessionID uint64, transaction string) msg {
	m := msg{"janus": kind, "transaction": transaction}
	if sessionID != 0 {
		m["session_id"] = sessionID
	}
	return m
}

func errorReply(sessionID uint64, transaction string, hasTransaction bool, e *apiError) msg {
	m := msg{"janus": "error", "error": msg{"code": e.code, "reason": e.reason}}
	if sessionID != 0 {
		m["session_id"] = sessionID
	}
	if hasTransaction {
		m["transaction"] = transaction
	}
	return m
}

// origin is the transport instance a request came from.
type origin interface {
	// newSink returns where the events of a session created or claimed
	// through this instance go.
	newSink(sessionID uint64) sink
	// owns reports whether k already is this instance's sink.
	owns(k sink) bool
}
