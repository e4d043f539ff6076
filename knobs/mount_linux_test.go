package knobs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the crashing server of TestMountStaleAfterCrash: with
// KNOBS_HELPER_DIR set, the test binary mounts a knob directory there, says so,
// and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("KNOBS_HELPER_DIR"); dir != "" {
		tab, err := NewTable(testKnobs(&recorder{})...)
		if err == nil {
			tab.Start()
			_, err = tab.Mount(dir, slog.New(slog.DiscardHandler))
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("mounted")
		select {}
	}
	os.Exit(m.Run())
}

// requireFUSE fails (never skips) without root and /dev/fuse: CI has both, so a
// missing one is a broken environment, not a reason to test less.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("the knob directory tests need FUSE, and /dev/fuse is missing (%v): load the fuse module or pass --device /dev/fuse to the container", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the knob directory tests mount FUSE directly and need root (euid %d)", os.Geteuid())
	}
}

// leakCheck fails the test if goroutines started during it outlive it.
func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

func mountTest(t *testing.T) (*Table, *recorder, string, io.Closer) {
	t.Helper()
	requireFUSE(t)
	leakCheck(t)
	tab, rec := newTestTable(t)
	tab.Start()
	dir := t.TempDir()
	c, err := tab.Mount(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // a no-op when the test closed it
	return tab, rec, dir, c
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestMountTree(t *testing.T) {
	tab, _, dir, c := mountTest(t)
	if got := names(t, dir); !slices.Equal(got, []string{".errors", "affinity", "dataplane", "ice", "janus"}) {
		t.Errorf("root = %v", got)
	}
	if got := names(t, filepath.Join(dir, "dataplane")); !slices.Equal(got, []string{"batch", "flush", "gso", "mode", "workers"}) {
		t.Errorf("dataplane/ = %v", got)
	}
	for _, k := range tab.Knobs() {
		p := filepath.Join(dir, k.Path)
		want, _ := tab.Get(k.Path)
		if got := readFile(t, p); got != want+"\n" {
			t.Errorf("cat %s = %q, want %q", k.Path, got, want+"\n")
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o444)
		if k.Live {
			wantMode = 0o644
		}
		if st.Mode() != wantMode || st.Size() != int64(len(want)+1) {
			t.Errorf("stat %s = %v size %d, want %v size %d", k.Path, st.Mode(), st.Size(), wantMode, len(want)+1)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("after Close the directory holds %v", got)
	}
	if mountedAt(dir) {
		t.Error("still in mountinfo after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMountWrites(t *testing.T) {
	tab, rec, dir, c := mountTest(t)
	rec.refuse["777"] = "the plane says no"
	file := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		path, write string
		errno       syscall.Errno // 0: accepted
		want        string        // value afterwards
		errText     string        // in .errors after a refusal
	}{
		{"dataplane/gso", "false\n", 0, "false", ""},
		{"dataplane/batch", "64", 0, "64", ""},
		{"dataplane/batch", "0\n", syscall.EINVAL, "64", `knob dataplane/batch: cannot set "0": below the minimum 1`},
		{"dataplane/batch", "777\n", syscall.EINVAL, "64", `knob dataplane/batch: cannot set "777": the plane says no`},
		{"dataplane/flush", "250us\n", 0, "250µs", ""},
		{"dataplane/flush", "soon\n", syscall.EINVAL, "250µs", `knob dataplane/flush: cannot set "soon": not a duration`},
		{"dataplane/workers", "4\n", syscall.EPERM, "0", `knob dataplane/workers: cannot set "4": needs a restart`},
		{"dataplane/mode", "socket\n", 0, "socket", ""}, // unchanged: no restart needed
		{"janus/name", "edge 1\n", 0, "edge 1", ""},
	}
	for _, tt := range tests {
		err := os.WriteFile(file(tt.path), []byte(tt.write), 0o644)
		var errno syscall.Errno
		if err != nil && !errors.As(err, &errno) {
			t.Fatalf("write %s: %v", tt.path, err)
		}
		if errno != tt.errno {
			t.Errorf("write %q to %s: errno %v, want %v", tt.write, tt.path, errno, tt.errno)
		}
		if got := readFile(t, file(tt.path)); got != tt.want+"\n" {
			t.Errorf("after writing %q, cat %s = %q, want %q", tt.write, tt.path, got, tt.want+"\n")
		}
		if got, _ := tab.Get(tt.path); got != tt.want {
			t.Errorf("after writing %q, Get(%s) = %q", tt.write, tt.path, got)
		}
		if tt.errText != "" && !strings.Contains(readFile(t, file(".errors")), tt.errText) {
			t.Errorf(".errors lacks %q:\n%s", tt.errText, readFile(t, file(".errors")))
		}
	}
	if got := strings.Join(rec.seen(), " "); got != "dataplane/gso=false dataplane/batch=64 dataplane/flush=250µs" {
		t.Errorf("Apply calls = %s", got)
	}

	// A name that is no knob cannot be created.
	err := os.WriteFile(file("dataplane/gsoo"), []byte("1"), 0o644)
	if !errors.Is(err, syscall.ENOENT) || !strings.Contains(readFile(t, file(".errors")), "knob dataplane/gsoo: unknown knob") {
		t.Errorf("write to an unknown name: %v", err)
	}
	// .errors is read-only.
	if err := os.WriteFile(file(".errors"), nil, 0o644); err == nil {
		t.Error(".errors accepted a write")
	}

	// A change through the table (the Admin API's way) is read at once: no cache.
	if err := tab.Set("dataplane/batch", "99"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, file("dataplane/batch")); got != "99\n" {
		t.Errorf("cat after Set = %q", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// The shell's own redirection, as an operator types it.
func TestMountShell(t *testing.T) {
	tab, rec, dir, c := mountTest(t)
	gso := filepath.Join(dir, "dataplane", "gso")
	sh := func(script string) (string, error) {
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		return string(out), err
	}
	if out, err := sh("echo false > " + gso + " && cat " + gso); err != nil || out != "false\n" {
		t.Fatalf("echo false; cat = %q, %v", out, err)
	}
	// dash's builtin echo reports any write error as "I/O error"; coreutils echo,
	// like bash, prints the errno's text.
	if out, err := sh("echo maybe > " + gso); err == nil {
		t.Errorf("builtin echo of a bad value succeeded: %q", out)
	}
	out, err := sh("/bin/echo maybe > " + gso)
	if err == nil || !strings.Contains(out, "write error: Invalid argument") {
		t.Errorf("/bin/echo maybe = %q, %v; want a failure with \"write error: Invalid argument\"", out, err)
	}
	if out, err := sh("cat " + filepath.Join(dir, ".errors")); err != nil || !strings.Contains(out, `knob dataplane/gso: cannot set "maybe": not a bool (want true or false)`) {
		t.Errorf("cat .errors = %q, %v", out, err)
	}
	if got, _ := tab.Get("dataplane/gso"); got != "false" {
		t.Errorf("gso = %s after refused writes", got)
	}
	if got := strings.Join(rec.seen(), " "); got != "dataplane/gso=false" {
		t.Errorf("Apply calls = %s", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// Writers racing through the directory and the table leave a value one of them
// wrote, and nothing fails.
func TestMountConcurrent(t *testing.T) {
	tab, _, dir, c := mountTest(t)
	p := filepath.Join(dir, "dataplane", "batch")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				v := fmt.Sprint(1 + g*100 + i)
				var err error
				if g%2 == 0 {
					err = os.WriteFile(p, []byte(v+"\n"), 0o644)
				} else {
					err = tab.Set("dataplane/batch", v)
				}
				if err != nil {
					t.Error(err)
					return
				}
				b, err := os.ReadFile(p)
				if err != nil || len(b) < 2 || b[len(b)-1] != '\n' {
					t.Errorf("read %q, %v", b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if v := tab.Value("dataplane/batch").Int(); v%100 != 25 {
		t.Errorf("batch = %d, want a last write of some writer (x25)", v)
	}
}

func TestMountRefusals(t *testing.T) {
	requireFUSE(t)
	leakCheck(t)
	tab, _ := newTestTable(t)
	if _, err := tab.Mount(t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "Mount before Start") {
		t.Fatalf("Mount before Start = %v", err)
	}
	tab.Start()
	dir := t.TempDir()
	c, err := tab.Mount(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c2, err := tab.Mount(dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "already mounted") {
		if c2 != nil {
			c2.Close()
		}
		t.Fatalf("second Mount on %s = %v", dir, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// A server killed with its directory mounted leaves a dead mount (ENOTCONN);
// the next Mount clears it and serves again.
func TestMountStaleAfterCrash(t *testing.T) {
	requireFUSE(t)
	leakCheck(t)
	dir := t.TempDir()
	t.Cleanup(func() { // a failed test must not leave the dead mount behind
		if mountedAt(dir) {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KNOBS_HELPER_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "mounted\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()

	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the crashed mount = %v, want ENOTCONN (no stale mount to clear)", err)
	}
	tab, _ := newTestTable(t)
	tab.Start()
	c, err := tab.Mount(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Mount over a stale mount: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "dataplane", "gso")); got != "true\n" {
		t.Errorf("cat gso = %q", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("after Close the directory holds %v", got)
	}
}

// A process sitting in the directory keeps it busy: Close detaches it lazily,
// says so, and the server stops once that process lets go.
func TestMountCloseBusy(t *testing.T) {
	_, _, dir, c := mountTest(t)
	f, err := os.Open(filepath.Join(dir, "dataplane", "gso"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Close()
	if err == nil || !strings.Contains(err.Error(), "busy, detached lazily") {
		t.Errorf("Close with an open file = %v", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("after a lazy Close the directory holds %v", got)
	}
	if mountedAt(dir) {
		t.Error("still in mountinfo after a lazy Close")
	}
	f.Close() // the last user leaves: the kernel ends the connection (leakCheck waits for it)
}
