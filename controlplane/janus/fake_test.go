package janus

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/spillway-rtc/spillway/controlplane/plugin"
	"github.com/spillway-rtc/spillway/dataplane"
)

const fakePkg = "janus.plugin.fake"

// fakePlugin answers messages by their "request":
//
//	sync        success with {"result":"ok"}
//	async       ack; the event {"result":"done"} is pushed from inside HandleMessage
//	            (so the core must hold it until the ack is written); when the
//	            message had a jsep offer, the event carries an answer, and with
//	            "offer":true it carries the plugin's own offer
//	later       ack; the event is pushed from another goroutine afterwards
//	error       Result.Err
//	notobject   sync data that is not an object
type fakePlugin struct {
	mu       sync.Mutex
	sessions map[uint64]*fakeSession // by handle id
	closed   bool
	wg       sync.WaitGroup
}

func newFakePlugin() *fakePlugin { return &fakePlugin{sessions: map[uint64]*fakeSession{}} }

func (p *fakePlugin) Info() plugin.Info {
	return plugin.Info{Package: fakePkg, Name: "Fake plugin", Description: "test double",
		Author: "tests", Version: 7, VersionString: "0.0.7"}
}

func (p *fakePlugin) NewSession(h plugin.Handle) (plugin.Session, error) {
	if h.Opaque() == "refuse" {
		return nil, errors.New("refused by the fake plugin")
	}
	s := &fakeSession{p: p, h: h}
	p.mu.Lock()
	p.sessions[h.HandleID()] = s
	p.mu.Unlock()
	return s, nil
}

func (p *fakePlugin) Close() error {
	p.wg.Wait()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

func (p *fakePlugin) session(handleID uint64) *fakeSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions[handleID]
}

func (p *fakePlugin) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

type fakeSession struct {
	p *fakePlugin
	h plugin.Handle

	mu        sync.Mutex
	messages  []plugin.Request
	setups    []plugin.Media
	hangups   int
	keyframes int
	destroyed int
	pushErr   error
}

func (s *fakeSession) HandleMessage(req plugin.Request) plugin.Result {
	s.mu.Lock()
	s.messages = append(s.messages, req)
	s.mu.Unlock()
	var body struct {
		Request string `json:"request"`
		Offer   bool   `json:"offer"`
		Size    int    `json:"size"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return plugin.Result{Err: fmt.Errorf("bad body: %w", err)}
	}
	switch body.Request {
	case "sync":
		return plugin.Result{Data: map[string]any{"result": "ok"}}
	case "async":
		var jsep *plugin.JSEP
		switch {
		case req.JSEP != nil && req.JSEP.Type == "offer":
			jsep = &plugin.JSEP{Type: "answer", SDP: "v=0 plugin-answer\r\n"}
		case body.Offer:
			jsep = &plugin.JSEP{Type: "offer", SDP: "v=0 plugin-offer\r\n"}
		}
		s.setPushErr(s.h.PushEvent(req.Transaction, map[string]any{"result": "done"}, jsep))
		return plugin.Result{Async: true}
	case "later":
		s.p.wg.Add(1)
		go func() {
			defer s.p.wg.Done()
			s.setPushErr(s.h.PushEvent(req.Transaction, map[string]any{"result": "later"}, nil))
		}()
		return plugin.Result{Async: true}
	case "error":
		return plugin.Result{Err: errors.New("the fake plugin refuses")}
	case "notobject":
		return plugin.Result{Data: "just a string"}
	}
	return plugin.Result{Data: map[string]any{"error_code": 499, "error": "unknown request " + body.Request}}
}

func (s *fakeSession) setPushErr(err error) {
	s.mu.Lock()
	s.pushErr = err
	s.mu.Unlock()
}

func (s *fakeSession) SetupMedia(m plugin.Media) {
	s.mu.Lock()
	s.setups = append(s.setups, m)
	s.mu.Unlock()
}

func (s *fakeSession) KeyframeRequest() {
	s.mu.Lock()
	s.keyframes++
	s.mu.Unlock()
}

func (s *fakeSession) HangupMedia() {
	s.mu.Lock()
	s.hangups++
	s.mu.Unlock()
}

func (s *fakeSession) Destroy() {
	s.mu.Lock()
	s.destroyed++
	s.mu.Unlock()
}

func (s *fakeSession) Query() any {
	return map[string]any{"fake_state": "watching"}
}

// counts returns (setups, hangups, keyframes, destroyed).
func (s *fakeSession) counts() (int, int, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.setups), s.hangups, s.keyframes, s.destroyed
}

// fakeMedia is a Media that completes SDP with a marker line, refuses SDP
// containing "invalid", and hangs up synchronously.
type fakeMedia struct {
	ev MediaEvents

	mu         sync.Mutex
	remote     []plugin.JSEP
	candidates []string
	egress     plugin.Egress
	hangups    []string
	down       bool
}

func (m *fakeMedia) LocalDescription(j plugin.JSEP) (plugin.JSEP, error) {
	if strings.Contains(j.SDP, "invalid") {
		return plugin.JSEP{}, errors.New("cannot complete invalid SDP")
	}
	j.SDP += "a=ice-lite\r\na=fake-fingerprint\r\n"
	return j, nil
}

func (m *fakeMedia) RemoteDescription(j plugin.JSEP) error {
	if strings.Contains(j.SDP, "invalid") {
		return errors.New("no m-line in SDP")
	}
	if j.Type == "pranswer" {
		return fmt.Errorf("fake: %w", ErrJSEPType)
	}
	m.mu.Lock()
	m.remote = append(m.remote, j)
	m.mu.Unlock()
	return nil
}

func (m *fakeMedia) Trickle(c string) error {
	m.mu.Lock()
	m.candidates = append(m.candidates, c)
	m.mu.Unlock()
	if strings.Contains(c, "garbage") {
		return errors.New("unparsable candidate")
	}
	return nil
}

func (m *fakeMedia) SetEgress(e plugin.Egress) {
	m.mu.Lock()
	m.egress = e
	m.mu.Unlock()
}

func (m *fakeMedia) Hangup(reason string) {
	m.mu.Lock()
	m.hangups = append(m.hangups, reason)
	first := !m.down
	m.down = true
	m.mu.Unlock()
	if first {
		m.ev.Down(reason)
	}
}

func (m *fakeMedia) Info() any { return map[string]any{"fake_pc": true} }

func (m *fakeMedia) snapshot() (remote []plugin.JSEP, cands, hangups []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]plugin.JSEP(nil), m.remote...), append([]string(nil), m.candidates...), append([]string(nil), m.hangups...)
}

// fakeMedias records every Media the factory made, per handle.
type fakeMedias struct {
	mu  sync.Mutex
	all map[uint64][]*fakeMedia
}

func (f *fakeMedias) factory(_, handleID uint64, ev MediaEvents) Media {
	m := &fakeMedia{ev: ev}
	f.mu.Lock()
	if f.all == nil {
		f.all = map[uint64][]*fakeMedia{}
	}
	f.all[handleID] = append(f.all[handleID], m)
	f.mu.Unlock()
	return m
}

// last returns the newest Media of a handle and how many were made.
func (f *fakeMedias) last(handleID uint64) (*fakeMedia, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ms := f.all[handleID]
	if len(ms) == 0 {
		return nil, 0
	}
	return ms[len(ms)-1], len(ms)
}

func testMedia() plugin.Media {
	return plugin.Media{Handoff: dataplane.Handoff{}}
}

type pluginJSEP = plugin.JSEP

type fakeEgress struct{}

func (*fakeEgress) Retransmit(uint32, []uint16) int { return 0 }
func (*fakeEgress) Counters(uint32) (dataplane.StreamCounters, bool) {
	return dataplane.StreamCounters{}, false
}
func (*fakeEgress) SetPath(netip.AddrPort, netip.AddrPort) {}
