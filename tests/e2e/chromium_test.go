package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestChromiumDemoPage: headless Chromium opens the demo page, watches
// mountpoint 1, and getStats() shows framesDecoded rising for 5 s. The
// screenshot is kept in tests/artifacts/.
func TestChromiumDemoPage(t *testing.T) {
	requireChromium(t)
	srv := startServer(t, nil)
	playDemoPage(t, "", "http://"+srv.Addr("http").String()+"/", "demo-page.png")
}

// requireChromium fails when Chromium is not installed.
func requireChromium(t *testing.T) {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("chromium is not installed at %s: run scripts/test-deps.sh (make test does)", bin)
	}
}

// playDemoPage has headless Chromium, in network namespace ns ("": the
// test's own), watch mountpoint 1 on the demo page at url, and checks
// that it decoded at least 20 frames a second for 5 s. The screenshot goes
// to tests/artifacts/shot.
func playDemoPage(t *testing.T, ns, url, shot string) {
	t.Helper()
	artifacts, err := filepath.Abs("../artifacts")
	mustf(t, err, "artifacts")
	mustf(t, os.MkdirAll(artifacts, 0o755), "artifacts dir")
	shot = filepath.Join(artifacts, shot)
	_ = os.Remove(shot)
	steps := runNodeIn(t, ns, 2*time.Minute, "demo-page.mjs", url, shot)
	var stats struct {
		Samples []float64 `json:"samples"`
	}
	for _, s := range steps {
		if s.Step == "stats" {
			mustf(t, json.Unmarshal(s.Data, &stats), "stats")
		}
	}
	if len(stats.Samples) < 6 {
		t.Fatalf("no framesDecoded samples: %v", steps)
	}
	if d := stats.Samples[len(stats.Samples)-1] - stats.Samples[0]; d < 5*20 {
		t.Errorf("only %.0f frames decoded in 5 s (samples %v)", d, stats.Samples)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot at %s", shot)
	}
}
