package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// nodeDir is where scripts/test-deps.sh installs the Node.js clients.
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../node")
	mustf(t, err, "node dir")
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: run scripts/test-deps.sh (make test does)")
	}
	for _, m := range []string{"janode", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m)); err != nil {
			t.Fatalf("npm package %s missing in tests/node: run scripts/test-deps.sh (make test does)", m)
		}
	}
	return dir
}

// answerer serves POST /answer: a pion viewer answers the offer in the
// body. It keeps the viewers so the test can check their media.
type answerer struct {
	t       *testing.T
	mu      sync.Mutex
	viewers []*viewer
	url     string
}

func startAnswerer(t *testing.T) *answerer {
	a := &answerer{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustf(t, err, "answerer listen")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offer, _ := io.ReadAll(r.Body)
		v := newViewer(t, nil)
		a.mu.Lock()
		a.viewers = append(a.viewers, v)
		a.mu.Unlock()
		_, _ = io.WriteString(w, v.answer(t, string(offer)))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, v := range a.viewers {
			v.close()
		}
	})
	a.url = "http://" + ln.Addr().String() + "/answer"
	return a
}

type nodeStep struct {
	Step string          `json:"step"`
	Data json.RawMessage `json:"data"`
}

// runNode runs a script of tests/node and returns its JSON step lines.
func runNode(t *testing.T, timeout time.Duration, script string, args ...string) []nodeStep {
	t.Helper()
	return runNodeIn(t, "", timeout, script, args...)
}

// runNodeIn is runNode inside network namespace ns (`ip netns exec`);
// "" is the test's own.
func runNodeIn(t *testing.T, ns string, timeout time.Duration, script string, args ...string) []nodeStep {
	t.Helper()
	dir := nodeDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{"node", script}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var steps []nodeStep
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s nodeStep
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Step != "" {
			steps = append(steps, s)
			t.Logf("%s: %s %s", script, s.Step, truncate(string(s.Data), 300))
		}
	}
	if err != nil {
		t.Fatalf("%s failed: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return steps
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// TestJanodeStreaming: Janode's Streaming module runs info, list, create
// (media[], VP8 + Opus, port 0), info, watch, start with a real answer,
// stop and destroy against Spillway.
func TestJanodeStreaming(t *testing.T) {
	leakCheck(t)
	srv := startServer(t, nil)
	ans := startAnswerer(t)
	steps := runNode(t, 90*time.Second, "janode-streaming.mjs", wsURL(srv), ans.url)
	want := []string{"info", "list", "create", "mp-info", "watch", "start", "webrtcup", "started", "stop", "hangup", "destroy", "done"}
	if len(steps) != len(want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	for i, s := range steps {
		if s.Step != want[i] {
			t.Fatalf("step %d is %q, want %q", i, s.Step, want[i])
		}
	}
	var created struct {
		ID uint64 `json:"id"`
	}
	mustf(t, json.Unmarshal(steps[2].Data, &created), "created")
	if created.ID == 0 {
		t.Errorf("created reply without an id: %s", steps[2].Data)
	}
	ans.mu.Lock()
	defer ans.mu.Unlock()
	if len(ans.viewers) != 1 {
		t.Fatalf("%d answers made, want 1", len(ans.viewers))
	}
	if n := len(ans.viewers[0].packets("video")); n < 30 {
		t.Errorf("the Janode-negotiated viewer got %d video packets in 3 s", n)
	}
}
