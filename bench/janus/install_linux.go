//go:build linux

package janus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spillway-rtc/spillway/bench/logtail"
)

// Install returns the path of the janus binary, installing Debian's janus
// package first when no binary is found. It runs apt-get update only when the
// install fails for want of a package list, so a machine with fresh lists
// pays nothing for it. After an install, a janus.service that the package
// enabled is stopped and disabled: the bench runs its own instances and a
// system one would hold the default ports.
func Install(ctx context.Context, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p, err := Locate(); err == nil {
		log.Info("janus found", "binary", p.Binary, "version", p.Version,
			"plugins", p.PluginsDir, "transports", p.TransportsDir)
		return p.Binary, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("janus: not installed, and installing Debian's janus package needs root")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("janus: not installed and no apt-get to install it: %w", err)
	}
	log.Info("janus missing: installing Debian package janus")
	out, err := aptGet(ctx, "install", "-y", "--no-install-recommends", "janus")
	if err != nil && needsUpdate(out) {
		log.Info("apt-get install found no package list; running apt-get update")
		if uout, uerr := aptGet(ctx, "update"); uerr != nil {
			return "", fmt.Errorf("janus: apt-get update: %w: %s", uerr, logtail.Of(uout, 800))
		}
		out, err = aptGet(ctx, "install", "-y", "--no-install-recommends", "janus")
	}
	if err != nil {
		return "", fmt.Errorf("janus: apt-get install janus: %w: %s", err, logtail.Of(out, 800))
	}
	disableService(ctx, log)
	p, err := Locate()
	if err != nil {
		return "", fmt.Errorf("janus: installed the package but: %w", err)
	}
	log.Info("janus installed", "binary", p.Binary, "version", p.Version,
		"plugins", p.PluginsDir, "transports", p.TransportsDir)
	return p.Binary, nil
}

// Paths is where an installed Janus keeps its parts.
type Paths struct {
	Binary        string
	PluginsDir    string // holds libjanus_streaming.so
	TransportsDir string // holds libjanus_http.so
	Version       string // as `janus --version` prints it, e.g. "1.1.2"
}

// Locate finds the janus binary on PATH (or /usr/bin, /opt/janus/bin) and the
// plugin and transport folders that belong to it. Debian puts them under
// /usr/lib/<triplet>/janus; a source build under <prefix>/lib/janus.
func Locate() (Paths, error) {
	var p Paths
	bin, err := exec.LookPath("janus")
	if err != nil {
		for _, c := range []string{"/usr/bin/janus", "/opt/janus/bin/janus", "/usr/local/bin/janus"} {
			if st, serr := os.Stat(c); serr == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				bin, err = c, nil
				break
			}
		}
	}
	if err != nil {
		return p, fmt.Errorf("janus: no janus binary on PATH, in /usr/bin or /opt/janus/bin: %w", err)
	}
	p.Binary = bin
	prefix := filepath.Dir(filepath.Dir(bin))
	p.PluginsDir, err = findDir(prefix, "plugins", pluginFile)
	if err != nil {
		return p, err
	}
	p.TransportsDir, err = findDir(prefix, "transports", transportFile)
	if err != nil {
		return p, err
	}
	p.Version, err = Version(context.Background(), bin)
	if err != nil {
		return p, err
	}
	return p, nil
}

// findDir looks for <lib>/janus/<kind>/<file> under the binary's prefix,
// whatever the multiarch triplet.
func findDir(prefix, kind, file string) (string, error) {
	patterns := []string{
		filepath.Join(prefix, "lib", "*", "janus", kind, file),
		filepath.Join(prefix, "lib", "janus", kind, file),
		filepath.Join(prefix, "lib64", "janus", kind, file),
		filepath.Join("/usr/lib", "*", "janus", kind, file),
		filepath.Join("/usr/lib", "janus", kind, file),
	}
	for _, pat := range patterns {
		m, _ := filepath.Glob(pat)
		if len(m) > 0 {
			return filepath.Dir(m[0]), nil
		}
	}
	return "", fmt.Errorf("janus: no %s found (looked for %s under %s/lib/*/janus/%s and /usr/lib/*/janus/%s)",
		kind, file, prefix, kind, kind)
}

// Version runs `janus --version` and returns the dotted version, e.g. "1.1.2".
func Version(ctx context.Context, bin string) (string, error) {
	// 1.1.x knows no --version and exits 1, but prints its banner first.
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if v := parseVersion(string(out)); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("janus: no version banner from %s --version (%v): %s", bin, err, logtail.Of(out, 400))
}

func aptGet(ctx context.Context, args ...string) ([]byte, error) {
	// Another engineer's apt-get may hold the lock: wait for it rather than fail.
	full := append([]string{"-o", "DPkg::Lock::Timeout=300", "-q"}, args...)
	cmd := exec.CommandContext(ctx, "apt-get", full...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.CombinedOutput()
}

// needsUpdate tells whether apt-get failed because its package lists are
// missing or stale rather than for another reason.
func needsUpdate(out []byte) bool {
	s := string(out)
	for _, m := range []string{"Unable to locate package", "has no installation candidate",
		"Unable to fetch some archives", "404  Not Found", "Failed to fetch"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// disableService stops a janus.service the package may have started; without
// systemd running (containers) there is nothing to do.
func disableService(ctx context.Context, log *slog.Logger) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return
	}
	out, err := exec.CommandContext(ctx, "systemctl", "disable", "--now", "janus.service").CombinedOutput()
	if err != nil {
		log.Warn("janus: could not disable janus.service", "err", err, "out", logtail.Of(out, 300))
		return
	}
	log.Info("janus: stopped and disabled the package's janus.service")
}
