//go:build linux

// Package netnstest gives tests a pair of network namespaces joined by a
// veth, made and removed by the test itself, so that nothing a test sends
// can reach or shadow a real network, and a check that a test leaves no
// goroutine or file descriptor behind.
package netnstest

import (
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

	"github.com/spillway-rtc/spillway/internal/netns"
)

// Prefix starts the name of every namespace this package makes.
const Prefix = "spwbpf-"

// Pair is two namespaces joined by a veth: TXIf in TX, RXIf in RX.
type Pair struct {
	TX, RX     string // namespace names
	TXIf, RXIf string // the veth's ends
	TX4, RX4   netip.Addr
	TX6, RX6   netip.Addr // 2001:db8::1 and ::2, the documentation prefix
}

// Options shape the veth.
type Options struct {
	// Queues is the number of TX and RX queues of each veth end; 0: the
	// kernel's default, 1.
	Queues int
}

// RequireRoot fails (never skips) when the test cannot create namespaces
// or load programs: CI runs as root on a kernel with XDP.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: creates network namespaces and attaches XDP (run: sudo go test)")
	}
}

// IP runs iproute2's ip.
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStale deletes namespaces left by a test process that died before
// its cleanup ran (deleting a namespace deletes its veth end).
func removeStale(t testing.TB) {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
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
		if err := IP("netns", "del", e.Name()); err != nil {
			t.Logf("stale netns %s: %v", e.Name(), err)
		}
	}
}

// New makes the pair, tagged so that two tests of one process get their
// own, with tx4 and rx4 on the veth. The test's cleanup deletes them.
func New(t testing.TB, tag string, tx4, rx4 netip.Addr, opt Options) *Pair {
	t.Helper()
	RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("needs iproute2's ip to create network namespaces")
	}
	removeStale(t)
	pid := os.Getpid()
	n := &Pair{
		TX: fmt.Sprintf("%s%d-%s-tx", Prefix, pid, tag), RX: fmt.Sprintf("%s%d-%s-rx", Prefix, pid, tag),
		TXIf: fmt.Sprintf("spwb%d%sa", pid, tag), RXIf: fmt.Sprintf("spwb%d%sb", pid, tag),
		TX4: tx4, RX4: rx4,
		TX6: netip.MustParseAddr("2001:db8::1"), RX6: netip.MustParseAddr("2001:db8::2"),
	}
	t.Cleanup(func() {
		for _, ns := range []string{n.TX, n.RX} {
			if err := IP("netns", "del", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	link := []string{"link", "add", n.TXIf, "netns", n.TX}
	peer := []string{"type", "veth", "peer", "name", n.RXIf, "netns", n.RX}
	if opt.Queues > 0 {
		q := strconv.Itoa(opt.Queues)
		link = append(link, "numtxqueues", q, "numrxqueues", q)
		peer = append(peer, "numtxqueues", q, "numrxqueues", q)
	}
	cmds := [][]string{
		{"netns", "add", n.TX},
		{"netns", "add", n.RX},
		append(link, peer...),
		{"-n", n.TX, "link", "set", "lo", "up"},
		{"-n", n.RX, "link", "set", "lo", "up"},
		{"-n", n.TX, "addr", "add", n.TX4.String() + "/24", "dev", n.TXIf},
		{"-n", n.RX, "addr", "add", n.RX4.String() + "/24", "dev", n.RXIf},
		{"-n", n.TX, "addr", "add", n.TX6.String() + "/64", "dev", n.TXIf, "nodad"},
		{"-n", n.RX, "addr", "add", n.RX6.String() + "/64", "dev", n.RXIf, "nodad"},
	}
	up := [][]string{
		{"-n", n.TX, "link", "set", n.TXIf, "up"},
		{"-n", n.RX, "link", "set", n.RXIf, "up"},
	}
	for _, c := range cmds {
		if err := IP(c...); err != nil {
			t.Fatalf("network namespaces unavailable: %v", err)
		}
	}
	// Without duplicate address detection the link-local addresses are
	// there as soon as the links are up. With it they arrive 1-2 s later,
	// and their notifications wake whatever follows routes and addresses
	// in the middle of the test.
	for _, end := range []struct{ ns, ifname string }{{n.TX, n.TXIf}, {n.RX, n.RXIf}} {
		if err := sysctl(end.ns, "net/ipv6/conf/"+end.ifname+"/accept_dad", "0"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range up {
		if err := IP(c...); err != nil {
			t.Fatalf("network namespaces unavailable: %v", err)
		}
	}
	return n
}

// sysctl sets /proc/sys/<key> in namespace ns.
func sysctl(ns, key, value string) error {
	return netns.Run(ns, func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns, err)
		}
		return nil
	})
}

// Listen opens a UDP socket bound to addr inside namespace ns; the test's
// cleanup closes it.
func Listen(t testing.TB, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := netns.Run(ns, func() error {
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

// Link returns the interface ifname of namespace ns.
func Link(t testing.TB, ns, ifname string) *net.Interface {
	t.Helper()
	var ifi *net.Interface
	err := netns.Run(ns, func() error {
		var err error
		ifi, err = net.InterfaceByName(ifname)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}

// LeakCheck fails the test if it ends with more goroutines or file
// descriptors than it started with (namespaces, sockets, programs and
// links hold descriptors). Call it first, so that its cleanup runs after
// every other.
func LeakCheck(t testing.TB) {
	t.Helper()
	// The runtime opens its netpoller's descriptors on first use: now,
	// not inside the measured span.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	g, fds := runtime.NumGoroutine(), FDs(t)
	t.Cleanup(func() { Settle(t, "at the end of the test", g, fds) })
}

// FDs counts the process's open file descriptors.
func FDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Settle waits briefly for goroutines and descriptors to fall back to at
// most g and fds (an exiting goroutine may still be on its way out), and
// fails the test, with every goroutine's stack, if they do not.
func Settle(t testing.TB, when string, g, fds int) {
	t.Helper()
	var ng, nfds int
	for deadline := time.Now().Add(2 * time.Second); ; {
		ng, nfds = runtime.NumGoroutine(), FDs(t)
		if ng <= g && nfds <= fds || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ng > g {
		buf := make([]byte, 1<<16)
		t.Errorf("%s: %d goroutines, %d before:\n%s", when, ng, g, buf[:runtime.Stack(buf, true)])
	}
	if nfds > fds {
		t.Errorf("%s: %d file descriptors open, %d before", when, nfds, fds)
	}
}
