package janus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// harness is a Gateway with its four transports on loopback httptest
// servers, a fake plugin, fake Media, and clients.
type harness struct {
	t      *testing.T
	gw     *Gateway
	plugin *fakePlugin
	medias *fakeMedias

	api, ws, admin, adminWS *httptest.Server
	client                  *http.Client
	tx                      atomic.Int64
}

type harnessOpt func(*Config, *Gateway)

func withConfig(f func(*Config)) harnessOpt {
	return func(c *Config, _ *Gateway) {
		if c != nil {
			f(c)
		}
	}
}
func withGateway(f func(*Gateway)) harnessOpt {
	return func(_ *Config, g *Gateway) {
		if g != nil {
			f(g)
		}
	}
}

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	leakCheck(t)
	h := &harness{t: t, plugin: newFakePlugin(), medias: &fakeMedias{}}
	cfg := Config{
		ServerName: "test-server",
		Plugins:    nil,
		Media:      h.medias.factory,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg.Plugins = append(cfg.Plugins, h.plugin)
	for _, o := range opts {
		o(&cfg, nil)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, o := range opts {
		o(nil, gw)
	}
	h.gw = gw
	mux := http.NewServeMux()
	mux.Handle("/janus", gw.HTTPHandler())
	mux.Handle("/janus/", gw.HTTPHandler())
	adminMux := http.NewServeMux()
	adminMux.Handle("/admin", gw.AdminHTTPHandler())
	adminMux.Handle("/admin/", gw.AdminHTTPHandler())
	h.api = httptest.NewServer(mux)
	h.ws = httptest.NewServer(gw.WebSocketHandler())
	h.admin = httptest.NewServer(adminMux)
	h.adminWS = httptest.NewServer(gw.AdminWebSocketHandler())
	tr := &http.Transport{}
	h.client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	t.Cleanup(func() {
		if err := gw.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, s := range []*httptest.Server{h.api, h.ws, h.admin, h.adminWS} {
			s.Close()
		}
		tr.CloseIdleConnections()
	})
	return h
}

// leakCheck fails the test when goroutines outlive it.
func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func (h *harness) txn() string { return fmt.Sprintf("tx%d", h.tx.Add(1)) }

// obj is a decoded JSON object.
type obj = map[string]any

func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

func num(t *testing.T, v any) uint64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	var u uint64
	if _, err := fmt.Sscan(n.String(), &u); err != nil {
		t.Fatalf("%v is not an unsigned integer: %v", n, err)
	}
	return u
}

func field(t *testing.T, m obj, path ...string) any {
	t.Helper()
	var v any = m
	for _, p := range path {
		mm, ok := v.(obj)
		if !ok {
			t.Fatalf("no %v in %v", path, m)
		}
		v = mm[p]
	}
	return v
}

func errCode(t *testing.T, m obj) int {
	t.Helper()
	if m["janus"] != "error" {
		t.Fatalf("not an error: %v", m)
	}
	return int(num(t, field(t, m, "error", "code")))
}

// post sends a request over HTTP to base+path and returns the status and body.
func (h *harness) postRaw(url, body string) (int, []byte) {
	h.t.Helper()
	resp, err := h.client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, b
}

func (h *harness) post(path string, req obj) obj {
	h.t.Helper()
	if _, ok := req["transaction"]; !ok {
		req["transaction"] = h.txn()
	}
	b, _ := json.Marshal(req)
	status, body := h.postRaw(h.api.URL+path, string(b))
	if status != http.StatusOK {
		h.t.Fatalf("POST %s: status %d: %s", path, status, body)
	}
	m, ok := decode(h.t, body).(obj)
	if !ok {
		h.t.Fatalf("POST %s: not an object: %s", path, body)
	}
	if tx := req["transaction"]; m["transaction"] != tx {
		h.t.Fatalf("POST %s: transaction %v, want %v: %s", path, m["transaction"], tx, body)
	}
	return m
}

func (h *harness) get(url string) (int, []byte) {
	h.t.Helper()
	resp, err := h.client.Get(url)
	if err != nil {
		h.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// poll long-polls a session with maxev=1 and returns the event.
func (h *harness) poll(sessionID uint64) obj {
	h.t.Helper()
	status, body := h.get(fmt.Sprintf("%s/janus/%d?maxev=1&rid=%d", h.api.URL, sessionID, time.Now().UnixNano()))
	if status != http.StatusOK {
		h.t.Fatalf("poll: status %d: %s", status, body)
	}
	m, ok := decode(h.t, body).(obj)
	if !ok {
		h.t.Fatalf("poll maxev=1 gave a non-object: %s", body)
	}
	return m
}

// pollFor polls until an event of kind arrives (skipping keepalives and others).
func (h *harness) pollFor(sessionID uint64, kind string) obj {
	h.t.Helper()
	for range 10 {
		ev := h.poll(sessionID)
		if ev["janus"] == kind {
			return ev
		}
	}
	h.t.Fatalf("no %q event", kind)
	return nil
}

// createHTTP creates a session and attaches the fake plugin over HTTP.
func (h *harness) createHTTP() (uint64, uint64) {
	h.t.Helper()
	r := h.post("/janus", obj{"janus": "create"})
	sid := num(h.t, field(h.t, r, "data", "id"))
	r = h.post(fmt.Sprintf("/janus/%d", sid), obj{"janus": "attach", "plugin": fakePkg, "opaque_id": "op-1"})
	if r["janus"] != "success" {
		h.t.Fatalf("attach: %v", r)
	}
	return sid, num(h.t, field(h.t, r, "data", "id"))
}

// wsClient is a gorilla client of one of the WebSocket handlers.
type wsClient struct {
	t *testing.T
	h *harness
	c *websocket.Conn
}

func (h *harness) dial(srv *httptest.Server, proto string) *wsClient {
	h.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	if got := resp.Header.Get("Sec-Websocket-Protocol"); got != proto {
		h.t.Fatalf("subprotocol %q, want %q", got, proto)
	}
	w := &wsClient{t: h.t, h: h, c: c}
	h.t.Cleanup(func() { c.Close() })
	return w
}

func (w *wsClient) sendRaw(s string) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatalf("ws write: %v", err)
	}
}

func (w *wsClient) recv() obj {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := w.c.ReadMessage()
	if err != nil {
		w.t.Fatalf("ws read: %v", err)
	}
	m, ok := decode(w.t, b).(obj)
	if !ok {
		w.t.Fatalf("ws: not an object: %s", b)
	}
	return m
}

// request sends a request and returns its reply (the next message with
// its transaction); other messages read meanwhile are returned as well.
func (w *wsClient) request(req obj) (obj, []obj) {
	w.t.Helper()
	if _, ok := req["transaction"]; !ok {
		req["transaction"] = w.h.txn()
	}
	b, _ := json.Marshal(req)
	w.sendRaw(string(b))
	var others []obj
	for range 20 {
		m := w.recv()
		if m["transaction"] == req["transaction"] && m["janus"] != "event" {
			return m, others
		}
		others = append(others, m)
	}
	w.t.Fatalf("no reply to %v", req)
	return nil, nil
}

// recvKind reads until a message of the given kind.
func (w *wsClient) recvKind(kind string) obj {
	w.t.Helper()
	for range 20 {
		if m := w.recv(); m["janus"] == kind {
			return m
		}
	}
	w.t.Fatalf("no %q message", kind)
	return nil
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
