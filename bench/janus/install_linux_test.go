//go:build linux

package janus

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInstall installs Debian's janus when it is missing (a minute the first
// time), then finds its binary, plugin and transport folders and version.
func TestInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestInstall needs root (apt-get install janus); CI runs as root")
	}
	_, before := exec.LookPath("janus")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	bin, err := Install(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("janus at %s (installed by this test: %v)", bin, before != nil)
	p, err := Locate()
	if err != nil {
		t.Fatal(err)
	}
	if p.Binary != bin {
		t.Errorf("Locate binary %s, Install said %s", p.Binary, bin)
	}
	for _, f := range []string{filepath.Join(p.PluginsDir, pluginFile), filepath.Join(p.TransportsDir, transportFile)} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if !strings.HasPrefix(p.Version, "1.1.") {
		t.Errorf("version %q, want 1.1.x", p.Version)
	}
	t.Logf("version %s, plugins %s, transports %s", p.Version, p.PluginsDir, p.TransportsDir)
	// A second call finds it without apt.
	if bin2, err := Install(ctx, nil); err != nil || bin2 != bin {
		t.Errorf("second Install = %q, %v", bin2, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
