package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spillway-rtc/spillway/internal/server"
)

// sent sums the data plane's packets and datagrams as the Admin API's
// get_status reports them.
func sent(t testing.TB, srv *server.Server) (packets, datagrams uint64) {
	t.Helper()
	r := postJSON(t, adminURL(srv), msg{"janus": "get_status", "transaction": "s", "admin_secret": "test-admin"})
	status, _ := r["status"].(map[string]any)
	dp, _ := status["dataplane"].(map[string]any)
	workers, _ := dp["workers"].([]any)
	if len(workers) == 0 || dp["mode"] != "socket" || !strings.HasPrefix(fmt.Sprint(dp["srtp"]), "gcm=") {
		t.Fatalf("get_status has no data-plane workers, mode or srtp: %v", r)
	}
	for _, w := range workers {
		wm, _ := w.(map[string]any)
		p, _ := wm["packets"].(float64)
		d, _ := wm["datagrams"].(float64)
		packets += uint64(p)
		datagrams += uint64(d)
	}
	return packets, datagrams
}

// TestKnobDirectoryTurnsGSOOffUnderLoad: viewers watch the demo clip while
// dataplane/gso is written to false through the knob directory. Before,
// GSO datagrams carry several packets; after, one packet each; no viewer
// loses a packet. An invalid write is refused and the value stays.
func TestKnobDirectoryTurnsGSOOffUnderLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the knob directory is a FUSE mount and needs root (CI runs as root)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("the knob directory needs FUSE: %v", err)
	}
	leakCheck(t)
	k := server.NewKnobs()
	srv := startServer(t, func(c *server.Config) { c.Knobs = k })
	k.Attach(srv)
	dir := filepath.Join(t.TempDir(), "knobs")
	mustf(t, os.Mkdir(dir, 0o755), "mkdir")
	closer, err := k.Mount(dir, nil)
	mustf(t, err, "mount the knob directory")
	t.Cleanup(func() { _ = closer.Close() })
	gso := filepath.Join(dir, "dataplane", "gso")

	c := dialWS(t, wsURL(srv))
	defer c.close()
	mustf(t, c.create(), "create")
	var viewers []*viewer
	for i := 0; i < 4; i++ {
		v := newViewer(t, nil)
		defer v.close()
		watch(t, c, v, 1)
		viewers = append(viewers, v)
	}
	window := func() (packets, datagrams uint64) {
		p0, d0 := sent(t, srv)
		time.Sleep(3 * time.Second)
		p1, d1 := sent(t, srv)
		return p1 - p0, d1 - d0
	}
	time.Sleep(time.Second)
	onP, onD := window()
	if b, err := os.ReadFile(gso); err != nil || strings.TrimSpace(string(b)) != "true" {
		t.Fatalf("read %s: %q %v", gso, b, err)
	}
	mustf(t, os.WriteFile(gso, []byte("false\n"), 0o644), "write false")
	err = os.WriteFile(gso, []byte("maybe\n"), 0o644)
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("writing maybe: %v, want EINVAL", err)
	}
	if b, _ := os.ReadFile(gso); strings.TrimSpace(string(b)) != "false" {
		t.Errorf("after the refused write the knob reads %q, want false", b)
	}
	time.Sleep(200 * time.Millisecond)
	offP, offD := window()
	t.Logf("GSO on: %d packets in %d datagrams; off: %d packets in %d datagrams", onP, onD, offP, offD)
	if onP == 0 || offP == 0 {
		t.Fatal("nothing was sent")
	}
	if onD*10 >= onP*9 {
		t.Errorf("with GSO on, %d datagrams for %d packets: GSO joined nothing", onD, onP)
	}
	if offD != offP {
		t.Errorf("with GSO off, %d datagrams for %d packets, want one each", offD, offP)
	}
	for i, v := range viewers {
		for _, kind := range []string{"video", "audio"} {
			pkts := v.packets(kind)
			for j := 1; j < len(pkts); j++ {
				if pkts[j].seq != pkts[j-1].seq+1 {
					t.Errorf("viewer %d %s: gap %d -> %d", i, kind, pkts[j-1].seq, pkts[j].seq)
					break
				}
			}
		}
	}
}
