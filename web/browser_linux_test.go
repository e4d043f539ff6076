package web

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// nsEnv marks the copy of the test binary that runs inside its own network
// namespace, where loopback is the only interface: Chromium and pion then
// open sockets on 127.0.0.1 only.
const nsEnv = "SPILLWAY_WEB_NETNS"

// TestPageInBrowser loads the page in headless Chromium against a fake
// Janus server and a pion PeerConnection playing the demo clip: list,
// an error from watch, watch, play (frames decoded at 640x360), stats,
// stop. Set SPILLWAY_WEB_SCREENSHOT=file.png to keep a screenshot.
func TestPageInBrowser(t *testing.T) {
	if os.Getenv(nsEnv) == "" {
		if _, err := exec.LookPath("chromium"); err != nil {
			t.Skip("chromium not installed (Debian package chromium)")
		}
		if os.Geteuid() != 0 {
			t.Skip("needs root for a loopback-only network namespace (unshare -n)")
		}
		cmd := exec.Command("unshare", "-n", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
			os.Args[0], "-test.run=^TestPageInBrowser$", "-test.v", "-test.count=1", "-test.timeout=120s")
		cmd.Env = append(os.Environ(), nsEnv+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a network namespace:\n%s", out)
		if err != nil {
			t.Fatalf("browser test: %v", err)
		}
		return
	}
	before := runtime.NumGoroutine()

	fake := newFakeJanus(t)
	mux := http.NewServeMux()
	mux.Handle("/janus", fake)
	mux.Handle("/janus/", fake)
	mux.Handle("/", Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	origin := "http://" + ln.Addr().String()

	b := startChromium(t)
	page := b.page(t)
	if _, err := page.call("Network.enable", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := page.call("Runtime.enable", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := page.call("Page.navigate", map[string]any{"url": origin + "/"}); err != nil {
		t.Fatal(err)
	}

	page.waitFor(t, "the mountpoint list", 10*time.Second,
		`!!document.getElementById('watch-1') && window.spillwayState === 'idle'`)
	table := page.eval(t, `document.getElementById('mountpoints').innerText`)
	for _, want := range []string{"Spillway demo clip", "v: video vp8, a: audio opus", "live"} {
		if !strings.Contains(table.(string), want) {
			t.Errorf("mountpoint table lacks %q:\n%s", want, table)
		}
	}
	if page.eval(t, `document.getElementById('watch-3').disabled`) != true {
		t.Error("Watch button of a disabled mountpoint is enabled")
	}

	page.eval(t, `document.getElementById('watch-2').click()`)
	page.waitFor(t, "the 455 error", 5*time.Second,
		`window.spillwayState === 'error: 455 No such mountpoint/stream 2'`)
	if s := page.eval(t, `document.getElementById('status').textContent`); !strings.HasPrefix(s.(string), "error: 455") {
		t.Errorf("status shows %q", s)
	}

	page.eval(t, `document.getElementById('watch-1').click()`)
	page.waitFor(t, "playing", 20*time.Second,
		`window.spillwayState === 'playing' && window.spillwayStats.framesDecoded >= 60 && window.spillwayStats.bitrate > 0`)
	raw := page.eval(t, `JSON.stringify(window.spillwayStats)`)
	var st struct {
		FramesDecoded, FrameWidth, FrameHeight, PacketsLost int
		Bitrate, AudioBitrate, FramesPerSecond              float64
		IceState, SrtpCipher                                string
	}
	if err := json.Unmarshal([]byte(raw.(string)), &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %s", raw)
	if st.FrameWidth != 640 || st.FrameHeight != 360 {
		t.Errorf("decoded %dx%d, want 640x360", st.FrameWidth, st.FrameHeight)
	}
	if st.Bitrate < 100e3 || st.Bitrate > 2e6 || st.AudioBitrate < 20e3 {
		t.Errorf("bitrates video %.0f, audio %.0f bit/s", st.Bitrate, st.AudioBitrate)
	}
	if st.IceState != "connected" && st.IceState != "completed" {
		t.Errorf("ICE state %q", st.IceState)
	}
	if st.SrtpCipher == "" {
		t.Error("no SRTP cipher in the stats")
	}
	if shown := page.eval(t, `document.getElementById('stat-resolution').textContent`); shown != "640 x 360" {
		t.Errorf("stats panel shows resolution %q", shown)
	}
	if path := os.Getenv("SPILLWAY_WEB_SCREENSHOT"); path != "" {
		page.screenshot(t, path)
	}

	// The page trickles its candidates, then "completed". (Chromium finds
	// none on a namespace with loopback only; the ICE-lite side needs none.)
	trickles := fake.recorded(func(r map[string]any) bool { return r["janus"] == "trickle" })
	for i, tr := range trickles {
		c, _ := tr["candidate"].(map[string]any)
		if last := i == len(trickles)-1; last && c["completed"] != true {
			t.Errorf("last trickle %v, want completed", tr)
		} else if !last && (c["candidate"] == "" || c["sdpMid"] == nil) {
			t.Errorf("trickle %d: %v", i, tr)
		}
	}
	if len(trickles) == 0 {
		t.Error("no trickle request")
	}

	page.eval(t, `document.getElementById('stop').click()`)
	page.waitFor(t, "idle after stop", 5*time.Second,
		`window.spillwayState === 'idle' && document.getElementById('video').srcObject === null && document.getElementById('stop').disabled`)
	stops := fake.recorded(func(r map[string]any) bool {
		body, _ := r["body"].(map[string]any)
		return body["request"] == "stop"
	})
	if len(stops) != 1 {
		t.Errorf("%d stop requests, want 1", len(stops))
	}
	// Watch again after the stop's late "stopping" and "hangup" events.
	page.eval(t, `document.getElementById('watch-1').click()`)
	page.waitFor(t, "playing again", 20*time.Second, `window.spillwayState === 'playing'`)

	page.collect()
	for _, e := range page.exceptions {
		t.Errorf("page exception: %s", e)
	}
	for _, u := range page.requests {
		if !strings.HasPrefix(u, origin+"/") {
			t.Errorf("page requested %s, outside %s", u, origin)
		}
	}

	b.close(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	fake.hangup()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 { // +1: net/http's idle connection reaper may linger
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

type browser struct {
	cmd  *exec.Cmd
	ws   string // the browser target's DevTools URL
	port string
}

func startChromium(t *testing.T) *browser {
	t.Helper()
	cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
		"--autoplay-policy=no-user-gesture-required", "--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port=0", "--window-size=1280,900", "--user-data-dir="+t.TempDir(), "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers go with it
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &browser{cmd: cmd}
	t.Cleanup(func() { b.kill() })
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case b.ws = <-found:
	case <-time.After(20 * time.Second):
		t.Fatal("chromium did not print its DevTools address")
	}
	b.port = regexp.MustCompile(`:(\d+)/`).FindStringSubmatch(b.ws)[1]
	return b
}

// page connects to the first page target.
func (b *browser) page(t *testing.T) *cdp {
	t.Helper()
	res, err := http.Get("http://127.0.0.1:" + b.port + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var targets []struct{ Type, WebSocketDebuggerURL string }
	if err := json.NewDecoder(res.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Type == "page" {
			return dialCDP(t, tg.WebSocketDebuggerURL)
		}
	}
	t.Fatalf("no page target in %+v", targets)
	return nil
}

func (b *browser) close(t *testing.T) {
	c := dialCDP(t, b.ws)
	_, _ = c.call("Browser.close", nil)
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
		b.cmd = nil
	case <-time.After(5 * time.Second):
		b.kill()
	}
}

func (b *browser) kill() {
	if b.cmd == nil {
		return
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	_ = b.cmd.Wait()
	b.cmd = nil
}

// cdp is a minimal Chrome DevTools Protocol client: one call at a time,
// events gathered while waiting for replies.
type cdp struct {
	conn       *websocket.Conn
	id         int
	exceptions []string
	requests   []string
}

func dialCDP(t *testing.T, url string) *cdp {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &cdp{conn: conn}
}

func (c *cdp) call(method string, params any) (json.RawMessage, error) {
	c.id++
	if params == nil {
		params = map[string]any{}
	}
	if err := c.conn.WriteJSON(map[string]any{"id": c.id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var msg struct {
			ID     int
			Method string
			Params json.RawMessage
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if err := c.conn.ReadJSON(&msg); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if msg.Method != "" {
			c.event(msg.Method, msg.Params)
			continue
		}
		if msg.ID != c.id {
			continue
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		return msg.Result, nil
	}
}

func (c *cdp) event(method string, params json.RawMessage) {
	switch method {
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string
				Exception struct{ Description string }
			}
		}
		_ = json.Unmarshal(params, &p)
		c.exceptions = append(c.exceptions, p.ExceptionDetails.Text+" "+p.ExceptionDetails.Exception.Description)
	case "Network.requestWillBeSent":
		var p struct{ Request struct{ URL string } }
		_ = json.Unmarshal(params, &p)
		c.requests = append(c.requests, p.Request.URL)
	}
}

// collect reads the events queued so far.
func (c *cdp) collect() { _, _ = c.call("Runtime.evaluate", map[string]any{"expression": "0"}) }

func (c *cdp) eval(t *testing.T, expr string) any {
	t.Helper()
	v, err := c.evalErr(expr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (c *cdp) evalErr(expr string) (any, error) {
	res, err := c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result           struct{ Value any }
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if r.ExceptionDetails != nil {
		return nil, errors.New(expr + ": " + r.ExceptionDetails.Text)
	}
	return r.Result.Value, nil
}

// waitFor polls expr until it is true, and on timeout shows the page's
// state and event log.
func (c *cdp) waitFor(t *testing.T, what string, timeout time.Duration, expr string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if v, err := c.evalErr(expr); err == nil && v == true {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	state, _ := c.evalErr(`window.spillwayState + ' ' + JSON.stringify(window.spillwayStats)`)
	logText, _ := c.evalErr(`document.getElementById('log').innerText`)
	t.Fatalf("waiting for %s: timed out after %v\nstate: %v\npage log (newest first):\n%v", what, timeout, state, logText)
}

func (c *cdp) screenshot(t *testing.T, path string) {
	res, err := c.call("Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		t.Error(err)
		return
	}
	var r struct{ Data string }
	_ = json.Unmarshal(res, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		t.Error(err)
	}
}
