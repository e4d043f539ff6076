//go:build linux

package bpf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/spillway-rtc/spillway/internal/netns"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
	"golang.org/x/sys/unix"
)

// The verdict, through BPF_PROG_TEST_RUN, is XDP_PASS whatever the frame,
// truncated or too long for one buffer (the kernel takes the jumbo frame
// only because the program is loaded with BPF_F_XDP_HAS_FRAGS). The kernel
// refuses frames shorter than an Ethernet header with EINVAL (Linux 6.18
// even when the rest of the input is given as metadata), so the shortest
// tried is 14 bytes; the program reads no byte of the frame anyway.
func TestXDPPassProgram(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.LeakCheck(t)
	prog, err := loadXDPPass()
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"ipv4 udp", frame(0x0800, 17, 1200)},
		{"ipv6 udp", frame(0x86dd, 17, 1200)},
		{"arp", frame(0x0806, 0, 28)},
		{"ipv4 truncated after 1 byte of ip header", frame(0x0800, 17, 0)[:15]},
		{"ethernet header only", frame(0x0800, 17, 0)[:14]},
		{"jumbo ipv4 udp in fragments", frame(0x0800, 17, 9000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			action, _, err := prog.Test(tt.in)
			if err != nil {
				t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
			}
			if action != xdpPass {
				t.Fatalf("action %d, want XDP_PASS (%d)", action, xdpPass)
			}
		})
	}
}

// attachPass attaches an XDPPass to ifname in namespace ns; the test's
// cleanup closes it.
func attachPass(t *testing.T, ns, ifname string) (*XDPPass, error) {
	t.Helper()
	var p *XDPPass
	err := netns.Run(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		p, err = AttachXDPPass(ifi.Index)
		return err
	})
	if p != nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

// xdpProg is what ip link shows attached to ifname in ns: the mode
// ("driver", "generic", or the number of another IFLA_XDP_ATTACHED value)
// and the program's id; "" and 0 when none.
func xdpProg(t *testing.T, ns, ifname string) (mode string, id ebpf.ProgramID) {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "-d", "link", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show: %v: %s", err, out)
	}
	var links []struct {
		XDP *struct {
			Mode int
			Prog struct{ ID ebpf.ProgramID }
		}
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show: %v: %s", err, out)
	}
	x := links[0].XDP
	switch {
	case x == nil || x.Mode == 0:
		return "", 0
	case x.Mode == 1: // XDP_ATTACHED_DRV
		return "driver", x.Prog.ID
	case x.Mode == 2: // XDP_ATTACHED_SKB
		return "generic", x.Prog.ID
	}
	return strconv.Itoa(x.Mode), x.Prog.ID
}

// checkShown fails unless ip link shows p's program on ifname in mode.
func checkShown(t *testing.T, p *XDPPass, ns, ifname, mode string) {
	t.Helper()
	info, err := p.prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := info.ID()
	gotMode, id := xdpProg(t, ns, ifname)
	if gotMode != mode || id != want {
		t.Fatalf("ip link shows %q program id %d on %s, want %q id %d", gotMode, id, ifname, mode, want)
	}
}

// exchange sends count datagrams, their sizes taken in turn from sizes,
// from one socket to dst, one at a time, and checks that each arrives
// whole at the socket to, from the sender, and that nothing else does.
func exchange(t *testing.T, from, to *net.UDPConn, dst netip.AddrPort, sizes []int, count int) {
	t.Helper()
	src := from.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 2048)
	for i := 0; i < count; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
		if _, err := from.WriteToUDPAddrPort(msg, dst); err != nil {
			t.Fatalf("%v -> %v: datagram %d: %v", src, dst, i, err)
		}
		to.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, addr, err := to.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%v -> %v: datagram %d of %d bytes: %v", src, dst, i, len(msg), err)
		}
		if addr.Addr().Unmap() != src.Addr().Unmap() || addr.Port() != src.Port() || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("%v -> %v: datagram %d: got %d bytes from %v, want %d from %v", src, dst, i, n, addr, len(msg), src)
		}
	}
	if got := receive(t, to, 50*time.Millisecond); got != 0 {
		t.Fatalf("%v -> %v: %d datagrams more than were sent", src, dst, got)
	}
}

// XDPPass on either end of a veth, or both, runs in driver mode and
// passes everything: UDP over IPv4 and IPv6 arrives in both directions,
// every datagram exactly once (so ARP and neighbour discovery got through
// too). A second one on the same interface is refused, naming it. Close
// removes the program and may be repeated.
func TestXDPPassVeth(t *testing.T) {
	netnstest.RequireRoot(t)
	n := netnstest.New(t, "p", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{})
	netnstest.LeakCheck(t)

	const port = 5006
	tx4, rx4 := netip.AddrPortFrom(n.TX4, port), netip.AddrPortFrom(n.RX4, port)
	tx6, rx6 := netip.AddrPortFrom(n.TX6, port), netip.AddrPortFrom(n.RX6, port)
	txs4, rxs4 := netnstest.Listen(t, n.TX, tx4), netnstest.Listen(t, n.RX, rx4)
	txs6, rxs6 := netnstest.Listen(t, n.TX, tx6), netnstest.Listen(t, n.RX, rx6)
	sizes4 := []int{1, 1200, 1500 - 20 - 8}
	sizes6 := []int{1, 1200, 1500 - 40 - 8}
	const count = 30

	type end struct{ ns, ifname string }
	for _, round := range []struct {
		name string
		ends []end
	}{
		{"tx end", []end{{n.TX, n.TXIf}}},
		{"rx end", []end{{n.RX, n.RXIf}}},
		{"both ends", []end{{n.TX, n.TXIf}, {n.RX, n.RXIf}}},
	} {
		t.Run(round.name, func(t *testing.T) {
			var ps []*XDPPass
			for _, e := range round.ends {
				p, err := attachPass(t, e.ns, e.ifname)
				if err != nil {
					t.Fatalf("XDP unavailable: %v", err)
				}
				if p.Mode() != "driver" || p.Fallback() != nil {
					t.Fatalf("%s: mode %q (fallback: %v), want driver: veth has native XDP", e.ifname, p.Mode(), p.Fallback())
				}
				checkShown(t, p, e.ns, e.ifname, "driver")
				ps = append(ps, p)

				_, err = attachPass(t, e.ns, e.ifname)
				if err == nil {
					t.Fatalf("%s: second AttachXDPPass succeeded", e.ifname)
				}
				if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "another XDP program is attached") ||
					!strings.Contains(err.Error(), "ip link show dev "+e.ifname) {
					t.Fatalf("%s: second AttachXDPPass: %v; want EBUSY saying another program is attached, and how to see it", e.ifname, err)
				}
				checkShown(t, p, e.ns, e.ifname, "driver")
			}

			// Forget the neighbours, so that ARP and neighbour discovery
			// go through the program too.
			for _, c := range [][]string{{"-n", n.TX, "neigh", "flush", "dev", n.TXIf}, {"-n", n.RX, "neigh", "flush", "dev", n.RXIf}} {
				if err := netnstest.IP(c...); err != nil {
					t.Fatal(err)
				}
			}
			exchange(t, txs4, rxs4, rx4, sizes4, count)
			exchange(t, rxs4, txs4, tx4, sizes4, count)
			exchange(t, txs6, rxs6, rx6, sizes6, count)
			exchange(t, rxs6, txs6, tx6, sizes6, count)

			for i, p := range ps {
				e := round.ends[i]
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				if xdpAttached(t, e.ns, e.ifname) {
					t.Fatalf("%s: XDP program still attached after Close", e.ifname)
				}
				if err := p.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
			}
		})
	}
}

// Where the driver has no native XDP (loopback), XDPPass falls back to
// generic mode, says why, and still passes everything. An interface that
// carries another program in generic mode refuses it in driver mode: that
// is reported as the other program, not as a reason to fall back.
func TestXDPPassGeneric(t *testing.T) {
	netnstest.RequireRoot(t)
	n := netnstest.New(t, "g", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{})
	netnstest.LeakCheck(t)

	p, err := attachPass(t, n.TX, "lo")
	if err != nil {
		t.Fatalf("XDP unavailable on lo: %v", err)
	}
	if p.Mode() != "generic" || !errors.Is(p.Fallback(), unix.EOPNOTSUPP) || !strings.Contains(p.Fallback().Error(), "lo") {
		t.Fatalf("lo: mode %q, fallback %v; want generic, EOPNOTSUPP naming lo", p.Mode(), p.Fallback())
	}
	checkShown(t, p, n.TX, "lo", "generic")
	for _, a := range []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5008"), netip.MustParseAddrPort("[::1]:5008")} {
		s := netnstest.Listen(t, n.TX, a)
		exchange(t, s, s, a, []int{1, 1200}, 10)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if xdpAttached(t, n.TX, "lo") {
		t.Fatal("lo: XDP program still attached after Close")
	}

	// Another program, in generic mode on the veth.
	other, err := loadXDPPass()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var l link.Link
	err = netns.Run(n.TX, func() error {
		ifi, err := net.InterfaceByName(n.TXIf)
		if err != nil {
			return err
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: other, Interface: ifi.Index, Flags: link.XDPGenericMode})
		return err
	})
	if err != nil {
		t.Fatalf("attach in generic mode: %v", err)
	}
	defer l.Close()
	_, err = attachPass(t, n.TX, n.TXIf)
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "another XDP program is attached") ||
		!strings.Contains(err.Error(), "ip link show dev "+n.TXIf) {
		t.Fatalf("with another program in generic mode: %v; want EEXIST saying another program is attached, and how to see it", err)
	}
}

const xdpPassHelperEnv = "SPW_XDPPASS_HELPER"

// A process that attaches XDPPass and dies without Close, by exiting or by
// SIGKILL, leaves no program on the interface: the kernel closes its link.
func TestXDPPassCrash(t *testing.T) {
	netnstest.RequireRoot(t)
	n := netnstest.New(t, "c", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{})
	netnstest.LeakCheck(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := func(how string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", n.TX, exe, "-test.run=^TestXDPPassHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), xdpPassHelperEnv+"="+how+","+n.TXIf)
		return cmd
	}
	gone := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for xdpAttached(t, n.TX, n.TXIf) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: XDP program still attached after its process died", n.TXIf)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("exit", func(t *testing.T) {
		cmd := helper("exit")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "attached driver") {
			t.Fatalf("helper: %v, want exit status 3 after attaching; stdout: %s; stderr: %s", err, out, stderr.Bytes())
		}
		gone(t)
	})

	t.Run("sigkill", func(t *testing.T) {
		cmd := helper("wait")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe() // the helper waits for EOF: the parent's death ends it
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		waited := false
		defer func() {
			if !waited {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}()
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(stdout).ReadString('\n')
			line <- s
			io.Copy(io.Discard, stdout)
		}()
		select {
		case s := <-line:
			if !strings.HasPrefix(s, "attached driver") {
				t.Fatalf("helper said %q; stderr: %s", s, stderr.Bytes())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("helper did not attach within 30s; stderr: %s", stderr.Bytes())
		}
		if mode, _ := xdpProg(t, n.TX, n.TXIf); mode != "driver" {
			t.Fatalf("%s: ip link shows %q while the helper runs, want driver", n.TXIf, mode)
		}
		if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		waited = true
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGKILL {
			t.Fatalf("helper: %v, want killed by SIGKILL", err)
		}
		gone(t)
	})
}

// TestXDPPassHelperProcess is TestXDPPassCrash's helper, run in a process of
// its own inside the namespace: it attaches XDPPass to the interface named
// in the environment and dies without closing it, exiting at once ("exit")
// or waiting for SIGKILL ("wait"). Without the environment it does nothing.
func TestXDPPassHelperProcess(t *testing.T) {
	how, ifname, ok := strings.Cut(os.Getenv(xdpPassHelperEnv), ",")
	if !ok {
		return
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	p, err := AttachXDPPass(ifi.Index)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("attached " + p.Mode() + "\n")
	if how == "wait" {
		io.Copy(io.Discard, os.Stdin)
	}
	os.Exit(3)
}
