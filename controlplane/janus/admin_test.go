package janus

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// adminClient sends Admin API requests over HTTP or WebSocket.
type adminClient struct {
	name string
	do   func(path string, req obj) obj
}

func adminClients(h *harness) []adminClient {
	w := h.dial(h.adminWS, wsAdminProtocol)
	return []adminClient{
		{"http", func(path string, req obj) obj {
			h.t.Helper()
			b, _ := json.Marshal(req)
			status, body := h.postRaw(h.admin.URL+path, string(b))
			if status != http.StatusOK {
				h.t.Fatalf("admin POST %s: %d %s", path, status, body)
			}
			return decode(h.t, body).(obj)
		}},
		{"ws", func(_ string, req obj) obj {
			h.t.Helper()
			r, _ := w.request(req)
			return r
		}},
	}
}

func TestAdminAPI(t *testing.T) {
	const secret = "overlord"
	var statusCalls int
	h := newHarness(t, withConfig(func(c *Config) {
		c.AdminSecret = secret
		c.Status = func() map[string]any {
			statusCalls++
			// A key of Janus's own is not overwritten.
			return map[string]any{"dataplane": map[string]any{"viewers": statusCalls}, "sessions": -1}
		}
	}))
	sid, hid := h.createHTTP()
	// Negotiate so the handle has a Media.
	h.post(fmt.Sprintf("/janus/%d/%d", sid, hid), obj{"janus": "message", "body": obj{"request": "async"},
		"jsep": obj{"type": "offer", "sdp": "v=0 offer"}})

	for _, c := range adminClients(h) {
		t.Run(c.name, func(t *testing.T) {
			tx := func(req obj) obj {
				req["transaction"] = h.txn()
				return req
			}
			// No secret needed.
			if r := c.do("/admin", tx(obj{"janus": "info"})); r["janus"] != "server_info" {
				t.Fatalf("info: %v", r)
			}
			if r := c.do("/admin", tx(obj{"janus": "ping"})); r["janus"] != "pong" {
				t.Fatalf("ping: %v", r)
			}
			// Everything else needs it.
			for _, req := range []obj{
				{"janus": "list_sessions"},
				{"janus": "get_status", "admin_secret": "wrong"},
				{"janus": "list_handles", "session_id": sid},
				{"janus": "handle_info", "session_id": sid, "handle_id": hid, "admin_secret": 5},
				{"janus": "destroy_session", "session_id": sid},
			} {
				if r := c.do("/admin", tx(req)); errCode(t, r) != errUnauthorized {
					t.Fatalf("%v without the secret: %v", req, r)
				}
			}
			auth := func(req obj) obj {
				req["admin_secret"] = secret
				return tx(req)
			}
			r := c.do("/admin", auth(obj{"janus": "list_sessions"}))
			if l, _ := r["sessions"].([]any); len(l) != 1 || num(t, l[0]) != sid {
				t.Fatalf("list_sessions: %v", r)
			}
			r = c.do(fmt.Sprintf("/admin/%d", sid), auth(obj{"janus": "list_handles", "session_id": sid}))
			if l, _ := r["handles"].([]any); len(l) != 1 || num(t, l[0]) != hid || num(t, r["session_id"]) != sid {
				t.Fatalf("list_handles: %v", r)
			}
			r = c.do("/admin", auth(obj{"janus": "handle_info", "session_id": sid, "handle_id": hid}))
			info, _ := r["info"].(obj)
			if r["janus"] != "success" || num(t, r["handle_id"]) != hid || info == nil {
				t.Fatalf("handle_info: %v", r)
			}
			for k, want := range map[string]any{
				"plugin": fakePkg, "opaque_id": "op-1", "session_transport": "janus.transport.http",
			} {
				if info[k] != want {
					t.Errorf("handle_info %s = %v, want %v", k, info[k], want)
				}
			}
			if field(t, info, "plugin_specific", "fake_state") != "watching" ||
				field(t, info, "webrtc", "fake_pc") != true ||
				field(t, info, "flags", "got-offer") != true || field(t, info, "flags", "got-answer") != true {
				t.Fatalf("handle_info details: %v", info)
			}
			if num(t, info["session_timeout"]) != 60 || num(t, info["current_time"]) < num(t, info["created"]) {
				t.Fatalf("handle_info times: %v", info)
			}
			r = c.do("/admin", auth(obj{"janus": "handle_info", "session_id": sid, "handle_id": hid, "plugin_only": true}))
			if pi := r["info"].(obj); pi["flags"] != nil || pi["plugin_specific"] == nil {
				t.Fatalf("handle_info plugin_only: %v", r)
			}
			r = c.do("/admin", auth(obj{"janus": "get_status"}))
			if num(t, field(t, r, "status", "session_timeout")) != 60 {
				t.Fatalf("get_status: %v", r)
			}
			// The server's own counters join the status, read at the request.
			if num(t, field(t, r, "status", "dataplane", "viewers")) < 1 || num(t, field(t, r, "status", "sessions")) < 1 {
				t.Fatalf("get_status with the server's counters: %v", r)
			}
			before := statusCalls
			c.do("/admin", auth(obj{"janus": "get_status"}))
			if statusCalls != before+1 {
				t.Fatalf("get_status read the counters %d times, want once", statusCalls-before)
			}
			if r := c.do("/admin", auth(obj{"janus": "create"})); errCode(t, r) != errInvalidRequestPath {
				t.Fatalf("create on the admin API: %v", r)
			}
			if r := c.do("/admin", auth(obj{"janus": "list_handles", "session_id": 999})); errCode(t, r) != errSessionNotFound {
				t.Fatalf("unknown session: %v", r)
			}
			if r := c.do("/admin", auth(obj{"janus": "handle_info", "session_id": sid, "handle_id": 999})); errCode(t, r) != errHandleNotFound {
				t.Fatalf("unknown handle: %v", r)
			}
		})
	}

	c := adminClients(h)[0]
	auth := func(req obj) obj {
		req["admin_secret"], req["transaction"] = secret, h.txn()
		return req
	}
	// Timeouts: global, then per session.
	if r := c.do("/admin", auth(obj{"janus": "set_session_timeout", "timeout": 30})); r["janus"] != "success" || num(t, r["timeout"]) != 30 {
		t.Fatalf("set_session_timeout: %v", r)
	}
	if r := h.post("/janus", obj{"janus": "info"}); num(t, r["session-timeout"]) != 30 {
		t.Fatalf("info after set_session_timeout: %v", r)
	}
	if r := c.do("/admin", auth(obj{"janus": "set_session_timeout", "timeout": -5})); errCode(t, r) != errInvalidElementType {
		t.Fatalf("negative global timeout: %v", r)
	}
	if r := c.do("/admin", auth(obj{"janus": "set_session_timeout", "session_id": sid, "timeout": 10})); r["janus"] != "success" || num(t, r["session_id"]) != sid {
		t.Fatalf("session set_session_timeout: %v", r)
	}
	r := c.do("/admin", auth(obj{"janus": "handle_info", "session_id": sid, "handle_id": hid}))
	if num(t, field(t, r, "info", "session_timeout")) != 10 {
		t.Fatalf("session timeout not applied: %v", r)
	}

	// A second session, then destroy_session of the first.
	r2 := h.post("/janus", obj{"janus": "create"})
	sid2 := num(t, field(t, r2, "data", "id"))
	if r := c.do("/admin", auth(obj{"janus": "destroy_session", "session_id": sid})); r["janus"] != "success" {
		t.Fatalf("destroy_session: %v", r)
	}
	fs := h.plugin.session(hid)
	waitFor(t, "plugin Destroy", func() bool { _, _, _, d := fs.counts(); return d == 1 })
	r = c.do("/admin", auth(obj{"janus": "list_sessions"}))
	var ids []uint64
	for _, v := range r["sessions"].([]any) {
		ids = append(ids, num(t, v))
	}
	if !slices.Equal(ids, []uint64{sid2}) {
		t.Fatalf("sessions after destroy_session: %v, want [%d]", ids, sid2)
	}
}

func TestAdminAPIWithoutSecret(t *testing.T) {
	h := newHarness(t)
	c := adminClients(h)[1]
	sid, _ := h.createHTTP()
	r := c.do("", obj{"janus": "list_sessions", "transaction": "x"})
	if l, _ := r["sessions"].([]any); r["janus"] != "success" || len(l) != 1 || num(t, l[0]) != sid {
		t.Fatalf("list_sessions without a configured secret: %v", r)
	}
}

// fakeKnobs is a two-knob table: "a/num" takes integers, "a/ro" refuses writes.
type fakeKnobs struct {
	mu  sync.Mutex
	num string
}

func (k *fakeKnobs) Paths() []string { return []string{"a/num", "a/ro"} }

func (k *fakeKnobs) Get(path string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch path {
	case "a/num":
		return k.num, nil
	case "a/ro":
		return "fixed", nil
	}
	return "", fmt.Errorf("no knob %q", path)
}

func (k *fakeKnobs) Set(path, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch path {
	case "a/num":
		if _, err := strconv.Atoi(value); err != nil {
			return fmt.Errorf("knob %s: %q is not an integer", path, value)
		}
		k.num = value
		return nil
	case "a/ro":
		return fmt.Errorf("knob %s needs a restart", path)
	}
	return fmt.Errorf("no knob %q", path)
}

func TestAdminKnobs(t *testing.T) {
	const secret = "overlord"
	k := &fakeKnobs{num: "1"}
	h := newHarness(t, withConfig(func(c *Config) { c.AdminSecret = secret; c.Knobs = k }))
	for _, c := range adminClients(h) {
		t.Run(c.name, func(t *testing.T) {
			do := func(req obj) obj {
				req["transaction"] = h.txn()
				req["admin_secret"] = secret
				return c.do("/admin", req)
			}
			if r := do(obj{"janus": "set_knob", "path": "a/num", "value": "42"}); r["janus"] != "success" || r["value"] != "42" {
				t.Fatalf("set_knob: %v", r)
			}
			if r := do(obj{"janus": "get_knob", "path": "a/num"}); r["value"] != "42" {
				t.Fatalf("get_knob: %v", r)
			}
			r := do(obj{"janus": "get_knobs"})
			if all, _ := r["knobs"].(map[string]any); all["a/num"] != "42" || all["a/ro"] != "fixed" {
				t.Fatalf("get_knobs: %v", r)
			}
			for _, bad := range []obj{
				{"janus": "set_knob", "path": "a/num", "value": "many"},
				{"janus": "set_knob", "path": "a/ro", "value": "x"},
				{"janus": "set_knob", "path": "nope", "value": "1"},
				{"janus": "get_knob", "path": "nope"},
			} {
				if r := do(bad); errCode(t, r) != errInvalidElementType {
					t.Errorf("%v: %v, want %d", bad, r, errInvalidElementType)
				}
			}
			if r := do(obj{"janus": "set_knob", "path": "a/num"}); errCode(t, r) != errMissingMandatoryElement {
				t.Errorf("set_knob without a value: %v", r)
			}
			if v, _ := k.Get("a/num"); v != "42" {
				t.Errorf("a refused value replaced the old one: %q", v)
			}
			if r := c.do("/admin", obj{"janus": "get_knobs", "transaction": h.txn()}); errCode(t, r) != errUnauthorized {
				t.Errorf("get_knobs without the secret: %v", r)
			}
		})
	}
}
