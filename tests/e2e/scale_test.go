package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTwoHundredViewers: 200 pion viewers in this process watch mountpoint
// 1 of a Spillway process; it reports the time for all of them to reach
// webrtcup and the server's memory per viewer. The race detector makes
// this ten times slower and proves nothing more than the other tests, so
// `make test` runs it in a pass of its own without -race.
func TestTwoHundredViewers(t *testing.T) {
	if raceEnabled {
		t.Skip("runs without -race in make test's scale pass (make test-scale)")
	}
	n := 200
	if v := os.Getenv("SPILLWAY_SCALE_VIEWERS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	bin := buildServer(t)
	ports := freeTCPPorts(t, 4)
	cfg := filepath.Join(t.TempDir(), "spillway.json")
	mustf(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`{
  "janus": {"http": "127.0.0.1:%d", "ws": "127.0.0.1:%d", "admin_http": "127.0.0.1:%d", "admin_ws": "127.0.0.1:%d"},
  "webrtc": {"port": 0, "ips": ["127.0.0.1"]},
  "mountpoints": [{"type":"clip","id":1,"description":"demo"}]
}`, ports[0], ports[1], ports[2], ports[3])), 0o644), "config")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-config", cfg)
	stderr, err := cmd.StderrPipe()
	mustf(t, err, "stderr")
	mustf(t, cmd.Start(), "start server")
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "spillway started") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	time.Sleep(500 * time.Millisecond)
	rssBefore := rssKiB(t, cmd.Process.Pid)

	c := dialWS(t, fmt.Sprintf("ws://127.0.0.1:%d/", ports[1]))
	defer c.close()
	mustf(t, c.create(), "create")
	viewers := make([]*viewer, n)
	defer func() {
		for _, v := range viewers {
			if v != nil {
				v.close()
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	var upMu sync.Mutex
	var lastUp time.Duration
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := c.attach("janus.plugin.streaming")
			if err != nil {
				errs <- err
				return
			}
			events := c.handleEvents(h)
			v := newViewer(t, nil)
			viewers[i] = v
			if _, err := c.message(h, msg{"request": "watch", "id": 1}, nil, true); err != nil {
				errs <- err
				return
			}
			offer, err := waitOn(events, 20*time.Second, func(m msg) bool { return m.obj("jsep") != nil })
			if err != nil {
				errs <- fmt.Errorf("viewer %d offer: %w", i, err)
				return
			}
			answer := v.answer(t, offer.obj("jsep").str("sdp"))
			if _, err := c.message(h, msg{"request": "start"}, msg{"type": "answer", "sdp": answer}, true); err != nil {
				errs <- err
				return
			}
			if _, err := waitOn(events, 30*time.Second, func(m msg) bool { return m.str("janus") == "webrtcup" }); err != nil {
				errs <- fmt.Errorf("viewer %d webrtcup: %w", i, err)
				return
			}
			upMu.Lock()
			if d := time.Since(start); d > lastUp {
				lastUp = d
			}
			upMu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d viewers reached webrtcup in %v", n, lastUp.Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	rssAfter := rssKiB(t, cmd.Process.Pid)
	starved := 0
	for _, v := range viewers {
		if len(v.packets("video")) < 60 || len(v.packets("audio")) < 100 {
			starved++
		}
	}
	if starved > 0 {
		t.Errorf("%d of %d viewers got less than 2 s of media in 5 s", starved, n)
	}
	t.Logf("server RSS %d KiB with no viewer, %d KiB with %d: %.1f KiB per viewer",
		rssBefore, rssAfter, n, float64(rssAfter-rssBefore)/float64(n))
}

func waitOn(ch chan msg, d time.Duration, match func(msg) bool) (msg, error) {
	deadline := time.After(d)
	for {
		select {
		case m := <-ch:
			if match(m) {
				return m, nil
			}
		case <-deadline:
			return nil, fmt.Errorf("timed out after %v", d)
		}
	}
}

func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spillway")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/spillway").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		mustf(t, err, "free port")
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	mustf(t, err, "proc status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
