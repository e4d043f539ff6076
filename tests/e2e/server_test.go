// Package e2e runs Spillway end to end with real clients: pion/webrtc
// viewers over the Janus HTTP and WebSocket APIs, Janode, and headless
// Chromium on the demo page.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/internal/server"
)

// startServer runs a node on loopback with ephemeral ports and the
// built-in mountpoints unless mounts is given.
func startServer(t testing.TB, mutate func(*server.Config)) *server.Server {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("SPILLWAY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	cfg := server.Config{
		HTTPAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AdminWSAddr: "127.0.0.1:0",
		AdminSecret: "test-admin", MediaPort: 0, MediaIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Workers: 2,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	// The RTP mountpoint of the defaults listens on fixed ports; tests move
	// it to free ones so several servers can run at once.
	cfg.Mountpoints = testMountpoints()
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.Start(cfg)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func testMountpoints() []json.RawMessage {
	return []json.RawMessage{
		json.RawMessage(`{"type":"clip","id":1,"name":"demo","description":"demo clip"}`),
		json.RawMessage(`{"type":"rtp","id":2,"name":"rtp-live","description":"live RTP",` +
			`"media":[{"type":"video","mid":"v","port":0,"pt":96,"codec":"vp8","rtcpport":0},` +
			`{"type":"audio","mid":"a","port":0,"pt":111,"codec":"opus"}]}`),
	}
}

func httpURL(srv *server.Server) string { return "http://" + srv.Addr("http").String() + "/janus" }
func wsURL(srv *server.Server) string   { return "ws://" + srv.Addr("ws").String() + "/" }
func adminURL(srv *server.Server) string {
	return "http://" + srv.Addr("admin").String() + "/admin"
}

// postJSON sends one request to a Janus HTTP endpoint and decodes the reply.
func postJSON(t testing.TB, url string, body any) msg {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	resp, err := http.Post(url, "application/json", rd)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var m msg
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("POST %s: reply is not JSON: %v", url, err)
	}
	return m
}

// watch runs watch + start for one viewer on one client and waits for
// webrtcup. It returns the handle.
func watch(t testing.TB, c *janusClient, v *viewer, id uint64) uint64 {
	t.Helper()
	h, err := c.attach("janus.plugin.streaming")
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if _, err := c.message(h, msg{"request": "watch", "id": id}, nil, true); err != nil {
		t.Fatalf("watch: %v", err)
	}
	ev, err := c.waitEvent(10*time.Second, func(m msg) bool { return m.obj("jsep") != nil })
	if err != nil {
		t.Fatalf("watch offer: %v", err)
	}
	if st := ev.pluginData().obj("result").str("status"); st != "preparing" {
		t.Fatalf("watch status %q, want preparing (%v)", st, ev)
	}
	answer := v.answer(t, ev.obj("jsep").str("sdp"))
	if _, err := c.message(h, msg{"request": "start"}, msg{"type": "answer", "sdp": answer}, true); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := c.waitEvent(15*time.Second, func(m msg) bool { return m.str("janus") == "webrtcup" }); err != nil {
		t.Fatalf("webrtcup: %v", err)
	}
	return h
}

// leakCheck fails the test if goroutines started during it are still
// running a few seconds after its cleanups.
func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(8 * time.Second)
		for time.Now().Before(deadline) {
			if runtime.NumGoroutine() <= before+2 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
	})
}

func mustf(t testing.TB, err error, format string, a ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, a...), err)
	}
}
