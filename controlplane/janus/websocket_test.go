package janus

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestWebSocketFlow(t *testing.T) {
	h := newHarness(t)
	w := h.dial(h.ws, wsProtocol)

	if r, _ := w.request(obj{"janus": "info"}); r["janus"] != "server_info" {
		t.Fatalf("info: %v", r)
	}
	if r, _ := w.request(obj{"janus": "ping"}); r["janus"] != "pong" {
		t.Fatalf("ping: %v", r)
	}
	r, _ := w.request(obj{"janus": "create"})
	sid := num(t, field(t, r, "data", "id"))
	r, _ = w.request(obj{"janus": "attach", "session_id": sid, "plugin": fakePkg})
	hid := num(t, field(t, r, "data", "id"))
	on := func(req obj) obj {
		req["session_id"], req["handle_id"] = sid, hid
		return req
	}

	r, _ = w.request(on(obj{"janus": "message", "body": obj{"request": "sync"}}))
	if r["janus"] != "success" || field(t, r, "plugindata", "data", "result") != "ok" || num(t, r["sender"]) != hid {
		t.Fatalf("sync: %v", r)
	}

	// The plugin pushes its event from inside HandleMessage: the ack must
	// still come first.
	r, early := w.request(on(obj{"janus": "message", "transaction": "a1",
		"body": obj{"request": "async"}, "jsep": obj{"type": "offer", "sdp": "v=0 client-offer"}}))
	if r["janus"] != "ack" || len(early) != 0 {
		t.Fatalf("async: reply %v after %v", r, early)
	}
	ev := w.recvKind("event")
	if ev["transaction"] != "a1" || field(t, ev, "jsep", "type") != "answer" ||
		!strings.Contains(field(t, ev, "jsep", "sdp").(string), "a=fake-fingerprint") {
		t.Fatalf("async event: %v", ev)
	}
	m, _ := h.medias.last(hid)
	if remote, _, _ := m.snapshot(); len(remote) != 1 || remote[0].Type != "offer" {
		t.Fatalf("remote descriptions: %+v", remote)
	}

	r, _ = w.request(on(obj{"janus": "trickle", "candidate": obj{"candidate": "candidate:1 1 udp 1 127.0.0.1 6000 typ host", "sdpMLineIndex": 0}}))
	if r["janus"] != "ack" {
		t.Fatalf("trickle: %v", r)
	}
	w.request(on(obj{"janus": "trickle", "candidate": obj{"completed": true}}))
	if _, cands, _ := m.snapshot(); len(cands) != 2 || cands[1] != "" {
		t.Fatalf("candidates: %q", cands)
	}

	if r, _ := w.request(obj{"janus": "keepalive", "session_id": sid}); r["janus"] != "ack" {
		t.Fatalf("keepalive: %v", r)
	}

	r, _ = w.request(on(obj{"janus": "hangup"}))
	if r["janus"] != "success" {
		t.Fatalf("hangup: %v", r)
	}
	if ev := w.recvKind("hangup"); ev["reason"] != "Janus API" {
		t.Fatalf("hangup event: %v", ev)
	}

	// Detach of a handle with a live PeerConnection: success, then hangup
	// and detached, in that order.
	w.request(on(obj{"janus": "message", "body": obj{"request": "async", "offer": true}}))
	w.recvKind("event")
	r, early = w.request(on(obj{"janus": "detach"}))
	if r["janus"] != "success" || len(early) != 0 {
		t.Fatalf("detach: %v after %v", r, early)
	}
	if ev := w.recv(); ev["janus"] != "hangup" || ev["reason"] != "Detach" {
		t.Fatalf("first event after detach: %v", ev)
	}
	if ev := w.recv(); ev["janus"] != "detached" || num(t, ev["sender"]) != hid {
		t.Fatalf("second event after detach: %v", ev)
	}
	fs := h.plugin.session(hid)
	waitFor(t, "Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })

	if r, _ := w.request(obj{"janus": "destroy", "session_id": sid}); r["janus"] != "success" {
		t.Fatalf("destroy: %v", r)
	}
	if r, _ := w.request(obj{"janus": "keepalive", "session_id": sid}); errCode(t, r) != errSessionNotFound {
		t.Fatalf("keepalive after destroy: %v", r)
	}
}

func TestWebSocketSlowClientDropped(t *testing.T) {
	h := newHarness(t, withGateway(func(g *Gateway) { g.queueLen = 4 }))
	w := h.dial(h.ws, wsProtocol)
	r, _ := w.request(obj{"janus": "create"})
	sid := num(t, field(t, r, "data", "id"))
	r, _ = w.request(obj{"janus": "attach", "session_id": sid, "plugin": fakePkg})
	hid := num(t, field(t, r, "data", "id"))
	fs := h.plugin.session(hid)

	// The client stops reading; the plugin keeps pushing big events. Socket
	// buffers fill, the writer blocks, the queue overflows: the core must
	// drop the connection instead of blocking the plugin.
	big := strings.Repeat("x", 256<<10)
	start := time.Now()
	dropped := false
	for i := 0; i < 400 && !dropped; i++ {
		t0 := time.Now()
		err := fs.h.PushEvent("", map[string]any{"blob": big}, nil)
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("PushEvent blocked for %v", d)
		}
		dropped = err != nil
		if !dropped {
			// Still queued: see whether the session went with its connection.
			dropped = h.gw.findSession(sid) == nil
		}
	}
	if !dropped {
		waitFor(t, "session dropped with its connection", func() bool { return h.gw.findSession(sid) == nil })
	}
	waitFor(t, "plugin Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })
	t.Logf("dropped after %v", time.Since(start))
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := w.c.ReadMessage(); err != nil {
			break // the server closed it
		}
	}
}

func TestWebSocketBadSubprotocolStillServes(t *testing.T) {
	// janus.js and Janode always ask for janus-protocol; a client that does
	// not is served anyway, as libwebsockets does for the default protocol.
	h := newHarness(t)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(h.ws.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &wsClient{t: t, h: h, c: c}
	if r, _ := w.request(obj{"janus": "ping"}); r["janus"] != "pong" {
		t.Fatalf("ping: %v", r)
	}
}
