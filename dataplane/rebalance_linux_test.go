//go:build linux

package dataplane

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
)

// viewersOn returns the viewers placed on worker i.
func viewersOn(p *Plane, i int) []*Viewer {
	p.mu.Lock()
	defer p.mu.Unlock()
	var vs []*Viewer
	for v := range p.workers[i].vset {
		vs = append(vs, v)
	}
	return vs
}

// Closing most viewers of one worker skews the plane; Close rebalances by
// moving viewers to the lighter worker while video flows across a
// sequence wrap. Every remaining viewer gets every packet exactly once, in
// order, decryptable (its SRTP rollover state moved with it), and the
// moved ones answer NACKs for packets sent after the move. In socket mode
// on loopback, and in afxdp mode across a veth, where a moved viewer's
// frames go out through its new worker's AF_XDP socket.
func TestRebalancePreservesStreams(t *testing.T) {
	n := netnstest.New(t, "b", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{Queues: 2})
	resolveNeighbour(t, n, n.TX4, n.RX4)
	for _, mode := range []Mode{ModeSocket, ModeAFXDP} {
		for _, prof := range testProfiles {
			t.Run(string(mode)+"/"+srtp.ProtectionProfile(prof).String(), func(t *testing.T) {
				testRebalance(t, mode, prof, n)
			})
		}
	}
}

func testRebalance(t *testing.T, mode Mode, prof Profile, n *netnstest.Pair) {
	leakCheck(t)
	cfg := Config{Workers: 2, Mode: mode}
	var p *Plane
	var local netip.AddrPort
	newViewer := func(k int) *testViewer {
		return newTestViewer(t, prof, local, "127.0.0.1:0", viewerStreams(k)...)
	}
	if mode == ModeAFXDP {
		var err error
		if p, local, err = netnsPlane(t, n.TX, cfg, netip.AddrPortFrom(n.TX4, 0)); err != nil {
			t.Fatal(err)
		}
		newViewer = func(k int) *testViewer {
			return viewerIn(t, n.RX, prof, local, netip.AddrPortFrom(n.RX4, 0), viewerStreams(k)...)
		}
	} else {
		var ctrl *net.UDPConn
		p, ctrl = joinedPlane(t, cfg, "127.0.0.1:0")
		local = addrOf(ctrl)
	}
	src := p.NewSource("s", 2)
	type sub struct {
		tv *testViewer
		v  *Viewer
		k  int
	}
	subs := map[*Viewer]sub{}
	for k := 0; k < 24; k++ {
		tv := newViewer(k)
		v, err := p.AddViewer(tv.h, src)
		if err != nil {
			t.Fatal(err)
		}
		subs[v] = sub{tv, v, k}
	}
	on0, on1 := viewersOn(p, 0), viewersOn(p, 1)
	if len(on0) != 12 || len(on1) != 12 {
		t.Fatalf("placement %d/%d", len(on0), len(on1))
	}

	// Video flows while worker 1 loses 11 of its 12 viewers.
	f := &frames{src: src}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.publish(1)
			time.Sleep(300 * time.Microsecond)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	for _, v := range on1[:11] {
		v.Close()
		delete(subs, v)
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()

	st := p.Stats()
	if n0, n1 := st.Workers[0].Viewers, st.Workers[1].Viewers; n0 != 10 || n1 != 3 {
		t.Fatalf("after rebalancing: %d and %d viewers, want 10 and 3", n0, n1)
	}
	if len(viewersOn(p, 1)) != 3 {
		t.Fatal("viewer sets disagree with the counts")
	}
	moved := 0
	for _, v := range viewersOn(p, 1) {
		if v != on1[11] {
			moved++
		}
	}
	if moved != 2 {
		t.Fatalf("%d viewers moved, want 2", moved)
	}
	for _, s := range subs {
		s.tv.waitCount(f.next)
	}
	time.Sleep(20 * time.Millisecond) // a duplicate would land by now
	for _, s := range subs {
		checkVideo(t, s.tv, s.k, f.next)
	}

	// A moved viewer's NACK for its last packet: same ciphertext.
	for _, v := range viewersOn(p, 1) {
		if v == on1[11] {
			continue
		}
		s := subs[v]
		ssrc := viewerStreams(s.k)[0].SSRC
		last := s.tv.stream(ssrc)[f.next-1]
		if n := v.Retransmit(ssrc, []uint16{last.hdr.SequenceNumber}); n != 1 {
			t.Fatalf("retransmit after the move found %d", n)
		}
		s.tv.waitCount(f.next + 1)
		re := s.tv.stream(ssrc)[f.next]
		if string(re.raw) != string(last.raw) {
			t.Fatal("retransmission after the move differs from the original")
		}
	}
	if mode == ModeAFXDP {
		for i, w := range p.Stats().Workers {
			if w.XDPFrames != w.Packets || w.Packets == 0 {
				t.Errorf("worker %d: %d packets, %d of them AF_XDP frames", i, w.Packets, w.XDPFrames)
			}
		}
	}
}

// No rebalance below the thresholds: 1.5x the mean and 8 viewers apart.
func TestRebalanceThresholds(t *testing.T) {
	cases := []struct {
		name      string
		perWorker [2]int
		closeOn1  int
		want      [2]int
	}{
		{"gap under 8", [2]int{8, 8}, 7, [2]int{8, 1}},
		{"gap of 8 but under 1.5x mean", [2]int{20, 20}, 8, [2]int{20, 12}},
		{"skewed", [2]int{10, 10}, 9, [2]int{9, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			p, ctrl := joinedPlane(t, Config{Workers: 2}, "127.0.0.1:0")
			src := p.NewSource("s", 2)
			for k := 0; k < c.perWorker[0]+c.perWorker[1]; k++ {
				tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(k)...)
				if _, err := p.AddViewer(tv.h, src); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range viewersOn(p, 1)[:c.closeOn1] {
				v.Close()
			}
			st := p.Stats()
			if got := [2]int{st.Workers[0].Viewers, st.Workers[1].Viewers}; got != c.want {
				t.Fatalf("viewers per worker %v, want %v", got, c.want)
			}
		})
	}
}
