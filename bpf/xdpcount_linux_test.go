//go:build linux

package bpf

import (
	"encoding/binary"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// frame builds an Ethernet frame carrying an IP packet with the given
// protocol and payload length (headers only as long as the program reads).
func frame(ethertype uint16, proto byte, payload int) []byte {
	ipHdr := 20
	if ethertype == 0x86dd {
		ipHdr = 40
	}
	b := make([]byte, 14+ipHdr+payload)
	binary.BigEndian.PutUint16(b[12:], ethertype)
	switch ethertype {
	case 0x0800:
		b[14] = 0x45
		b[14+9] = proto
	case 0x86dd:
		b[14] = 0x60
		b[14+6] = proto
	}
	return b
}

// The program's decisions, through BPF_PROG_TEST_RUN: UDP over IPv4 or
// IPv6 is counted and dropped; everything else, truncated frames included,
// passes and counts as other.
func TestCounterProgram(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.LeakCheck(t)
	c, err := NewXDPCounter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name   string
		in     []byte
		action uint32
		udp    bool
	}{
		{"ipv4 udp", frame(0x0800, 17, 1200), xdpDrop, true},
		{"ipv6 udp", frame(0x86dd, 17, 1200), xdpDrop, true},
		{"ipv4 tcp", frame(0x0800, 6, 100), xdpPass, false},
		{"ipv6 icmp", frame(0x86dd, 58, 64), xdpPass, false},
		{"ipv6 hop-by-hop", frame(0x86dd, 0, 64), xdpPass, false},
		{"arp", frame(0x0806, 0, 28), xdpPass, false},
		{"ipv4 truncated before protocol", frame(0x0800, 17, 0)[:14+9], xdpPass, false},
		{"ipv6 truncated before next header", frame(0x86dd, 17, 0)[:14+6], xdpPass, false},
		{"ethernet header only", frame(0x0800, 17, 0)[:14], xdpPass, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := c.Read()
			if err != nil {
				t.Fatal(err)
			}
			action, _, err := c.prog.Test(tt.in)
			if err != nil {
				t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
			}
			if action != tt.action {
				t.Fatalf("action %d, want %d", action, tt.action)
			}
			after, err := c.Read()
			if err != nil {
				t.Fatal(err)
			}
			want := before
			if tt.udp {
				want.Packets++
				want.Bytes += uint64(len(tt.in))
			} else {
				want.Other++
			}
			if after != want {
				t.Fatalf("counts %+v, want %+v", after, want)
			}
		})
	}
}

func waitCounts(t *testing.T, c *XDPCounter, packets uint64) Counts {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		cs, err := c.Read()
		if err != nil {
			t.Fatal(err)
		}
		if cs.Packets >= packets || time.Now().After(deadline) {
			time.Sleep(50 * time.Millisecond) // anything extra would show now
			cs, err = c.Read()
			if err != nil {
				t.Fatal(err)
			}
			return cs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UDP sent across a veth into a namespace whose end carries the counter is
// counted exactly (packets and frame bytes, IPv4 and IPv6) and never
// reaches a socket there; ARP and neighbour discovery pass, or nothing
// could be sent at all. Once the counter is closed, the same datagrams reach
// the socket: the program is gone from the interface.
func TestXDPCounterVeth(t *testing.T) {
	netnstest.RequireRoot(t)
	// Documentation prefixes, in namespaces of their own: nothing here can
	// reach or shadow a real network.
	n := netnstest.New(t, "x", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{})
	netnstest.LeakCheck(t)

	c, err := NewXDPCounter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AttachInNetns(n.RX, n.RXIf); err != nil {
		t.Fatalf("XDP unavailable: %v", err)
	}
	if err := c.AttachInNetns(n.RX, n.RXIf); err == nil {
		t.Fatal("second attach succeeded")
	}
	if !xdpAttached(t, n.RX, n.RXIf) {
		t.Fatal("ip link shows no XDP program after Attach")
	}

	const port = 5004
	sink4 := netnstest.Listen(t, n.RX, netip.AddrPortFrom(n.RX4, port))
	sink6 := netnstest.Listen(t, n.RX, netip.AddrPortFrom(n.RX6, port))
	send4 := netnstest.Listen(t, n.TX, netip.AddrPortFrom(n.TX4, 0))
	send6 := netnstest.Listen(t, n.TX, netip.AddrPortFrom(n.TX6, 0))

	const count4, count6, size = 100, 50, 1200
	payload := make([]byte, size)
	for i := 0; i < count4; i++ {
		if _, err := send4.WriteToUDPAddrPort(payload, netip.AddrPortFrom(n.RX4, port)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < count6; i++ {
		if _, err := send6.WriteToUDPAddrPort(payload, netip.AddrPortFrom(n.RX6, port)); err != nil {
			t.Fatal(err)
		}
	}
	cs := waitCounts(t, c, count4+count6)
	want := Counts{Packets: count4 + count6, Bytes: count4*(14+20+8+size) + count6*(14+40+8+size)}
	if cs.Packets != want.Packets || cs.Bytes != want.Bytes {
		t.Fatalf("counted %d packets, %d bytes; want %d, %d", cs.Packets, cs.Bytes, want.Packets, want.Bytes)
	}
	if cs.Other == 0 {
		t.Fatal("no ARP or neighbour discovery counted as other")
	}
	for _, s := range []*net.UDPConn{sink4, sink6} {
		if got := receive(t, s, 100*time.Millisecond); got != 0 {
			t.Fatalf("%s received %d datagrams through a dropping program", s.LocalAddr(), got)
		}
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	if xdpAttached(t, n.RX, n.RXIf) {
		t.Fatal("XDP program still attached after Close")
	}
	if _, err := send4.WriteToUDPAddrPort(payload, netip.AddrPortFrom(n.RX4, port)); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, sink4, time.Second); got != 1 {
		t.Fatalf("after Close the sink received %d datagrams, want 1", got)
	}
}

// receive counts datagrams until none arrives for wait.
func receive(t *testing.T, c *net.UDPConn, wait time.Duration) int {
	t.Helper()
	buf := make([]byte, 2048)
	n := 0
	for {
		c.SetReadDeadline(time.Now().Add(wait))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			if os.IsTimeout(err) {
				return n
			}
			t.Fatal(err)
		}
		n++
	}
}

func xdpAttached(t *testing.T, ns, ifname string) bool {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-d", "link", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show: %v: %s", err, out)
	}
	return strings.Contains(string(out), "xdp")
}
