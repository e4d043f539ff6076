//go:build linux

package dataplane

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sendFromClients sends one datagram to dst from each of n fresh sockets.
func sendFromClients(t *testing.T, from string, dst netip.AddrPort, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WriteToUDPAddrPort([]byte{byte(i)}, dst)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// drain counts the datagrams waiting on c.
func drain(c *net.UDPConn) int {
	n := 0
	buf := make([]byte, 64)
	for {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			return n
		}
		n++
	}
}

// queued reports the bytes waiting in c's receive queue, without reading.
func queued(t *testing.T, c *net.UDPConn) int {
	t.Helper()
	var n int
	if err := control(c, func(fd int) error {
		var err error
		n, err = unix.IoctlGetInt(fd, unix.SIOCINQ)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// While the plane is joined, every client's datagrams reach the control
// socket and none sits in a data socket, for specific and wildcard
// addresses, IPv4 and IPv6; and the data sockets still send from the port.
func TestInboundSteering(t *testing.T) {
	const clients = 64
	cases := []struct{ local, client string }{
		{"127.0.0.1:0", "127.0.0.1:0"}, // connect-to-dummy
		{"[::1]:0", "[::1]:0"},
		{"0.0.0.0:0", "127.0.0.1:0"}, // cBPF "ret #0"
		{"[::]:0", "[::1]:0"},
	}
	for _, c := range cases {
		t.Run(c.local, func(t *testing.T) {
			leakCheck(t)
			p, ctrl := joinedPlane(t, Config{Workers: 2}, c.local)
			port := addrOf(ctrl).Port()
			dst := netip.AddrPortFrom(netip.MustParseAddrPort(c.client).Addr(), port)
			sendFromClients(t, c.client, dst, clients)
			if got := drain(ctrl); got != clients {
				t.Errorf("control socket got %d of %d", got, clients)
			}
			for i, dc := range p.locals[addrOf(ctrl)] {
				q, err := unix.IoctlGetInt(dc.fd, unix.SIOCINQ)
				if err != nil {
					t.Fatal(err)
				}
				if q != 0 {
					t.Errorf("data socket %d holds %d bytes of inbound", i, q)
				}
			}

			// Sending still works, from the shared port. The handoff names
			// the specific address even when the wildcard was joined, as an
			// ICE candidate does.
			src := p.NewSource("s", 2)
			tv := newTestViewer(t, ProfileAEADAES128GCM, dst, c.client, viewerStreams(0)...)
			if _, err := p.AddViewer(tv.h, src); err != nil {
				t.Fatal(err)
			}
			src.Publish(1, rtpPacket(1, 111, 1, 1, false, []byte("hi")), false)
			tv.waitCount(1)
			if g := tv.stream(1001); len(g) != 1 || g[0].from.Port() != port {
				t.Fatalf("got %+v, want one packet from port %d", g, port)
			}
		})
	}
}

// The check above can fail: a reuseport member that is neither connected
// nor steered takes some clients' datagrams.
func TestInboundSteeringControl(t *testing.T) {
	ctrl, err := ListenReusePort(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	other, err := ListenReusePort(addrOf(ctrl))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sendFromClients(t, "127.0.0.1:0", addrOf(ctrl), 64)
	nc, no := drain(ctrl), drain(other)
	if nc+no != 64 || no == 0 {
		t.Fatalf("without steering: control %d, other %d; expected the hash to split them", nc, no)
	}
}
