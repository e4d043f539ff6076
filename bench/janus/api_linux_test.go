//go:build linux

package janus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// apiClient speaks just enough of the Janus HTTP API for the tests and
// the viewer process; fatalf ends either.
type apiClient struct {
	fatalf func(format string, args ...any)
	hc     *http.Client
	base   string
}

// reply is the union of the Janus API answers the tests read.
type reply struct {
	Janus string `json:"janus"`
	Data  struct {
		ID uint64 `json:"id"`
	} `json:"data"`
	Error *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"error"`
	PluginData struct {
		Plugin string          `json:"plugin"`
		Data   json.RawMessage `json:"data"`
	} `json:"plugindata"`
	JSEP *struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	} `json:"jsep"`
}

func (a *apiClient) do(ctx context.Context, method, path string, body map[string]any) reply {
	var rd io.Reader
	if body != nil {
		body["transaction"] = fmt.Sprintf("t%d", rand.Uint64())
		b, err := json.Marshal(body)
		if err != nil {
			a.fatalf("%v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		a.fatalf("%v", err)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.fatalf("%v", err)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		a.fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	if r.Janus == "error" || r.Error != nil {
		a.fatalf("%s %s: error %s", method, path, raw)
	}
	return r
}

// session creates a session and attaches the Streaming plugin.
func (a *apiClient) session(ctx context.Context) (session, handle uint64) {
	r := a.do(ctx, http.MethodPost, "", map[string]any{"janus": "create"})
	if r.Janus != "success" || r.Data.ID == 0 {
		a.fatalf("create: %+v", r)
	}
	session = r.Data.ID
	r = a.do(ctx, http.MethodPost, fmt.Sprintf("/%d", session), map[string]any{"janus": "attach", "plugin": "janus.plugin.streaming"})
	if r.Janus != "success" || r.Data.ID == 0 {
		a.fatalf("attach: %+v", r)
	}
	return session, r.Data.ID
}

// request sends a synchronous Streaming request and decodes its answer.
func (a *apiClient) request(ctx context.Context, session, handle uint64, body map[string]any, out any) {
	r := a.do(ctx, http.MethodPost, fmt.Sprintf("/%d/%d", session, handle), map[string]any{"janus": "message", "body": body})
	if r.Janus != "success" || r.PluginData.Plugin != "janus.plugin.streaming" {
		a.fatalf("%v: %+v", body, r)
	}
	if err := json.Unmarshal(r.PluginData.Data, out); err != nil {
		a.fatalf("%v: %v: %s", body, err, r.PluginData.Data)
	}
}

// event long-polls the session until an event that carries a JSEP arrives.
func (a *apiClient) jsepEvent(ctx context.Context, session uint64) reply {
	for ctx.Err() == nil {
		r := a.do(ctx, http.MethodGet, fmt.Sprintf("/%d?maxev=1", session), nil)
		if r.JSEP != nil {
			return r
		}
	}
	a.fatalf("no JSEP event: %v", ctx.Err())
	return reply{}
}

func (a *apiClient) destroy(ctx context.Context, session uint64) {
	a.do(ctx, http.MethodPost, fmt.Sprintf("/%d", session), map[string]any{"janus": "destroy"})
}

// mountpoint is the part of list and info answers the tests check.
type mountpoint struct {
	ID      uint64 `json:"id"`
	Enabled bool   `json:"enabled"`
	Threads int    `json:"threads"`
	Media   []struct {
		Type  string `json:"type"`
		PT    int    `json:"pt"`
		Codec string `json:"codec"`
		Port  int    `json:"port"`
		AgeMS *int64 `json:"age_ms"`
	} `json:"media"`
}

// freePorts returns n distinct ports that were free for both TCP and UDP
// on ip a moment ago.
func freePorts(t *testing.T, ip string, n int) []int {
	t.Helper()
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		closers = append(closers, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
		if err != nil {
			continue
		}
		closers = append(closers, u)
		ports = append(ports, port)
	}
	return ports
}

// leakCheck fails the test when goroutines outlive it.
func leakCheck(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// cpusAllowed returns Cpus_allowed_list of every thread of pid.
func cpusAllowed(t *testing.T, pid int) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, e.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				out[e.Name()] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// processGone waits for pid to disappear from /proc.
func processGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("janus pid %d still exists after Stop", pid)
}
