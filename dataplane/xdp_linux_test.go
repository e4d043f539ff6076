//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/internal/netns"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
)

// netnsPlane starts a plane inside namespace ns with its control socket at
// local (port 0: any), joined there: its sockets, AF_XDP sockets and
// netlink handle live in ns.
func netnsPlane(t *testing.T, ns string, cfg Config, local netip.AddrPort) (*Plane, netip.AddrPort, error) {
	t.Helper()
	var p *Plane
	var at netip.AddrPort
	err := netns.Run(ns, func() error {
		ctrl, err := ListenReusePort(local)
		if err != nil {
			return err
		}
		t.Cleanup(func() { ctrl.Close() })
		at = addrOf(ctrl)
		if p, err = New(cfg); err != nil {
			return err
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("plane close: %v", err)
			}
		})
		return p.Join(at)
	})
	return p, at, err
}

// viewerIn is a test viewer listening at addr inside namespace ns.
func viewerIn(t *testing.T, ns string, prof Profile, local netip.AddrPort, addr netip.AddrPort, streams ...Stream) *testViewer {
	t.Helper()
	key, salt := keysFor(t, prof)
	return startViewer(t, Handoff{Profile: prof, MasterKey: key, MasterSalt: salt, Local: local, Streams: streams}, netnstest.Listen(t, ns, addr))
}

// received is what one viewer decrypted, stream by stream, keys aside:
// what must not differ between two modes.
type received struct {
	from    netip.AddrPort
	packets []string
}

// fanoutIn runs a plane in n.TX with four viewers in n.RX, calls before
// (if any) once they are added, and streams to them.
func fanoutIn(t *testing.T, n *netnstest.Pair, cfg Config, prof Profile, tx, rx netip.Addr, before func(*Plane)) ([]received, Stats, *Plane) {
	t.Helper()
	cfg.Workers = 2
	p, local, err := netnsPlane(t, n.TX, cfg, netip.AddrPortFrom(tx, 0))
	if err != nil {
		t.Fatal(err)
	}
	src := p.NewSource("s", 2)
	const viewers = 4
	var tvs []*testViewer
	for k := range viewers {
		tv := viewerIn(t, n.RX, prof, local, netip.AddrPortFrom(rx, 0), viewerStreams(k)...)
		if _, err := p.AddViewer(tv.h, src); err != nil {
			t.Fatal(err)
		}
		tvs = append(tvs, tv)
	}
	if before != nil {
		before(p)
	}
	const total = 900 // video packets; audio: one per frame
	na := 0
	for i := range total {
		src.Publish(0, rtpPacket(0xA0, 100, uint16(65000+i), uint32(i/framePkts*3000), i%framePkts == framePkts-1, framePayload(0, 0, i)), i == 0)
		if i%framePkts == framePkts-1 {
			src.Publish(1, rtpPacket(0xB0, 111, uint16(na), uint32(na*960), false, framePayload(0, 1, na)), false)
			na++
		}
		if i%120 == 119 || i == total-1 {
			for _, tv := range tvs {
				tv.waitCount(i + 1 + na)
			}
		}
	}
	out := make([]received, viewers)
	for k, tv := range tvs {
		if tv.bad != 0 || tv.count() != total+na {
			t.Fatalf("viewer %d: %d datagrams (%d bad), want %d", k, tv.count(), tv.bad, total+na)
		}
		for _, s := range viewerStreams(k) {
			for _, g := range tv.stream(s.SSRC) {
				out[k].from = g.from
				out[k].packets = append(out[k].packets, fmt.Sprintf("%s pt=%d seq=%d ts=%d m=%v %x", s.MID, g.hdr.PayloadType, g.hdr.SequenceNumber, g.hdr.Timestamp, g.hdr.Marker, g.pay))
			}
		}
	}
	return out, p.Stats(), p
}

// resolveNeighbour has the TX namespace's kernel learn rx's MAC, as ICE's
// checks would before any media: one datagram there, waited for.
func resolveNeighbour(t *testing.T, n *netnstest.Pair, tx, rx netip.Addr) {
	t.Helper()
	sink := netnstest.Listen(t, n.RX, netip.AddrPortFrom(rx, 0))
	send := netnstest.Listen(t, n.TX, netip.AddrPortFrom(tx, 0))
	if _, err := send.WriteToUDPAddrPort([]byte("hello"), addrOf(sink)); err != nil {
		t.Fatal(err)
	}
	sink.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := sink.ReadFromUDPAddrPort(make([]byte, 16)); err != nil {
		t.Fatalf("neighbour %v: %v", rx, err)
	}
}

// In two namespaces joined by a veth, afxdp mode (copy mode: veth has no
// zero-copy) delivers to every viewer exactly what socket mode delivers:
// the same packets, headers and decrypted payloads, in the same order,
// from the same address and port, over IPv4 and IPv6 and both profile
// families. The frames went out through AF_XDP: one packet per datagram,
// no GSO, and the sockets report copy mode with veth's refusal of
// zero-copy.
func TestAFXDPMatchesSocket(t *testing.T) {
	n := netnstest.New(t, "d", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{Queues: 2})
	for _, fam := range []struct {
		name   string
		tx, rx netip.Addr
	}{{"ipv4", n.TX4, n.RX4}, {"ipv6", n.TX6, n.RX6}} {
		resolveNeighbour(t, n, fam.tx, fam.rx)
		for _, prof := range testProfiles {
			t.Run(fmt.Sprintf("%s/%d", fam.name, prof), func(t *testing.T) {
				leakCheck(t)
				want, _, _ := fanoutIn(t, n, Config{Mode: ModeSocket}, prof, fam.tx, fam.rx, nil)
				got, st, p := fanoutIn(t, n, Config{Mode: ModeAFXDP}, prof, fam.tx, fam.rx, nil)
				for k := range want {
					if got[k].from.Addr() != fam.tx || len(got[k].packets) != len(want[k].packets) {
						t.Fatalf("viewer %d: afxdp %d packets from %v, socket %d from %v", k, len(got[k].packets), got[k].from, len(want[k].packets), want[k].from)
					}
					for i := range want[k].packets {
						if got[k].packets[i] != want[k].packets[i] {
							t.Fatalf("viewer %d packet %d:\nafxdp  %.120s\nsocket %.120s", k, i, got[k].packets[i], want[k].packets[i])
						}
					}
				}
				var pk, dg, seg, xf uint64
				for _, w := range st.Workers {
					pk, dg, seg, xf = pk+w.Packets, dg+w.Datagrams, seg+w.Segments, xf+w.XDPFrames
					if w.Errors != 0 || w.Drops != 0 {
						t.Errorf("worker: %+v", w)
					}
				}
				if pk == 0 || dg != pk || seg != 0 || xf != pk {
					t.Errorf("afxdp: %d packets in %d datagrams, %d GSO segments, %d AF_XDP frames: not one frame each", pk, dg, seg, xf)
				}
				socks := p.AFXDPSockets()
				if len(socks) != 2 {
					t.Fatalf("AF_XDP sockets: %+v, want one per worker on %s", socks, n.TXIf)
				}
				for i, s := range socks {
					if s.Interface != n.TXIf || s.Mode != "copy" || !strings.Contains(s.Refused, unix.EOPNOTSUPP.Error()) || !s.Offload || s.PassProgram != "driver" || s.TxInvalid != 0 {
						t.Errorf("socket %d: %+v", i, s)
					}
				}
			})
		}
	}
}

// zerocopy=on on a veth fails with the driver's refusal, naming the
// interface: at start, and at run time, where the plane goes on in copy
// mode and every viewer gets every packet through AF_XDP. Off, at run
// time, reopens the sockets without trying.
func TestAFXDPZeroCopyOnRefused(t *testing.T) {
	n := netnstest.New(t, "z", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{Queues: 2})
	resolveNeighbour(t, n, n.TX4, n.RX4)
	_, _, err := netnsPlane(t, n.TX, Config{Workers: 2, Mode: ModeAFXDP, AFXDP: AFXDP{ZeroCopy: "on"}}, netip.AddrPortFrom(n.TX4, 0))
	if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), n.TXIf) || !strings.Contains(err.Error(), "zero-copy") {
		t.Fatalf("zerocopy=on on veth: %v", err)
	}
	_, _, err = netnsPlane(t, n.TX, Config{Workers: 2, Mode: ModeAFXDP, AFXDP: AFXDP{Queues: []int{0, 5}}}, netip.AddrPortFrom(n.TX4, 0))
	if err == nil || !strings.Contains(err.Error(), "queue 5") {
		t.Fatalf("queue 5 of a two-queue veth: %v", err)
	}
	if _, err := New(Config{Workers: 2, Mode: ModeAFXDP, AFXDP: AFXDP{Queues: []int{0}}}); err == nil {
		t.Fatal("one queue for two workers accepted")
	}

	leakCheck(t)
	_, st, p := fanoutIn(t, n, Config{Mode: ModeAFXDP}, ProfileAEADAES128GCM, n.TX4, n.RX4, func(p *Plane) {
		// From the test's own namespace: the plane opens its sockets in
		// its own, n.TX.
		err := p.SetZeroCopy("on")
		if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), n.TXIf) {
			t.Fatalf("SetZeroCopy(on) on veth: %v", err)
		}
	})
	var pk, dg uint64
	for _, w := range st.Workers {
		pk, dg = pk+w.Packets, dg+w.Datagrams
	}
	socks := p.AFXDPSockets()
	if pk == 0 || dg != pk || len(socks) != 2 || socks[0].Mode != "copy" || socks[0].Refused == "" || p.Config().AFXDP.ZeroCopy != "auto" {
		t.Fatalf("after a refused zerocopy=on: %d packets in %d datagrams, sockets %+v, knob %q", pk, dg, socks, p.Config().AFXDP.ZeroCopy)
	}
	if err := p.SetZeroCopy("off"); err != nil {
		t.Fatal(err)
	}
	if socks = p.AFXDPSockets(); len(socks) != 2 || socks[0].Mode != "copy" || socks[0].Refused != "" || p.Config().AFXDP.ZeroCopy != "off" {
		t.Fatalf("zerocopy=off: sockets %+v", socks)
	}
}

// On loopback there is no interface AF_XDP can use: afxdp mode serves
// every viewer through the send sockets, the same as socket mode.
func TestAFXDPLoopbackFallsBackToSockets(t *testing.T) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, Config{Workers: 2, Mode: ModeAFXDP}, "127.0.0.1:0")
	testEndToEnd(t, p, addrOf(ctrl), ProfileAEADAES128GCM)
	if s := p.AFXDPSockets(); len(s) != 0 {
		t.Fatalf("AF_XDP sockets on loopback: %+v", s)
	}
}

// A viewer whose next hop the kernel has not resolved yet is served
// through the send sockets, whose traffic makes the kernel resolve it;
// the plane follows and moves the viewer to AF_XDP. A neighbour whose MAC
// changes is followed too: frames go to the new MAC (a wrong one, which
// the veth's far end drops, then the right one again).
func TestAFXDPFollowsNeighbour(t *testing.T) {
	n := netnstest.New(t, "f", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{Queues: 2})
	rxMAC := netnstest.Link(t, n.RX, n.RXIf).HardwareAddr
	leakCheck(t)
	p, local, err := netnsPlane(t, n.TX, Config{Workers: 2, Mode: ModeAFXDP}, netip.AddrPortFrom(n.TX4, 0))
	if err != nil {
		t.Fatal(err)
	}
	src := p.NewSource("s", 1)
	tv := viewerIn(t, n.RX, ProfileAEADAES128GCM, local, netip.AddrPortFrom(n.RX4, 0), Stream{MID: "a", SSRC: 7, PT: 111, ClockRate: 48000})
	v, err := p.AddViewer(tv.h, src)
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	publish := func(k int) {
		for range k {
			src.Publish(0, rtpPacket(0xB0, 111, uint16(seq), uint32(seq*960), false, framePayload(0, 1, seq)), false)
			seq++
			time.Sleep(2 * time.Millisecond)
		}
	}
	frames := func() (f uint64) {
		for _, w := range p.Stats().Workers {
			f += w.XDPFrames
		}
		return f
	}
	dstMAC := func() net.HardwareAddr {
		p.mu.Lock()
		defer p.mu.Unlock()
		k := p.xdp.hops[v]
		return net.HardwareAddr(k.dstMAC[:])
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s (frames %d, next hop %v)", what, frames(), dstMAC())
			}
			publish(1)
		}
	}

	// Nothing resolved 192.0.2.2 yet: the first packets go through the
	// socket, and the kernel's ARP moves the viewer to AF_XDP.
	if got := frames(); got != 0 {
		t.Fatalf("%d frames before the neighbour is known", got)
	}
	waitFor("moved to AF_XDP", func() bool { return frames() > 0 })
	publish(20)
	tv.waitCount(seq)

	setNeigh := func(mac string) {
		t.Helper()
		if err := netnstest.IP("-n", n.TX, "neigh", "replace", n.RX4.String(), "lladdr", mac, "dev", n.TXIf, "nud", "permanent"); err != nil {
			t.Fatal(err)
		}
	}
	updates := p.AFXDPRehops()
	setNeigh("02:00:00:00:00:42")
	waitFor("new MAC followed", func() bool { return dstMAC().String() == "02:00:00:00:00:42" })
	if p.AFXDPRehops() <= updates {
		t.Fatalf("next-hop updates: %d before the MAC changed, %d after", updates, p.AFXDPRehops())
	}
	got, f0 := tv.count(), frames()
	publish(20)
	time.Sleep(100 * time.Millisecond)
	if tv.count() != got || frames() != f0+20 {
		t.Fatalf("to a MAC the far end does not have: %d received (want none), %d frames sent (want 20)", tv.count()-got, frames()-f0)
	}
	setNeigh(rxMAC.String())
	waitFor("MAC restored", func() bool { return dstMAC().String() == rxMAC.String() })
	got = tv.count()
	publish(20)
	tv.waitCount(got + 20)
}

// afxdp mode's per-packet path (rewrite, encrypt into a frame, header,
// ring, wake-up) and Publish allocate nothing, with many viewers, for both
// profile families; every packet leaves as an AF_XDP frame.
func TestAFXDPAllocations(t *testing.T) {
	n := netnstest.New(t, "l", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{})
	resolveNeighbour(t, n, n.TX4, n.RX4)
	for _, prof := range testProfiles {
		t.Run(fmt.Sprint(prof), func(t *testing.T) {
			leakCheck(t)
			p, local, err := netnsPlane(t, n.TX, Config{Workers: 1, Mode: ModeAFXDP, MaxLag: MaxMaxLag}, netip.AddrPortFrom(n.TX4, 0))
			if err != nil {
				t.Fatal(err)
			}
			const viewers = 64
			r := &fanoutRig{p: p, w: p.workers[0], src: p.NewSource("bench", 2), pkt: rtpPacket(7, 111, 0, 0, false, make([]byte, 1000))}
			for k := range viewers {
				c := netnstest.Listen(t, n.RX, netip.AddrPortFrom(n.RX4, 0)) // never read: the kernel drops what overflows
				key, salt := keysFor(t, prof)
				h := Handoff{Profile: prof, MasterKey: key, MasterSalt: salt, Local: local, Remote: addrOf(c), Streams: viewerStreams(k)}
				if _, err := p.AddViewer(h, r.src); err != nil {
					t.Fatal(err)
				}
			}
			r.publish(2*defaultHistory+64, viewers) // fill the pool, rings and histories
			// AllocsPerRun counts the whole process: a run during which the
			// control side re-resolved next hops (the kernel announced a
			// change) is measured again.
			var allocs float64
			for try := 0; ; try++ {
				before := p.AFXDPRehops()
				allocs = testing.AllocsPerRun(20, func() { r.publish(32, viewers) })
				if p.AFXDPRehops() == before || try == 3 {
					break
				}
			}
			if allocs != 0 {
				t.Fatalf("%.1f allocations per 32 packets x %d viewers (next hops resolved %d times)", allocs, viewers, p.AFXDPRehops())
			}
			st := p.Stats().Workers[0]
			if st.Errors != 0 || st.Drops != 0 || st.XDPFrames != st.Packets || st.Packets == 0 {
				t.Fatalf("worker %+v: not every packet an AF_XDP frame", st)
			}
		})
	}
}
