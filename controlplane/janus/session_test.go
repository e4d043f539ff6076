package janus

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestSessionTimeout(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.SessionTimeout = 2 * time.Second }))
	// One session over WebSocket, one over HTTP with a long poll waiting.
	w := h.dial(h.ws, wsProtocol)
	r, _ := w.request(obj{"janus": "create"})
	wsSID := num(t, field(t, r, "data", "id"))
	r, _ = w.request(obj{"janus": "attach", "session_id": wsSID, "plugin": fakePkg})
	wsHID := num(t, field(t, r, "data", "id"))
	httpSID, httpHID := h.createHTTP()

	polled := make(chan obj, 1)
	go func() {
		resp, err := h.client.Get(fmt.Sprintf("%s/janus/%d?maxev=1", h.api.URL, httpSID))
		if err != nil {
			polled <- obj{"err": err.Error()}
			return
		}
		defer resp.Body.Close()
		var m obj
		_ = jsonDecode(resp.Body, &m)
		polled <- m
	}()

	start := time.Now()
	ev := w.recvKind("timeout")
	if got := num(t, ev["session_id"]); got != wsSID {
		t.Fatalf("timeout for session %d, want %d", got, wsSID)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 4*time.Second {
		t.Fatalf("timed out after %v, want about 2 s", d)
	}
	select {
	case m := <-polled:
		if m["janus"] != "timeout" {
			t.Fatalf("long poll got %v, want the timeout event", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting long poll got nothing")
	}
	for _, hid := range []uint64{wsHID, httpHID} {
		fs := h.plugin.session(hid)
		waitFor(t, "plugin Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })
	}
	if r, _ := w.request(obj{"janus": "keepalive", "session_id": wsSID}); errCode(t, r) != errSessionNotFound {
		t.Fatalf("keepalive after timeout: %v", r)
	}
}

func TestKeepaliveKeepsSessionAlive(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.SessionTimeout = time.Second }))
	w := h.dial(h.ws, wsProtocol)
	r, _ := w.request(obj{"janus": "create"})
	sid := num(t, field(t, r, "data", "id"))
	for range 5 {
		time.Sleep(400 * time.Millisecond)
		if r, _ := w.request(obj{"janus": "keepalive", "session_id": sid}); r["janus"] != "ack" {
			t.Fatalf("keepalive: %v", r)
		}
	}
}

func TestWebSocketCloseAndReclaim(t *testing.T) {
	tests := []struct {
		name    string
		reclaim time.Duration
		survive bool
	}{
		{"reclaim 0 destroys with the socket", 0, false},
		{"reclaim keeps the session for a claim", 3 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *Config) { c.ReclaimTimeout = tc.reclaim }))
			w := h.dial(h.ws, wsProtocol)
			r, _ := w.request(obj{"janus": "create"})
			sid := num(t, field(t, r, "data", "id"))
			r, _ = w.request(obj{"janus": "attach", "session_id": sid, "plugin": fakePkg})
			hid := num(t, field(t, r, "data", "id"))
			fs := h.plugin.session(hid)
			w.c.Close()

			if !tc.survive {
				waitFor(t, "session destroyed", func() bool { return h.gw.findSession(sid) == nil })
				waitFor(t, "plugin Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })
				return
			}
			time.Sleep(300 * time.Millisecond)
			if h.gw.findSession(sid) == nil {
				t.Fatal("session destroyed despite the reclaim timeout")
			}
			// Events for a session without a transport are dropped, not queued.
			_ = fs.h.PushEvent("", map[string]any{"lost": true}, nil)

			w2 := h.dial(h.ws, wsProtocol)
			if r, _ := w2.request(obj{"janus": "claim", "session_id": sid}); r["janus"] != "success" || num(t, r["session_id"]) != sid {
				t.Fatalf("claim: %v", r)
			}
			r, early := w2.request(obj{"janus": "message", "session_id": sid, "handle_id": hid, "body": obj{"request": "async"}, "transaction": "after-claim"})
			if r["janus"] != "ack" || len(early) != 0 {
				t.Fatalf("message after claim: %v after %v", r, early)
			}
			if ev := w2.recvKind("event"); ev["transaction"] != "after-claim" {
				t.Fatalf("event after claim: %v", ev)
			}
			if _, _, _, d := fs.counts(); d != 0 {
				t.Fatal("plugin session destroyed")
			}
		})
	}
}

func TestReclaimTimeoutExpires(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.ReclaimTimeout = 500 * time.Millisecond }))
	w := h.dial(h.ws, wsProtocol)
	r, _ := w.request(obj{"janus": "create"})
	sid := num(t, field(t, r, "data", "id"))
	w.c.Close()
	start := time.Now()
	waitFor(t, "unclaimed session destroyed", func() bool { return h.gw.findSession(sid) == nil })
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("destroyed after %v, before the reclaim timeout", d)
	}
}

func TestClaimFromHTTPToWebSocket(t *testing.T) {
	h := newHarness(t)
	sid, hid := h.createHTTP()
	// A long poll is waiting when the session moves away.
	polled := make(chan int, 1)
	go func() {
		resp, err := h.client.Get(fmt.Sprintf("%s/janus/%d", h.api.URL, sid))
		if err != nil {
			polled <- -1
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	time.Sleep(50 * time.Millisecond)

	w := h.dial(h.ws, wsProtocol)
	if r, _ := w.request(obj{"janus": "claim", "session_id": sid}); r["janus"] != "success" {
		t.Fatalf("claim: %v", r)
	}
	select {
	case st := <-polled:
		if st != http.StatusNotFound {
			t.Fatalf("the old long poll ended with %d", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the old long poll was not released")
	}
	// Requests still work over HTTP; events now go to the WebSocket.
	if r := h.post(fmt.Sprintf("/janus/%d/%d", sid, hid), obj{"janus": "message", "body": obj{"request": "later"}, "transaction": "moved"}); r["janus"] != "ack" {
		t.Fatalf("message: %v", r)
	}
	if ev := w.recvKind("event"); ev["transaction"] != "moved" {
		t.Fatalf("event on the WebSocket: %v", ev)
	}
	if st, _ := h.get(fmt.Sprintf("%s/janus/%d", h.api.URL, sid)); st != http.StatusNotFound {
		t.Fatalf("HTTP poll of a claimed session: %d", st)
	}
	// And back to HTTP.
	if r := h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "claim"}); r["janus"] != "success" {
		t.Fatalf("claim back: %v", r)
	}
	h.post(fmt.Sprintf("/janus/%d/%d", sid, hid), obj{"janus": "message", "body": obj{"request": "later"}, "transaction": "back"})
	if ev := h.pollFor(sid, "event"); ev["transaction"] != "back" {
		t.Fatalf("event back on HTTP: %v", ev)
	}
}

func TestCloseDestroysEverything(t *testing.T) {
	h := newHarness(t)
	sid, hid := h.createHTTP()
	w := h.dial(h.ws, wsProtocol)
	r, _ := w.request(obj{"janus": "create"})
	wsSID := num(t, field(t, r, "data", "id"))
	r, _ = w.request(obj{"janus": "attach", "session_id": wsSID, "plugin": fakePkg})
	wsHID := num(t, field(t, r, "data", "id"))

	polled := make(chan int, 1)
	go func() {
		resp, err := h.client.Get(fmt.Sprintf("%s/janus/%d", h.api.URL, sid))
		if err != nil {
			polled <- -1
			return
		}
		resp.Body.Close()
		polled <- resp.StatusCode
	}()
	time.Sleep(50 * time.Millisecond)
	if err := h.gw.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-polled:
	case <-time.After(5 * time.Second):
		t.Fatal("long poll still waiting after Close")
	}
	for _, id := range []uint64{hid, wsHID} {
		if _, _, _, d := h.plugin.session(id).counts(); d != 1 {
			t.Fatalf("handle %d: Destroy called %d times", id, d)
		}
	}
	if !h.plugin.isClosed() {
		t.Fatal("plugin not closed")
	}
	if r := h.post("/janus", obj{"janus": "create"}); errCode(t, r) != errNotAcceptingNewSessions {
		t.Fatalf("create after Close: %v", r)
	}
}

func TestHTTPUnpolledQueueOverflow(t *testing.T) {
	h := newHarness(t, withGateway(func(g *Gateway) { g.queueLen = 4 }))
	sid, hid := h.createHTTP()
	fs := h.plugin.session(hid)
	// Nobody polls: the fifth event overflows the queue and the session
	// goes as if its transport had (reclaim 0).
	for i := range 5 {
		if err := fs.h.PushEvent("", map[string]any{"n": i}, nil); err != nil {
			t.Fatalf("PushEvent %d: %v", i, err)
		}
	}
	waitFor(t, "session destroyed", func() bool { return h.gw.findSession(sid) == nil })
	waitFor(t, "plugin Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })
}
