package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestBadInput: every kind of bad request gets its Janus error code and a
// reason, through the whole server, and the server keeps serving.
func TestBadInput(t *testing.T) {
	leakCheck(t)
	srv := startServer(t, nil)
	base := httpURL(srv)

	// A port taken by someone else, for the "port in use" create.
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	mustf(t, err, "busy port")
	defer busy.Close()
	busyPort := busy.LocalAddr().(*net.UDPAddr).Port

	session := uint64(postJSON(t, base, msg{"janus": "create", "transaction": "c"}).obj("data").num("id"))
	if session == 0 {
		t.Fatal("create failed")
	}
	sURL := fmt.Sprintf("%s/%d", base, session)
	handle := uint64(postJSON(t, sURL, msg{"janus": "attach", "plugin": "janus.plugin.streaming", "transaction": "a"}).obj("data").num("id"))
	hURL := fmt.Sprintf("%s/%d", sURL, handle)

	core := []struct {
		name string
		url  string
		body any
		code int
	}{
		{"malformed JSON", base, `{"janus": "create", `, 454},
		{"not an object", base, `[1,2]`, 455},
		{"missing janus", base, msg{"transaction": "x"}, 452},
		{"unknown request", sURL, msg{"janus": "explode", "transaction": "x"}, 453},
		{"missing transaction", base, msg{"janus": "create"}, 456},
		{"unknown session", base + "/12345", msg{"janus": "attach", "plugin": "janus.plugin.streaming", "transaction": "x"}, 458},
		{"unknown handle", sURL + "/12345", msg{"janus": "message", "body": msg{"request": "list"}, "transaction": "x"}, 459},
		{"unknown plugin", sURL, msg{"janus": "attach", "plugin": "janus.plugin.nope", "transaction": "x"}, 460},
		{"bad jsep type", hURL, msg{"janus": "message", "body": msg{"request": "start"}, "jsep": msg{"type": "pranswer", "sdp": "v=0"}, "transaction": "x"}, 464},
		{"answer without an offer", hURL, msg{"janus": "message", "body": msg{"request": "start"}, "jsep": msg{"type": "answer", "sdp": "v=0"}, "transaction": "x"}, 469},
	}
	for _, tc := range core {
		t.Run(tc.name, func(t *testing.T) {
			r := postJSON(t, tc.url, tc.body)
			if r.str("janus") != "error" {
				t.Fatalf("reply %v, want an error", r)
			}
			e := r.obj("error")
			if int(e.num("code")) != tc.code || e.str("reason") == "" {
				t.Errorf("error %v, want code %d with a reason", e, tc.code)
			}
		})
	}

	// Admin API without the right secret.
	r := postJSON(t, adminURL(srv), msg{"janus": "list_sessions", "transaction": "x", "admin_secret": "wrong"})
	if int(r.obj("error").num("code")) != 403 {
		t.Errorf("admin with a wrong secret: %v, want 403", r)
	}

	plugin := []struct {
		name string
		body msg
		code int
	}{
		{"unknown plugin request", msg{"request": "explode"}, 452},
		{"missing request", msg{"id": 1}, 453},
		{"no such mountpoint", msg{"request": "info", "id": 999999}, 455},
		{"bad id type", msg{"request": "info", "id": "one"}, 454},
		{"unknown codec", msg{"request": "create", "type": "rtp", "media": []any{msg{"type": "video", "mid": "v", "port": 0, "codec": "mpeg2"}}}, 456},
		{"audio codec on video", msg{"request": "create", "type": "rtp", "media": []any{msg{"type": "video", "mid": "v", "port": 0, "codec": "opus"}}}, 456},
		{"port in use", msg{"request": "create", "type": "rtp", "media": []any{msg{"type": "video", "mid": "v", "port": busyPort, "codec": "vp8"}}}, 456},
		{"port out of range", msg{"request": "create", "type": "rtp", "media": []any{msg{"type": "video", "mid": "v", "port": 70000, "codec": "vp8"}}}, 454},
		{"no media", msg{"request": "create", "type": "rtp"}, 456},
		{"duplicate id", msg{"request": "create", "type": "rtp", "id": 1, "media": []any{msg{"type": "audio", "mid": "a", "port": 0, "codec": "opus"}}}, 456},
		{"recording", msg{"request": "recording", "action": "start", "id": 1}, 459},
	}
	for _, tc := range plugin {
		t.Run(tc.name, func(t *testing.T) {
			r := postJSON(t, hURL, msg{"janus": "message", "body": tc.body, "transaction": "x"})
			d := r.pluginData()
			if int(d.num("error_code")) != tc.code || d.str("error") == "" {
				t.Errorf("reply %v, want plugin error %d with a reason", r, tc.code)
			}
			if tc.name == "port in use" && !strings.Contains(d.str("error"), "in use") {
				t.Errorf("port in use reason: %q", d.str("error"))
			}
		})
	}

	// Secrets and PINs, on a mountpoint that has both.
	created := postJSON(t, hURL, msg{"janus": "message", "transaction": "x", "body": msg{
		"request": "create", "type": "rtp", "secret": "s3cret", "pin": "1234",
		"media": []any{msg{"type": "audio", "mid": "a", "port": 0, "codec": "opus"}}}})
	id := created.pluginData().obj("stream").num("id")
	if id == 0 {
		t.Fatalf("create: %v", created)
	}
	r = postJSON(t, hURL, msg{"janus": "message", "transaction": "x", "body": msg{"request": "destroy", "id": id, "secret": "nope"}})
	if int(r.pluginData().num("error_code")) != 457 {
		t.Errorf("destroy with a wrong secret: %v, want 457", r)
	}

	// The watch with a wrong PIN is asynchronous: its error is an event.
	c := dialWS(t, wsURL(srv))
	defer c.close()
	mustf(t, c.create(), "ws create")
	h, err := c.attach("janus.plugin.streaming")
	mustf(t, err, "attach")
	_, err = c.message(h, msg{"request": "watch", "id": id, "pin": "0000"}, nil, true)
	mustf(t, err, "watch ack")
	ev, err := c.waitEvent(5*time.Second, func(m msg) bool { return m.str("janus") == "event" })
	mustf(t, err, "watch event")
	if int(ev.pluginData().num("error_code")) != 457 {
		t.Errorf("watch with a wrong PIN: %v, want 457", ev)
	}

	// An answer that is not SDP, to a real offer.
	h2, err := c.attach("janus.plugin.streaming")
	mustf(t, err, "attach")
	events := c.handleEvents(h2)
	_, err = c.message(h2, msg{"request": "watch", "id": 1}, nil, true)
	mustf(t, err, "watch")
	_, err = waitOn(events, 5*time.Second, func(m msg) bool { return m.obj("jsep") != nil })
	mustf(t, err, "offer")
	r, err = c.message(h2, msg{"request": "start"}, msg{"type": "answer", "sdp": "this is not SDP"}, true)
	if err == nil || int(r.obj("error").num("code")) != 465 {
		t.Errorf("start with an invalid answer: %v %v, want 465", r, err)
	}

	// Still serving.
	r = postJSON(t, hURL, msg{"janus": "message", "transaction": "x", "body": msg{"request": "list"}})
	if r.pluginData().str("streaming") != "list" {
		t.Errorf("list after the bad input: %v", r)
	}
	postJSON(t, sURL, msg{"janus": "destroy", "transaction": "d"})
}
