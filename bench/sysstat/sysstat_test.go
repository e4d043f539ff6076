//go:build linux

package sysstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// A busy loop shows in this process's CPU time and in some CPU's busy
// share; RSS is plausible.
func TestReadsThisProcess(t *testing.T) {
	a, err := ReadCPUs()
	if err != nil {
		t.Fatal(err)
	}
	c0, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	b, _ := ReadCPUs()
	c1, _ := ProcessCPU(os.Getpid())
	if c1-c0 < 0.15 {
		t.Fatalf("process CPU grew by %.2f s in a 0.3 s busy loop", c1-c0)
	}
	var most float64
	for cpu := range runtime.NumCPU() {
		busy, soft, steal := Util(a, b, cpu)
		if busy < 0 || busy > 1 || soft < 0 || steal < 0 {
			t.Fatalf("cpu %d: %v %v %v", cpu, busy, soft, steal)
		}
		most = max(most, busy)
	}
	if most < 0.3 {
		t.Fatalf("no CPU was busy: %.2f", most)
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss < 1<<20 || rss > 1<<34 {
		t.Fatalf("rss %d (%v)", rss, err)
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Fatal("no error for a missing process")
	}
	if OthersCPU(map[int]bool{os.Getpid(): true}) < 0 {
		t.Fatal("negative")
	}
}
