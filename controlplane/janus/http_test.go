package janus

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHTTPInfoAndPing(t *testing.T) {
	h := newHarness(t)
	r := h.post("/janus", obj{"janus": "info"})
	if r["janus"] != "server_info" || r["version_string"] != Version || r["server-name"] != "test-server" {
		t.Fatalf("info: %v", r)
	}
	p := field(t, r, "plugins", fakePkg).(obj)
	if p["name"] != "Fake plugin" || p["version_string"] != "0.0.7" || num(t, p["version"]) != 7 {
		t.Fatalf("plugin info: %v", p)
	}
	for _, k := range []string{"janus.transport.http", "janus.transport.websockets"} {
		if field(t, r, "transports", k) == nil {
			t.Errorf("no transport %s in info", k)
		}
	}
	if num(t, r["session-timeout"]) != 60 || num(t, r["reclaim-session-timeout"]) != 0 {
		t.Errorf("timeouts in info: %v %v", r["session-timeout"], r["reclaim-session-timeout"])
	}
	status, body := h.get(h.api.URL + "/janus/info")
	if m := decode(t, body).(obj); status != http.StatusOK || m["janus"] != "server_info" {
		t.Fatalf("GET /janus/info: %d %s", status, body)
	}
	if r := h.post("/janus", obj{"janus": "ping"}); r["janus"] != "pong" {
		t.Fatalf("ping: %v", r)
	}
	status, body = h.get(h.api.URL + "/janus/ping")
	if m := decode(t, body).(obj); status != http.StatusOK || m["janus"] != "pong" {
		t.Fatalf("GET /janus/ping: %d %s", status, body)
	}
}

func TestHTTPSessionFlow(t *testing.T) {
	h := newHarness(t)
	sid, hid := h.createHTTP()
	if sid >= 1<<53 || hid >= 1<<53 {
		t.Fatalf("ids do not fit a JS number: %d %d", sid, hid)
	}
	hp := fmt.Sprintf("/janus/%d/%d", sid, hid)
	fs := h.plugin.session(hid)
	if fs == nil || fs.h.Opaque() != "op-1" || fs.h.SessionID() != sid {
		t.Fatalf("plugin session: %+v", fs)
	}

	// Sync message: success with plugindata.
	r := h.post(hp, obj{"janus": "message", "body": obj{"request": "sync"}})
	if r["janus"] != "success" || num(t, r["sender"]) != hid || num(t, r["session_id"]) != sid ||
		field(t, r, "plugindata", "plugin") != fakePkg || field(t, r, "plugindata", "data", "result") != "ok" {
		t.Fatalf("sync message: %v", r)
	}

	// Async: ack, then the event on the long poll.
	r = h.post(hp, obj{"janus": "message", "body": obj{"request": "async"}, "transaction": "async-1"})
	if r["janus"] != "ack" || num(t, r["session_id"]) != sid {
		t.Fatalf("async message: %v", r)
	}
	ev := h.pollFor(sid, "event")
	if ev["transaction"] != "async-1" || num(t, ev["sender"]) != hid ||
		field(t, ev, "plugindata", "data", "result") != "done" || ev["jsep"] != nil {
		t.Fatalf("async event: %v", ev)
	}

	// Async with a plugin offer: the event's jsep is completed by the Media.
	h.post(hp, obj{"janus": "message", "body": obj{"request": "async", "offer": true}})
	ev = h.pollFor(sid, "event")
	sdp, _ := field(t, ev, "jsep", "sdp").(string)
	if field(t, ev, "jsep", "type") != "offer" || !strings.Contains(sdp, "plugin-offer") || !strings.Contains(sdp, "a=fake-fingerprint") {
		t.Fatalf("offer event: %v", ev)
	}
	m, made := h.medias.last(hid)
	if made != 1 {
		t.Fatalf("%d Media made, want 1", made)
	}

	// Trickle before the client's answer waits; the answer releases it.
	if r := h.post(hp, obj{"janus": "trickle", "candidate": obj{"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}}); r["janus"] != "ack" {
		t.Fatalf("trickle: %v", r)
	}
	if _, cands, _ := m.snapshot(); len(cands) != 0 {
		t.Fatalf("candidates applied before the remote description: %v", cands)
	}
	r = h.post(hp, obj{"janus": "message", "body": obj{"request": "sync"}, "jsep": obj{"type": "answer", "sdp": "v=0 client-answer"}})
	if r["janus"] != "success" {
		t.Fatalf("message with answer: %v", r)
	}
	h.post(hp, obj{"janus": "trickle", "candidates": []any{
		obj{"candidate": "candidate:2 1 udp 1 127.0.0.1 5001 typ host", "sdpMid": "0"},
		obj{"completed": true},
	}})
	remote, cands, _ := m.snapshot()
	if len(remote) != 1 || remote[0].Type != "answer" || remote[0].SDP != "v=0 client-answer" {
		t.Fatalf("remote descriptions: %+v", remote)
	}
	want := []string{"candidate:1 1 udp 1 127.0.0.1 5000 typ host", "candidate:2 1 udp 1 127.0.0.1 5001 typ host", ""}
	if fmt.Sprint(cands) != fmt.Sprint(want) {
		t.Fatalf("candidates %q, want %q", cands, want)
	}
	fs.mu.Lock()
	last := fs.messages[len(fs.messages)-1]
	fs.mu.Unlock()
	if last.JSEP == nil || last.JSEP.SDP != "v=0 client-answer" {
		t.Fatalf("plugin did not see the jsep: %+v", last)
	}

	// Several events at once with maxev > 1.
	for i := range 3 {
		h.post(hp, obj{"janus": "message", "body": obj{"request": "async"}, "transaction": fmt.Sprintf("multi-%d", i)})
	}
	status, body := h.get(fmt.Sprintf("%s/janus/%d?maxev=5", h.api.URL, sid))
	list, ok := decode(t, body).([]any)
	if status != http.StatusOK || !ok || len(list) != 3 {
		t.Fatalf("maxev=5: %d %s", status, body)
	}
	for i, e := range list {
		if e.(obj)["transaction"] != fmt.Sprintf("multi-%d", i) {
			t.Fatalf("event %d out of order: %v", i, e)
		}
	}

	// An event pushed later by another goroutine.
	h.post(hp, obj{"janus": "message", "body": obj{"request": "later"}, "transaction": "later-1"})
	if ev := h.pollFor(sid, "event"); ev["transaction"] != "later-1" {
		t.Fatalf("later event: %v", ev)
	}

	if r := h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "keepalive"}); r["janus"] != "ack" || num(t, r["session_id"]) != sid {
		t.Fatalf("keepalive: %v", r)
	}

	// Hangup: Media.Hangup, a hangup event, the plugin's HangupMedia.
	if r := h.post(hp, obj{"janus": "hangup"}); r["janus"] != "success" {
		t.Fatalf("hangup: %v", r)
	}
	if _, _, hangups := m.snapshot(); len(hangups) != 1 || hangups[0] != "Janus API" {
		t.Fatalf("Media hangups: %v", hangups)
	}
	if ev := h.pollFor(sid, "hangup"); ev["reason"] != "Janus API" || num(t, ev["sender"]) != hid {
		t.Fatalf("hangup event: %v", ev)
	}
	waitFor(t, "HangupMedia", func() bool { _, hu, _, _ := fs.counts(); return hu == 1 })

	// Detach: success, then detached; the plugin session destroyed.
	if r := h.post(hp, obj{"janus": "detach"}); r["janus"] != "success" {
		t.Fatalf("detach: %v", r)
	}
	if ev := h.pollFor(sid, "detached"); num(t, ev["sender"]) != hid {
		t.Fatalf("detached event: %v", ev)
	}
	waitFor(t, "Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })
	if r := h.post(hp, obj{"janus": "message", "body": obj{"request": "sync"}}); errCode(t, r) != errHandleNotFound {
		t.Fatalf("message to a detached handle: %v", r)
	}

	// Destroy: success; the session is gone for requests and polls.
	if r := h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "destroy"}); r["janus"] != "success" {
		t.Fatalf("destroy: %v", r)
	}
	if r := h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "keepalive"}); errCode(t, r) != errSessionNotFound {
		t.Fatalf("keepalive after destroy: %v", r)
	}
	if status, _ := h.get(fmt.Sprintf("%s/janus/%d", h.api.URL, sid)); status != http.StatusNotFound {
		t.Fatalf("poll after destroy: status %d", status)
	}
}

func TestHTTPCreateWithID(t *testing.T) {
	h := newHarness(t)
	r := h.post("/janus", obj{"janus": "create", "id": 4242})
	if num(t, field(t, r, "data", "id")) != 4242 {
		t.Fatalf("create with id: %v", r)
	}
	if r := h.post("/janus", obj{"janus": "create", "id": 4242}); errCode(t, r) != errSessionConflict {
		t.Fatalf("create with a taken id: %v", r)
	}
}

func TestHTTPLongPollKeepalive(t *testing.T) {
	h := newHarness(t, withGateway(func(g *Gateway) { g.pollWait = 200 * time.Millisecond }))
	sid, _ := h.createHTTP()
	start := time.Now()
	if ev := h.poll(sid); ev["janus"] != "keepalive" {
		t.Fatalf("idle poll: %v", ev)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("idle poll answered after %v", d)
	}
	_, body := h.get(fmt.Sprintf("%s/janus/%d?maxev=3", h.api.URL, sid))
	if list, ok := decode(t, body).([]any); !ok || len(list) != 1 || list[0].(obj)["janus"] != "keepalive" {
		t.Fatalf("idle poll with maxev=3: %s", body)
	}
	// A poll waiting when an event comes gets it at once.
	_, hid := func() (uint64, uint64) {
		r := h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "attach", "plugin": fakePkg})
		return sid, num(t, field(t, r, "data", "id"))
	}()
	got := make(chan obj, 1)
	go func() {
		resp, err := h.client.Get(fmt.Sprintf("%s/janus/%d?maxev=1", h.api.URL, sid))
		if err != nil {
			got <- obj{"err": err.Error()}
			return
		}
		defer resp.Body.Close()
		var m obj
		_ = jsonDecode(resp.Body, &m)
		got <- m
	}()
	time.Sleep(50 * time.Millisecond)
	h.post(fmt.Sprintf("/janus/%d/%d", sid, hid), obj{"janus": "message", "body": obj{"request": "later"}})
	select {
	case m := <-got:
		if m["janus"] != "event" {
			t.Fatalf("waiting poll got %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting poll not woken")
	}
}

func TestHTTPCORS(t *testing.T) {
	h := newHarness(t)
	req, _ := http.NewRequest(http.MethodOptions, h.api.URL+"/janus", nil)
	req.Header.Set("Origin", "https://example.test")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "POST",
		"Access-Control-Allow-Headers": "content-type",
		"Access-Control-Max-Age":       "86400",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("preflight status %d", resp.StatusCode)
	}
	resp, err = h.client.Post(h.api.URL+"/janus", "application/json", strings.NewReader(`{"janus":"ping","transaction":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS header on a POST")
	}
}
