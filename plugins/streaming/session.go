package streaming

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
	"github.com/spillway-rtc/spillway/dataplane"
)

type state int

const (
	stateIdle      state = iota
	statePreparing       // offer sent, waiting for start with the answer
	stateStarting        // answer applied, waiting for the PeerConnection
	stateStarted         // media flowing through the data plane
)

// session is one handle attached to the plugin: at most one viewer.
//
// Asynchronous requests run in order on the session's own goroutine, so a
// client's watch, start and stop are never reordered; the core's callbacks
// (SetupMedia, HangupMedia, KeyframeRequest) may run concurrently with it
// and take mu.
type session struct {
	p     *Plugin
	h     plugin.Handle
	queue chan plugin.Request
	quit  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	state    state
	mp       *mountpoint
	offered  []offeredStream // what the last offer carried
	viewer   *dataplane.Viewer
	paused   bool
	sendOff  map[string]bool // mids the client turned off with configure
	closedAt bool
}

type offeredStream struct {
	index int // in the mountpoint's streams
	mid   string
	ssrc  uint32
}

const queueDepth = 32

func newSession(p *Plugin, h plugin.Handle) *session {
	s := &session{p: p, h: h, queue: make(chan plugin.Request, queueDepth),
		quit: make(chan struct{}), done: make(chan struct{}), sendOff: map[string]bool{}}
	go s.run()
	return s
}

func (s *session) run() {
	defer close(s.done)
	for {
		select {
		case req := <-s.queue:
			s.async(req)
		case <-s.quit:
			return
		}
	}
}

// HandleMessage implements plugin.Session.
func (s *session) HandleMessage(req plugin.Request) plugin.Result {
	a, e := parseArgs(req.Body)
	if e != nil {
		return plugin.Result{Data: e.data()}
	}
	name, e := a.str("request", true)
	if e != nil {
		return plugin.Result{Data: e.data()}
	}
	if data, e := s.p.syncRequest(name, a); e != nil {
		return plugin.Result{Data: e.data()}
	} else if data != nil {
		return plugin.Result{Data: data}
	}
	switch name {
	case "watch", "start", "pause", "configure", "switch", "stop":
	default:
		return plugin.Result{Data: perr(errInvalidRequest, "Unknown request '%s'", name).data()}
	}
	select {
	case s.queue <- req:
		return plugin.Result{Async: true}
	case <-s.quit:
		return plugin.Result{Err: errors.New("handle is being destroyed")}
	default:
		return plugin.Result{Data: perr(errUnknown, "Too many requests in flight on this handle").data()}
	}
}

// async handles one asynchronous request and pushes its event.
func (s *session) async(req plugin.Request) {
	a, _ := parseArgs(req.Body) // validated by HandleMessage
	name, _ := a.str("request", true)
	var (
		result map[string]any
		jsep   *plugin.JSEP
		e      *pluginError
	)
	switch name {
	case "watch":
		result, jsep, e = s.watch(a)
	case "start":
		result, e = s.start(req.JSEP)
	case "pause":
		result, e = s.pause()
	case "configure":
		result, e = s.configure(a)
	case "switch":
		result, e = s.switchTo(a)
	case "stop":
		result, e = s.stop()
	}
	data := map[string]any{"streaming": "event", "result": result}
	if e != nil {
		data = e.data()
		jsep = nil
	}
	if err := s.h.PushEvent(req.Transaction, data, jsep); err != nil {
		s.p.log.Warn("push event failed", "handle", s.h.HandleID(), "request", name, "err", err)
		if jsep != nil {
			s.mu.Lock()
			s.resetLocked()
			s.mu.Unlock()
			_ = s.h.PushEvent(req.Transaction, perr(errInvalidSDP, "Error preparing the offer: %v", err).data(), nil)
		}
	}
}

func (s *session) watch(a args) (map[string]any, *plugin.JSEP, *pluginError) {
	id, _, e := a.id(true)
	if e != nil {
		return nil, nil, e
	}
	pin, e := a.str("pin", false)
	if e != nil {
		return nil, nil, e
	}
	var wanted map[string]bool
	if mids, ok, e := a.array("media"); e != nil {
		return nil, nil, e
	} else if ok && len(mids) > 0 {
		wanted = map[string]bool{}
		for _, raw := range mids {
			var mid string
			if json.Unmarshal(raw, &mid) != nil {
				var obj struct {
					MID string `json:"mid"`
				}
				if json.Unmarshal(raw, &obj) != nil || obj.MID == "" {
					return nil, nil, perr(errInvalidElement, "Invalid element type (media should be an array of mids)")
				}
				mid = obj.MID
			}
			wanted[mid] = true
		}
	}
	offer := map[string]bool{}
	for _, k := range []string{"offer_audio", "offer_video"} {
		v, e := a.boolean(k, true)
		if e != nil {
			return nil, nil, e
		}
		offer[k[len("offer_"):]] = v
	}
	mp, e := s.p.lookup(id)
	if e != nil {
		return nil, nil, e
	}
	s.p.mu.Lock()
	spec := mp.spec
	s.p.mu.Unlock()
	if spec.PIN != "" && pin != spec.PIN {
		return nil, nil, perr(errUnauthorized, "Unauthorized (wrong pin)")
	}
	if !mp.enabled.Load() {
		return nil, nil, perr(errInvalidState, "Mountpoint %d is disabled", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateIdle {
		return nil, nil, perr(errInvalidState, "Already watching mountpoint %d", s.mountID())
	}
	var offered []offeredStream
	for i, st := range spec.Streams {
		if wanted != nil && !wanted[st.MID] || !offer[st.Media] {
			continue
		}
		offered = append(offered, offeredStream{index: i, mid: st.MID, ssrc: randomSSRC()})
	}
	if len(offered) == 0 {
		return nil, nil, perr(errInvalidElement, "No stream of mountpoint %d left to offer", id)
	}
	sdp := bareOffer(&spec, offered)
	s.state, s.mp, s.offered, s.paused = statePreparing, mp, offered, false
	clear(s.sendOff)
	mp.mu.Lock()
	mp.viewers[s] = struct{}{}
	mp.mu.Unlock()
	return map[string]any{"status": "preparing"}, &plugin.JSEP{Type: "offer", SDP: sdp}, nil
}

func (s *session) start(jsep *plugin.JSEP) (map[string]any, *pluginError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case statePreparing:
		if jsep == nil {
			return nil, perr(errMissingElement, "Missing SDP answer")
		}
		if jsep.Type != "answer" {
			return nil, perr(errInvalidSDP, "Expected an answer, got %q", jsep.Type)
		}
		s.state = stateStarting
		return map[string]any{"status": "starting"}, nil
	case stateStarting, stateStarted:
		if jsep != nil {
			return nil, perr(errInvalidState, "Renegotiation is not supported yet")
		}
		s.paused = false
		s.applyPauseLocked()
		if s.state == stateStarted {
			return map[string]any{"status": "started"}, nil
		}
		return map[string]any{"status": "starting"}, nil
	}
	return nil, perr(errInvalidState, "Not watching anything: send watch first")
}

func (s *session) pause() (map[string]any, *pluginError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateStarting && s.state != stateStarted {
		return nil, perr(errInvalidState, "Can't pause: not started")
	}
	s.paused = true
	s.applyPauseLocked()
	return map[string]any{"status": "pausing"}, nil
}

func (s *session) configure(a args) (map[string]any, *pluginError) {
	changes := map[string]bool{}
	streams, ok, e := a.array("streams")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mp == nil {
		return nil, perr(errInvalidState, "Not watching anything")
	}
	if ok {
		for i, raw := range streams {
			var sa args
			if json.Unmarshal(raw, &sa) != nil {
				return nil, perr(errInvalidElement, "Invalid element type (streams[%d] should be an object)", i)
			}
			mid, e := sa.str("mid", true)
			if e != nil {
				return nil, e
			}
			if s.offeredIndex(mid) < 0 {
				return nil, perr(errInvalidElement, "Invalid element (no stream with mid %q)", mid)
			}
			if sa.has("send") {
				on, e := sa.boolean("send", true)
				if e != nil {
					return nil, e
				}
				changes[mid] = on
			}
		}
	}
	// The legacy form: "audio": false turns off every audio stream.
	for _, media := range []string{"audio", "video"} {
		if !a.has(media) {
			continue
		}
		on, e := a.boolean(media, true)
		if e != nil {
			return nil, e
		}
		for _, o := range s.offered {
			if s.mp.spec.Streams[o.index].Media == media {
				changes[o.mid] = on
			}
		}
	}
	for mid, on := range changes {
		s.sendOff[mid] = !on
		if s.viewer != nil {
			s.viewer.SetStreamEnabled(mid, on)
		}
	}
	return map[string]any{"event": "configured"}, nil
}

func (s *session) switchTo(a args) (map[string]any, *pluginError) {
	id, _, e := a.id(true)
	if e != nil {
		return nil, e
	}
	to, e := s.p.lookup(id)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mp == nil || s.state == stateIdle {
		return nil, perr(errInvalidState, "Can't switch: not watching anything")
	}
	from := s.mp
	if from == to {
		return map[string]any{"switched": "ok", "id": id}, nil
	}
	if !to.enabled.Load() {
		return nil, perr(errCantSwitch, "Can't switch: mountpoint %d is disabled", id)
	}
	s.p.mu.Lock()
	fromSpec, toSpec := from.spec, to.spec
	s.p.mu.Unlock()
	for _, o := range s.offered {
		if o.index >= len(toSpec.Streams) {
			return nil, perr(errCantSwitch, "Can't switch: mountpoint %d has no stream %d", id, o.index)
		}
		a, b := fromSpec.Streams[o.index], toSpec.Streams[o.index]
		if a.Media != b.Media || a.Codec.Name != b.Codec.Name || a.Codec.PT != b.Codec.PT || a.Codec.Clock != b.Codec.Clock {
			return nil, perr(errCantSwitch, "Can't switch: stream %d of mountpoint %d is %s/%s pt %d, not %s/%s pt %d",
				o.index, id, b.Media, b.Codec.Name, b.Codec.PT, a.Media, a.Codec.Name, a.Codec.PT)
		}
	}
	from.mu.Lock()
	delete(from.viewers, s)
	from.mu.Unlock()
	to.mu.Lock()
	to.viewers[s] = struct{}{}
	to.mu.Unlock()
	s.mp = to
	if s.viewer != nil {
		s.viewer.Switch(to.src)
	}
	s.applyPauseLocked()
	return map[string]any{"switched": "ok", "id": id}, nil
}

func (s *session) stop() (map[string]any, *pluginError) {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st == stateIdle {
		return map[string]any{"status": "idle"}, nil
	}
	s.h.ClosePC("stop")
	// A PeerConnection that never came up has nothing for the core to
	// hang up; forget the offer here.
	s.mu.Lock()
	if s.state != stateStarted {
		s.resetLocked()
	}
	s.mu.Unlock()
	return map[string]any{"status": "stopping"}, nil
}

// SetupMedia implements plugin.Session: the viewer's PeerConnection is up.
func (s *session) SetupMedia(m plugin.Media) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mp == nil || (s.state != stateStarting && s.state != statePreparing) {
		s.p.log.Warn("media up on a handle that is not watching", "handle", s.h.HandleID())
		return
	}
	h := m.Handoff
	h.Streams = append([]dataplane.Stream(nil), h.Streams...)
	for i := range h.Streams {
		h.Streams[i].Source = -1
		for _, o := range s.offered {
			if o.mid == h.Streams[i].MID {
				h.Streams[i].Source = o.index
			}
		}
	}
	v, err := s.p.cfg.Plane.AddViewer(h, s.mp.src)
	if err != nil {
		s.p.log.Error("data plane refused the viewer", "handle", s.h.HandleID(), "err", err)
		go s.h.ClosePC("data plane: " + err.Error())
		return
	}
	s.viewer = v
	for mid, off := range s.sendOff {
		if off {
			v.SetStreamEnabled(mid, false)
		}
	}
	s.state = stateStarted
	s.applyPauseLocked()
	s.h.SetEgress(v)
	s.mp.requestKeyframe()
	if err := s.h.PushEvent("", map[string]any{"streaming": "event", "result": map[string]any{"status": "started"}}, nil); err != nil {
		s.p.log.Warn("push started failed", "err", err)
	}
}

// applyPause tells the data plane whether this viewer gets media: not when
// the client paused, nor while its mountpoint is disabled.
func (s *session) applyPause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyPauseLocked()
}

func (s *session) applyPauseLocked() {
	if s.viewer == nil || s.mp == nil {
		return
	}
	s.viewer.SetPaused(s.paused || !s.mp.enabled.Load())
}

// KeyframeRequest implements plugin.Session.
func (s *session) KeyframeRequest() {
	s.mu.Lock()
	mp := s.mp
	s.mu.Unlock()
	if mp != nil {
		mp.requestKeyframe()
	}
}

// HangupMedia implements plugin.Session.
func (s *session) HangupMedia() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

// resetLocked drops the viewer and the mountpoint: after it returns no
// worker sends to this viewer any more.
func (s *session) resetLocked() {
	if s.viewer != nil {
		s.h.SetEgress(nil)
		s.viewer.Close()
		s.viewer = nil
	}
	if s.mp != nil {
		s.mp.mu.Lock()
		delete(s.mp.viewers, s)
		s.mp.mu.Unlock()
		s.mp = nil
	}
	s.state = stateIdle
	s.offered = nil
	s.paused = false
}

// kick removes the viewer on the plugin's initiative (destroy, kick_all).
func (s *session) kick(status string) {
	_ = s.h.PushEvent("", map[string]any{"streaming": "event", "result": map[string]any{"status": status}}, nil)
	s.h.ClosePC(status)
	s.mu.Lock()
	s.resetLocked()
	s.mu.Unlock()
}

// Destroy implements plugin.Session.
func (s *session) Destroy() {
	s.mu.Lock()
	if s.closedAt {
		s.mu.Unlock()
		return
	}
	s.closedAt = true
	s.resetLocked()
	s.mu.Unlock()
	close(s.quit)
	<-s.done
}

// Query implements plugin.Session (the Admin API's handle_info).
func (s *session) Query() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := map[string]any{"state": []string{"idle", "preparing", "starting", "started"}[s.state], "paused": s.paused}
	if s.mp != nil {
		q["mountpoint"] = s.mp.spec.ID
	}
	if s.viewer != nil {
		streams := []any{}
		for _, o := range s.offered {
			c, ok := s.viewer.Counters(o.ssrc)
			if !ok {
				continue
			}
			streams = append(streams, map[string]any{"mid": o.mid, "ssrc": o.ssrc, "packets": c.Packets,
				"octets": c.Octets, "send": !s.sendOff[o.mid]})
		}
		q["streams"] = streams
	}
	return q
}

func (s *session) mountID() uint64 {
	if s.mp == nil {
		return 0
	}
	return s.mp.spec.ID
}

func (s *session) offeredIndex(mid string) int {
	for _, o := range s.offered {
		if o.mid == mid {
			return o.index
		}
	}
	return -1
}

func randomSSRC() uint32 {
	for {
		if v := rand.Uint32(); v != 0 {
			return v
		}
	}
}
