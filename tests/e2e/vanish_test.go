package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// cutConn is a viewer's UDP socket that can be cut: from then on nothing
// is sent and what arrives is only counted, as if the viewer's machine had
// vanished from the network.
type cutConn struct {
	*net.UDPConn
	cut       atomic.Bool
	afterCut  atomic.Int64 // datagrams that arrived after the cut
	afterMark atomic.Int64 // RTP datagrams (media from a worker) that arrived after mark()
	otherMark atomic.Int64 // other datagrams after mark(): DTLS alerts, RTCP
	marked    atomic.Bool
	mu        sync.Mutex
	others    []string // what the non-media datagrams after mark() began with
}

// note counts a datagram that arrived after the cut.
func (c *cutConn) note(b []byte) {
	c.afterCut.Add(1)
	if !c.marked.Load() {
		return
	}
	// RFC 7983: 128-191 is RTP or RTCP; RTCP packet types are 192-223 (RFC 5761).
	if len(b) > 1 && b[0] >= 128 && b[0] <= 191 && (b[1]&0x7f < 64 || b[1]&0x7f > 95) {
		c.afterMark.Add(1)
	} else {
		c.otherMark.Add(1)
		c.mu.Lock()
		c.others = append(c.others, fmt.Sprintf("%d bytes: % x", len(b), b[:min(len(b), 8)]))
		c.mu.Unlock()
	}
}

func (c *cutConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, a, err
		}
		c.note(b[:n])
	}
}

func (c *cutConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, a, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || !c.cut.Load() {
			return n, a, err
		}
		c.note(b[:n])
	}
}

func (c *cutConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, a)
}

func (c *cutConn) WriteToAddrPort(b []byte, a netip.AddrPort) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDPAddrPort(b, a)
}

// TestVanishedViewerIsFreed: a viewer whose network disappears (no DTLS
// close, no RTCP BYE, no more consent checks) is freed within 35 s, and
// no worker sends to it any more.
func TestVanishedViewerIsFreed(t *testing.T) {
	leakCheck(t)
	srv := startServer(t, nil)
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	mustf(t, err, "viewer socket")
	conn := &cutConn{UDPConn: udp}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
	defer mux.Close()
	v := newViewer(t, func(se *webrtc.SettingEngine) { se.SetICEUDPMux(mux) })
	defer v.close()

	c := dialWS(t, wsURL(srv))
	defer c.close()
	mustf(t, c.create(), "create")
	watch(t, c, v, 1)
	waitPackets(t, v, "video", 30, 10*time.Second)
	if n := srv.Plane().Stats().Viewers; n != 1 {
		t.Fatalf("data plane has %d viewers, want 1", n)
	}

	cutAt := time.Now()
	conn.cut.Store(true)
	ev, err := c.waitEvent(40*time.Second, func(m msg) bool { return m.str("janus") == "hangup" })
	mustf(t, err, "hangup after the viewer vanished")
	// The plugin frees the data-plane viewer right after the hangup event.
	for deadline := time.Now().Add(2 * time.Second); srv.Plane().Stats().Viewers != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	freedIn := time.Since(cutAt)
	t.Logf("vanished viewer freed after %v (reason %q)", freedIn.Round(time.Millisecond), ev.str("reason"))
	if freedIn > 35*time.Second {
		t.Errorf("freed after %v, want within 35 s", freedIn)
	}
	if n := srv.Plane().Stats().Viewers; n != 0 {
		t.Errorf("data plane still has %d viewers 2 s after the hangup", n)
	}
	if conn.afterCut.Load() == 0 {
		t.Errorf("nothing was sent to the viewer after the cut: the test proves nothing")
	}
	// What was sent before the hangup (the last sender report, the DTLS
	// close_notify) may still sit in the socket's queue: let the viewer's
	// reader drain it, then count.
	time.Sleep(500 * time.Millisecond)
	conn.marked.Store(true)
	time.Sleep(2 * time.Second)
	if n := conn.afterMark.Load(); n != 0 {
		t.Errorf("%d RTP datagrams reached the vanished viewer after it was freed", n)
	}
	if n := conn.otherMark.Load(); n > 0 {
		t.Errorf("%d RTCP or DTLS datagrams reached the vanished viewer after it was freed: %v", n, conn.others)
	}
}
