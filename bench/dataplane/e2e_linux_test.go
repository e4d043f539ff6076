//go:build linux

package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the benchmark creates network namespaces and attaches XDP (CI runs as root)")
	}
}

// benchScript runs scripts/bench-dataplane.sh with namespaces and a binary
// of this test's own, so it never meets a real run's.
func benchScript(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	dir := t.TempDir()
	ns := fmt.Sprintf("spwbt%d", os.Getpid())
	cmd := exec.Command("../../scripts/bench-dataplane.sh", args...)
	cmd.Env = append(os.Environ(), "BENCH_NETNS="+ns, "BENCH_BIN="+filepath.Join(dir, "bench"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so a signal reaches the script and the command
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
		exec.Command("ip", "netns", "del", ns+"-tx").Run()
		exec.Command("ip", "netns", "del", ns+"-rx").Run()
	})
	return cmd, ns
}

func requireNoNetns(t *testing.T, ns string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), ns) {
		t.Fatalf("namespaces left behind:\n%s", out)
	}
}

// A short run of the whole benchmark: every mode produces rows whose
// counters show the mode really was what it says (GSO segments, packets
// per system call), nothing is lost between the sender and the sink, and
// the script leaves no namespace behind.
func TestBenchEndToEnd(t *testing.T) {
	requireRoot(t)
	out := filepath.Join(t.TempDir(), "rows.csv")
	cmd, ns := benchScript(t, "-viewers", "50", "-rates", "2", "-modes", "socket,nogso,nommsg,batch1,queue,afxdp",
		"-other-modes", "socket", "-warmup", "200ms", "-window", "400ms", "-tries", "1", "-rounds", "1", "-quiet-wait", "0s",
		"-backlog", "32", "-csv", out, "-md", filepath.Join(t.TempDir(), "rows.md"))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	requireNoNetns(t, ns)

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]map[string]float64{}
	for _, rec := range recs[1:] {
		m := map[string]float64{}
		for i, h := range csvHeader[2:] {
			m[h], _ = strconv.ParseFloat(rec[i+2], 64)
		}
		rows[rec[0]+" "+rec[1]] = m
	}
	if len(rows) != 10 {
		t.Fatalf("%d rows, want 10:\n%s", len(rows), b)
	}
	for name, r := range rows {
		if r["mpps"] <= 0 || r["gbit_s"] <= 0 || r["errors"] != 0 || r["drops"] != 0 {
			t.Errorf("%s: %v", name, r)
		}
		if r["loss"] > 0.001 || r["loss"] < -0.001 {
			t.Errorf("%s: loss %.4f between sender and sink", name, r["loss"])
		}
		if r["x_limit"] <= 0 {
			t.Errorf("%s: no ratio to the limit probe", name)
		}
	}
	for _, tt := range []struct {
		row, col string
		min, max float64
	}{
		{"gcm limit_probe", "pkt_per_dgram", 16, 16},
		{"gcm limit_probe", "pkt_per_call", 512, 512},
		{"gcm socket", "pkt_per_dgram", 1.5, 64},    // GSO: a frame's packets in one datagram
		{"gcm socket", "pkt_per_call", 32, 1e6},     // many viewers per sendmmsg
		{"gcm nogso", "pkt_per_dgram", 1, 1},        // GSO off
		{"gcm nogso", "pkt_per_call", 32, 1e6},      // still sendmmsg
		{"gcm nommsg", "pkt_per_call", 1, 64},       // one datagram per call
		{"gcm nommsg", "pkt_per_dgram", 1.5, 64},    // still GSO
		{"gcm queue", "pkt_per_call", 1, 1},         // one sendto per packet
		{"gcm queue", "x_queue", 1, 1},              //
		{"gcm socket", "x_queue", 1.0001, 1000},     // faster than the baseline
		{"cm limit_probe", "pkt_per_dgram", 16, 16}, //
		{"gcm afxdp_limit", "pkt_per_dgram", 1, 1},  // a frame per packet
		{"gcm afxdp", "pkt_per_dgram", 1, 1},        //
		{"gcm afxdp", "pkt_per_call", 2, 1e6},       // many frames per wake-up
	} {
		if v := rows[tt.row][tt.col]; v < tt.min || v > tt.max {
			t.Errorf("%s %s = %.2f, want [%g, %g]", tt.row, tt.col, v, tt.min, tt.max)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", b)
	}
}

// Interrupted in the middle of a row, the command closes its plane and XDP
// link and the script still removes both namespaces.
func TestBenchInterrupted(t *testing.T) {
	requireRoot(t)
	cmd, ns := benchScript(t, "-viewers", "20", "-rates", "1", "-profiles", "gcm", "-modes", "socket", "-probe=false",
		"-warmup", "30s", "-rounds", "1", "-quiet-wait", "0s", "-csv", filepath.Join(t.TempDir(), "x.csv"))
	var outb syncBuffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(outb.String(), "gcm socket") { // the row has begun
		if time.Now().After(deadline) {
			t.Fatalf("no row started:\n%s", outb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("interrupted run exited 0:\n%s", outb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGINT:\n%s", outb.String())
	}
	requireNoNetns(t, ns)
}

// syncBuffer is written by exec's copying goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
