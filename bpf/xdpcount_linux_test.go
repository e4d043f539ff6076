//go:build linux

package bpf

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireRoot fails (never skips) when the test cannot create namespaces or
// load programs: CI runs as root on a kernel with XDP.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: loads an XDP program and creates network namespaces (run: sudo go test ./bpf/)")
	}
}

// leakCheck fails the test if it leaves goroutines or file descriptors.
func leakCheck(t *testing.T) {
	t.Helper()
	g0, f0 := runtime.NumGoroutine(), openFDs(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), openFDs(t)
			if g <= g0 && f <= f0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leak: goroutines %d -> %d, fds %d -> %d", g0, g, f0, f)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

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
	requireRoot(t)
	leakCheck(t)
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

// testNetns is a pair of namespaces joined by a veth, named after this
// process so that a later run can tell its leftovers from a live test's.
type testNetns struct {
	tx, rx         string
	txIf, rxIf     string
	txAddr, rxAddr netip.Addr
	tx6, rx6       netip.Addr
}

const netnsPrefix = "spwbpf-"

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStaleNetns deletes namespaces left by a test process that died
// before its cleanup ran (deleting a namespace deletes its veth end).
func removeStaleNetns(t *testing.T) {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), netnsPrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			continue // its test is still running
		}
		if err := ip("netns", "del", e.Name()); err != nil {
			t.Logf("stale netns %s: %v", e.Name(), err)
		}
	}
}

// newTestNetns makes the pair, tagged so that two tests of one process
// get their own, with tx4 and rx4 on the veth (the IPv6 ends are the
// documentation prefix's ::1 and ::2). The test's cleanup deletes them.
func newTestNetns(t *testing.T, tag string, tx4, rx4 netip.Addr) *testNetns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs iproute2's ip to create network namespaces")
	}
	removeStaleNetns(t)
	pid := os.Getpid()
	n := &testNetns{
		tx: fmt.Sprintf("%s%d-%s-tx", netnsPrefix, pid, tag), rx: fmt.Sprintf("%s%d-%s-rx", netnsPrefix, pid, tag),
		txIf: fmt.Sprintf("spwb%d%sa", pid, tag), rxIf: fmt.Sprintf("spwb%d%sb", pid, tag),
		txAddr: tx4, rxAddr: rx4,
		tx6: netip.MustParseAddr("2001:db8::1"), rx6: netip.MustParseAddr("2001:db8::2"),
	}
	t.Cleanup(func() {
		for _, ns := range []string{n.tx, n.rx} {
			if err := ip("netns", "del", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	cmds := [][]string{
		{"netns", "add", n.tx},
		{"netns", "add", n.rx},
		{"link", "add", n.txIf, "netns", n.tx, "type", "veth", "peer", "name", n.rxIf, "netns", n.rx},
		{"-n", n.tx, "link", "set", "lo", "up"},
		{"-n", n.rx, "link", "set", "lo", "up"},
		{"-n", n.tx, "addr", "add", n.txAddr.String() + "/24", "dev", n.txIf},
		{"-n", n.rx, "addr", "add", n.rxAddr.String() + "/24", "dev", n.rxIf},
		{"-n", n.tx, "addr", "add", n.tx6.String() + "/64", "dev", n.txIf, "nodad"},
		{"-n", n.rx, "addr", "add", n.rx6.String() + "/64", "dev", n.rxIf, "nodad"},
		{"-n", n.tx, "link", "set", n.txIf, "up"},
		{"-n", n.rx, "link", "set", n.rxIf, "up"},
	}
	for _, c := range cmds {
		if err := ip(c...); err != nil {
			t.Fatalf("network namespaces unavailable: %v", err)
		}
	}
	return n
}

// listenIn opens a UDP socket bound to addr inside namespace ns.
func listenIn(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := RunInNetns(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
	requireRoot(t)
	// Documentation prefixes, in namespaces of their own: nothing here can
	// reach or shadow a real network.
	n := newTestNetns(t, "x", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"))
	leakCheck(t)

	c, err := NewXDPCounter()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AttachInNetns(n.rx, n.rxIf); err != nil {
		t.Fatalf("XDP unavailable: %v", err)
	}
	if err := c.AttachInNetns(n.rx, n.rxIf); err == nil {
		t.Fatal("second attach succeeded")
	}
	if !xdpAttached(t, n.rx, n.rxIf) {
		t.Fatal("ip link shows no XDP program after Attach")
	}

	const port = 5004
	sink4 := listenIn(t, n.rx, netip.AddrPortFrom(n.rxAddr, port))
	sink6 := listenIn(t, n.rx, netip.AddrPortFrom(n.rx6, port))
	send4 := listenIn(t, n.tx, netip.AddrPortFrom(n.txAddr, 0))
	send6 := listenIn(t, n.tx, netip.AddrPortFrom(n.tx6, 0))

	const count4, count6, size = 100, 50, 1200
	payload := make([]byte, size)
	for i := 0; i < count4; i++ {
		if _, err := send4.WriteToUDPAddrPort(payload, netip.AddrPortFrom(n.rxAddr, port)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < count6; i++ {
		if _, err := send6.WriteToUDPAddrPort(payload, netip.AddrPortFrom(n.rx6, port)); err != nil {
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
	if xdpAttached(t, n.rx, n.rxIf) {
		t.Fatal("XDP program still attached after Close")
	}
	if _, err := send4.WriteToUDPAddrPort(payload, netip.AddrPortFrom(n.rxAddr, port)); err != nil {
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

// NetnsPath leaves paths alone and puts names under /run/netns.
func TestNetnsPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"sink", "/run/netns/sink"},
		{"/var/run/netns/sink", "/var/run/netns/sink"},
		{"/proc/1/ns/net", "/proc/1/ns/net"},
	} {
		if got := NetnsPath(tt.in); got != tt.want {
			t.Errorf("NetnsPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
