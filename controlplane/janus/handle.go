package janus

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
)

var (
	errHandleGone = errors.New("janus: handle detached")
	errNoMedia    = errors.New("janus: no WebRTC media configured")
)

// handle is one plugin handle; it is the plugin.Handle its plugin sees.
type handle struct {
	s       *session
	id      uint64
	pkg     string
	opaque  string
	created time.Time
	ps      plugin.Session // set once, before the handle is published
	exec    serial         // runs the plugin's callbacks other than HandleMessage

	mediaMu sync.Mutex // serialises the creation of the Media

	mu        sync.Mutex
	destroyed bool
	media     Media
	mediaGen  uint64 // bumped per Media, so callbacks of an old one are ignored
	remoteSet bool   // the client's description was applied to media
	up        bool
	egress    plugin.Egress
	pending   []string // trickled before the client's description
	inflight  int      // messages being handled: their plugin events wait for the reply
	held      [][]byte
	flags     handleFlags
}

type handleFlags struct {
	gotOffer, gotAnswer, trickle, allTrickles bool
}

func newHandle(s *session, id uint64, pkg, opaque string) *handle {
	h := &handle{s: s, id: id, pkg: pkg, opaque: opaque, created: time.Now()}
	h.exec.g = s.g
	return h
}

// SessionID implements plugin.Handle.
func (h *handle) SessionID() uint64 { return h.s.id }

// HandleID implements plugin.Handle.
func (h *handle) HandleID() uint64 { return h.id }

// Opaque implements plugin.Handle.
func (h *handle) Opaque() string { return h.opaque }

// PushEvent implements plugin.Handle: an "event" with plugindata, and the
// plugin's offer or answer completed by the Media.
func (h *handle) PushEvent(transaction string, data any, jsep *plugin.JSEP) error {
	body, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("janus: encoding event data: %w", err)
	}
	if !isObject(body) {
		return errors.New("janus: event data is not a JSON object")
	}
	ev := msg{
		"janus": "event", "session_id": h.s.id, "sender": h.id,
		"plugindata": msg{"plugin": h.pkg, "data": json.RawMessage(body)},
	}
	if transaction != "" {
		ev["transaction"] = transaction
	}
	if jsep != nil {
		if jsep.Type != "offer" && jsep.Type != "answer" {
			return fmt.Errorf("janus: jsep type %q is neither offer nor answer", jsep.Type)
		}
		m, created, err := h.ensureMedia()
		if err != nil {
			return err
		}
		local, err := m.LocalDescription(*jsep)
		if err != nil {
			if created {
				h.dropMedia(m)
			}
			return fmt.Errorf("janus: completing the plugin's %s: %w", jsep.Type, err)
		}
		h.mu.Lock()
		h.noteJSEP(local.Type)
		h.mu.Unlock()
		ev["jsep"] = local
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("janus: encoding event: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.destroyed {
		return errHandleGone
	}
	if h.inflight > 0 {
		// The reply to the message being handled ("ack") goes first.
		h.held = append(h.held, b)
		return nil
	}
	h.s.notifyRaw(b)
	return nil
}

// SetEgress implements plugin.Handle.
func (h *handle) SetEgress(e plugin.Egress) {
	h.mu.Lock()
	h.egress = e
	m := h.media
	h.mu.Unlock()
	if m != nil {
		m.SetEgress(e)
	}
}

// ClosePC implements plugin.Handle.
func (h *handle) ClosePC(reason string) {
	h.mu.Lock()
	m := h.media
	h.mu.Unlock()
	if m != nil {
		m.Hangup(reason)
	}
}

// noteJSEP records an offer or answer exchanged; h.mu held.
func (h *handle) noteJSEP(typ string) {
	switch typ {
	case "offer":
		h.flags.gotOffer, h.flags.gotAnswer = true, false
	case "answer":
		h.flags.gotAnswer = true
	}
}

// begin and end bracket the handling of a message: plugin events pushed
// meanwhile are sent after the transport wrote the reply.
func (h *handle) begin() {
	h.mu.Lock()
	h.inflight++
	h.mu.Unlock()
}

func (h *handle) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight--
	if h.inflight > 0 {
		return
	}
	for _, b := range h.held {
		h.s.notifyRaw(b)
	}
	h.held = nil
}

// ensureMedia returns the handle's Media, creating it on first use
// (created reports that).
func (h *handle) ensureMedia() (m Media, created bool, err error) {
	h.mediaMu.Lock()
	defer h.mediaMu.Unlock()
	h.mu.Lock()
	if h.destroyed {
		h.mu.Unlock()
		return nil, false, errHandleGone
	}
	if h.media != nil {
		m := h.media
		h.mu.Unlock()
		return m, false, nil
	}
	h.mediaGen++
	gen := h.mediaGen
	h.mu.Unlock()
	if h.s.g.cfg.Media == nil {
		return nil, false, errNoMedia
	}
	m = h.s.g.cfg.Media(h.s.id, h.id, h.events(gen))
	if m == nil {
		return nil, false, errNoMedia
	}
	h.mu.Lock()
	if h.destroyed || h.mediaGen != gen {
		h.mu.Unlock()
		m.Hangup("Detach")
		return nil, false, errHandleGone
	}
	h.media, h.remoteSet, h.up = m, false, false
	h.mu.Unlock()
	return m, true, nil
}

// dropMedia forgets a Media that never got a usable description, without
// hangup events: for the client and the plugin it never existed.
func (h *handle) dropMedia(m Media) {
	h.mu.Lock()
	if h.media != m {
		h.mu.Unlock()
		return
	}
	h.media = nil
	h.mediaGen++ // its callbacks are now stale
	h.mu.Unlock()
	m.Hangup("Invalid SDP")
}

// applyRemote applies the client's jsep to the handle's Media.
func (h *handle) applyRemote(j plugin.JSEP) *apiError {
	if j.Type != "offer" && j.Type != "answer" {
		return newError(errJSEPUnknownType, "JSEP error: unknown message type '%s'", j.Type)
	}
	h.mu.Lock()
	noMedia := h.media == nil
	h.mu.Unlock()
	if j.Type == "answer" && noMedia {
		return newError(errUnexpectedAnswer, "")
	}
	m, created, err := h.ensureMedia()
	switch {
	case errors.Is(err, errHandleGone):
		return newError(errHandleNotFound, "No such handle %d in session %d", h.id, h.s.id)
	case err != nil:
		return newError(errWebRTCState, "%v", err)
	}
	if err := m.RemoteDescription(j); err != nil {
		if created {
			h.dropMedia(m)
		}
		if errors.Is(err, ErrJSEPType) {
			return newError(errJSEPUnknownType, "JSEP error: %v", err)
		}
		return newError(errJSEPInvalidSDP, "JSEP error: invalid SDP: %v", err)
	}
	h.mu.Lock()
	var flush []string
	if h.media == m {
		h.noteJSEP(j.Type)
		h.remoteSet = true
		flush, h.pending = h.pending, nil
	}
	h.mu.Unlock()
	h.trickleTo(m, flush)
	return nil
}

// trickle hands remote candidates ("" = end) to the Media, or keeps them
// until the client's description has been applied.
func (h *handle) trickle(cands []string) {
	h.mu.Lock()
	h.flags.trickle = true
	for _, c := range cands {
		if c == "" {
			h.flags.allTrickles = true
		}
	}
	if h.media == nil || !h.remoteSet {
		room := maxPendingTrickles - len(h.pending)
		if len(cands) > room {
			h.s.g.log.Warn("too many early trickle candidates, dropping", "handle", h.id, "dropped", len(cands)-room)
			cands = cands[:room]
		}
		h.pending = append(h.pending, cands...)
		h.mu.Unlock()
		return
	}
	m := h.media
	h.mu.Unlock()
	h.trickleTo(m, cands)
}

func (h *handle) trickleTo(m Media, cands []string) {
	for _, c := range cands {
		// As Janus does, a candidate that cannot be used is logged, not refused.
		if err := m.Trickle(c); err != nil {
			h.s.g.log.Debug("trickle candidate refused", "session", h.s.id, "handle", h.id, "err", err)
		}
	}
}

// hangup closes the PeerConnection on the client's request.
func (h *handle) hangup() {
	h.ClosePC("Janus API")
}

// events binds the callbacks of one Media generation.
func (h *handle) events(gen uint64) MediaEvents {
	return MediaEvents{
		Up:   func(pm plugin.Media) { h.mediaUp(gen, pm) },
		Down: func(reason string) { h.mediaDown(gen, reason) },
		KeyframeRequest: func() {
			if h.current(gen) {
				h.call(func(ps plugin.Session) { ps.KeyframeRequest() })
			}
		},
		SlowLink: func(mid, media string, uplink bool, lost int) {
			if h.current(gen) {
				h.s.notify(msg{
					"janus": "slowlink", "session_id": h.s.id, "sender": h.id,
					"mid": mid, "media": media, "uplink": uplink, "lost": lost,
				})
			}
		},
	}
}

func (h *handle) current(gen uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.destroyed && h.media != nil && h.mediaGen == gen
}

func (h *handle) mediaUp(gen uint64, pm plugin.Media) {
	h.mu.Lock()
	if h.destroyed || h.media == nil || h.mediaGen != gen || h.up {
		h.mu.Unlock()
		return
	}
	h.up = true
	h.mu.Unlock()
	h.s.notify(msg{"janus": "webrtcup", "session_id": h.s.id, "sender": h.id})
	h.call(func(ps plugin.Session) { ps.SetupMedia(pm) })
}

func (h *handle) mediaDown(gen uint64, reason string) {
	h.mu.Lock()
	if h.destroyed || h.media == nil || h.mediaGen != gen {
		h.mu.Unlock()
		return
	}
	h.media, h.remoteSet, h.up, h.egress, h.pending = nil, false, false, nil, nil
	h.flags = handleFlags{}
	h.mu.Unlock()
	h.s.notify(hangupEvent(h.s.id, h.id, reason))
	h.call(func(ps plugin.Session) { ps.HangupMedia() })
}

func hangupEvent(sessionID, handleID uint64, reason string) msg {
	ev := msg{"janus": "hangup", "session_id": sessionID, "sender": handleID}
	if reason != "" {
		ev["reason"] = reason
	}
	return ev
}

// destroy detaches the handle: the PeerConnection hung up, the plugin's
// HangupMedia (when there was media) and Destroy called. notify sends the
// "hangup" and "detached" events (a detach request; not when the whole
// session goes).
func (h *handle) destroy(notify bool) {
	h.mu.Lock()
	if h.destroyed {
		h.mu.Unlock()
		return
	}
	h.destroyed = true
	m := h.media
	h.media, h.egress, h.held, h.pending = nil, nil, nil, nil
	h.mu.Unlock()
	if m != nil {
		if notify {
			h.s.notify(hangupEvent(h.s.id, h.id, "Detach"))
		}
		h.call(func(ps plugin.Session) { ps.HangupMedia() })
		m.Hangup("Detach")
	}
	h.exec.do(func() { h.safely("Destroy", h.ps.Destroy) }, true)
	if notify {
		h.s.notify(msg{"janus": "detached", "session_id": h.s.id, "sender": h.id})
	}
}

// call runs a plugin callback on the handle's executor.
func (h *handle) call(f func(ps plugin.Session)) {
	h.exec.do(func() { h.safely("callback", func() { f(h.ps) }) }, false)
}

// safely runs plugin code, turning a panic into a log line.
func (h *handle) safely(what string, f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			h.s.g.log.Error("plugin panicked", "plugin", h.pkg, "in", what,
				"session", h.s.id, "handle", h.id, "panic", r, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	f()
	return true
}

// info is the handle's part of handle_info.
func (h *handle) info(pluginOnly bool) msg {
	info := msg{
		"handle_id": h.id,
		"created":   h.s.g.micros(h.created),
		"plugin":    h.pkg,
	}
	if h.opaque != "" {
		info["opaque_id"] = h.opaque
	}
	var q any
	h.safely("Query", func() { q = h.ps.Query() })
	if q != nil {
		if b, err := json.Marshal(q); err == nil && isObject(b) {
			info["plugin_specific"] = json.RawMessage(b)
		}
	}
	if pluginOnly {
		return info
	}
	h.mu.Lock()
	f, m, up, destroyed, pending := h.flags, h.media, h.up, h.destroyed, len(h.pending)
	h.mu.Unlock()
	info["flags"] = msg{
		"got-offer":    f.gotOffer,
		"got-answer":   f.gotAnswer,
		"negotiated":   f.gotOffer && f.gotAnswer,
		"ready":        up,
		"stopped":      destroyed,
		"trickle":      f.trickle,
		"all-trickles": f.allTrickles,
	}
	if pending > 0 {
		info["pending-trickles"] = pending
	}
	if m != nil {
		info["webrtc"] = m.Info()
	}
	return info
}

func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// serial runs functions one at a time, in order, on a goroutine that
// exists only while there is work.
type serial struct {
	g       *Gateway
	mu      sync.Mutex
	q       []func()
	running bool
	closed  bool
}

// do queues f; last closes the executor after f. False when closed.
func (e *serial) do(f func(), last bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.q = append(e.q, f)
	e.closed = last
	if !e.running {
		e.running = true
		e.g.goroutine(e.run)
	}
	return true
}

func (e *serial) run() {
	for {
		e.mu.Lock()
		if len(e.q) == 0 {
			e.running = false
			e.mu.Unlock()
			return
		}
		f := e.q[0]
		e.q[0] = nil
		e.q = e.q[1:]
		e.mu.Unlock()
		f()
	}
}
