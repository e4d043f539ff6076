package media

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fifoThreads lists this process's threads under SCHED_FIFO, with their
// priority, from /proc/self/task/*/stat (fields 40 rt_priority, 41 policy).
func fifoThreads(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var fifo []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 38 && f[38] == "1" {
			fifo = append(fifo, filepath.Base(filepath.Dir(p))+":"+f[37])
		}
	}
	return fifo
}

// With RealTime set, exactly one thread, the sender's, runs under
// SCHED_FIFO at that priority while Run runs, and none once it returns: no
// other goroutine ever inherits the priority.
func TestSourceRealTimePriority(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SCHED_FIFO needs CAP_SYS_NICE: run as root (CI does)")
	}
	checkGoroutines(t)
	if f := fifoThreads(t); len(f) != 0 {
		t.Fatalf("SCHED_FIFO threads before the run: %v", f)
	}
	vr, ar := newReceiver(t), newReceiver(t)
	src, err := NewSource(SourceConfig{Local: netip.MustParseAddrPort("127.0.0.1:0"), Video: vr.addr(), Audio: ar.addr(), RealTime: 7, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	during := fifoThreads(t)
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(during) != 1 || !strings.HasSuffix(during[0], ":7") {
		t.Errorf("SCHED_FIFO threads while running: %v, want one at priority 7", during)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(fifoThreads(t)) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := fifoThreads(t); len(f) != 0 {
		t.Errorf("SCHED_FIFO threads after the run: %v", f)
	}
	vr.stop()
	ar.stop()
	if c := src.Counters(); c.Frames < 10 || c.Audio.Packets < 20 || counted(vr.pkts) != c.Video || counted(ar.pkts) != c.Audio {
		t.Errorf("counters %+v; received video %+v audio %+v", c, counted(vr.pkts), counted(ar.pkts))
	}
}
