//go:build linux

package afxdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/dataplane/udpframe"
	"github.com/spillway-rtc/spillway/internal/netns"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
)

// pair makes the namespaces (two queues per veth end) and returns them
// with the TX end's index and both MACs.
func pair(t *testing.T, tag string) (*netnstest.Pair, int, net.HardwareAddr, net.HardwareAddr) {
	t.Helper()
	n := netnstest.New(t, tag, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netnstest.Options{Queues: 2})
	tx := netnstest.Link(t, n.TX, n.TXIf)
	rx := netnstest.Link(t, n.RX, n.RXIf)
	return n, tx.Index, tx.HardwareAddr, rx.HardwareAddr
}

func openIn(t *testing.T, ns string, cfg Config) (*Socket, error) {
	t.Helper()
	var s *Socket
	err := netns.Run(ns, func() error {
		var err error
		s, err = Open(cfg)
		return err
	})
	if s != nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// On veth, auto falls back to copy mode and keeps the driver's refusal;
// on fails with it; off never tries. Queues the device lacks are refused.
func TestOpenModes(t *testing.T) {
	n, ifindex, _, _ := pair(t, "m")
	for _, tt := range []struct {
		zc      ZeroCopy
		wantErr bool
	}{{ZeroCopyAuto, false}, {ZeroCopyOn, true}, {ZeroCopyOff, false}, {"", false}} {
		s, err := openIn(t, n.TX, Config{Ifindex: ifindex, ZeroCopy: tt.zc, RingSize: 64})
		if tt.wantErr {
			if err == nil || !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "zero-copy refused") || !strings.Contains(err.Error(), n.TXIf) {
				t.Fatalf("zerocopy=%s: err %v, want EOPNOTSUPP naming %s", tt.zc, err, n.TXIf)
			}
			continue
		}
		if err != nil {
			t.Fatalf("zerocopy=%s: %v", tt.zc, err)
		}
		if s.ZeroCopy() || s.Mode() != "copy" || !s.Offload() {
			t.Fatalf("zerocopy=%s: mode %s, offload %v on veth", tt.zc, s.Mode(), s.Offload())
		}
		if refused := s.Refused(); (tt.zc == ZeroCopyOff) != (refused == nil) || (refused != nil && !errors.Is(refused, unix.EOPNOTSUPP)) {
			t.Fatalf("zerocopy=%s: refusal %v", tt.zc, refused)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
	}
	// Busy polling and a TX budget are socket options the kernel takes in
	// copy mode too.
	if s, err := openIn(t, n.TX, Config{Ifindex: ifindex, ZeroCopy: ZeroCopyOff, BusyPoll: 50 * time.Microsecond, Budget: 64}); err != nil {
		t.Fatalf("busy poll and budget: %v", err)
	} else if v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL); err != nil || v != 50 {
		t.Fatalf("SO_BUSY_POLL %d, %v", v, err)
	} else {
		s.Close()
	}
	if _, err := openIn(t, n.TX, Config{Ifindex: ifindex, Queue: 2, ZeroCopy: ZeroCopyOff}); err == nil {
		t.Fatal("bound queue 2 of a two-queue veth")
	}
	for _, cfg := range []Config{{FrameSize: 1024}, {FrameSize: 3000}, {RingSize: 100}, {RingSize: 1 << 16}, {ZeroCopy: "maybe"}, {Queue: -1}} {
		cfg.Ifindex = ifindex
		if _, err := Open(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// Frames sent through the socket, on both queues, IPv4 and IPv6, with the
// checksum offloaded and written in software, reach a UDP socket in the
// other namespace whole and in order, many times over the ring's frames.
// A frame with a wrong checksum is dropped there: the checksums are what
// the receiver checks. With checksumming turned off on the veth, the
// kernel finishes offloaded checksums itself, in software, and the
// receiver checks them: the pseudo-header's sum left by PutPartial is
// right.
func TestSendReceived(t *testing.T) {
	n, ifindex, txMAC, rxMAC := pair(t, "s")
	netnstest.LeakCheck(t)
	for _, tt := range []struct {
		name     string
		src, dst netip.Addr
		queue    int
		offload  bool
		noCsum   bool // the veth's checksum offload off (ethtool), from here on
	}{
		{"ipv4/offload", n.TX4, n.RX4, 0, true, false},
		{"ipv4/software", n.TX4, n.RX4, 1, false, false},
		{"ipv6/offload", n.TX6, n.RX6, 1, true, false},
		{"ipv6/software", n.TX6, n.RX6, 0, false, false},
		{"ipv4/offload/kernel-sum", n.TX4, n.RX4, 0, true, true},
		{"ipv6/offload/kernel-sum", n.TX6, n.RX6, 1, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noCsum {
				if out, err := exec.Command("ip", "netns", "exec", n.TX, "ethtool", "-K", n.TXIf, "tx", "off").CombinedOutput(); err != nil {
					t.Fatalf("ethtool (installed by scripts/test-deps.sh): %v: %s", err, out)
				}
			}
			s, err := openIn(t, n.TX, Config{Ifindex: ifindex, Queue: tt.queue, RingSize: 64, ZeroCopy: ZeroCopyOff})
			if err != nil {
				t.Fatal(err)
			}
			dst := netip.AddrPortFrom(tt.dst, 5004)
			sink := netnstest.Listen(t, n.RX, dst)
			h, err := udpframe.New(txMAC, rxMAC, netip.AddrPortFrom(tt.src, 40000), dst)
			if err != nil {
				t.Fatal(err)
			}
			send := func(payload []byte, corrupt bool) {
				t.Helper()
				buf, frame, ok := s.Frame()
				if !ok {
					t.Fatal("no free frame")
				}
				f := buf[:h.Len()+len(payload)]
				copy(f[h.Len():], payload)
				if tt.offload {
					err = h.PutPartial(f)
				} else {
					err = h.Put(f)
				}
				if err != nil {
					t.Fatal(err)
				}
				if corrupt {
					f[len(f)-1] ^= 0xff
				}
				if tt.offload {
					s.Queue(frame, len(f), h.CsumStart(), udpframe.CsumOffset)
				} else {
					s.Queue(frame, len(f), 0, 0)
				}
			}
			payload := func(i int) []byte {
				p := make([]byte, 100+i%1300)
				binary.BigEndian.PutUint32(p, uint32(i))
				for j := 4; j < len(p); j++ {
					p[j] = byte(i + j)
				}
				return p
			}
			const total, burst = 1000, 50 // 15 times the ring's 64 frames
			buf := make([]byte, 2048)
			for i := 0; i < total; i += burst {
				for j := i; j < i+burst; j++ {
					send(payload(j), false)
				}
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
				for j := i; j < i+burst; j++ {
					sink.SetReadDeadline(time.Now().Add(2 * time.Second))
					m, from, err := sink.ReadFromUDPAddrPort(buf)
					if err != nil {
						t.Fatalf("packet %d of %d: %v (kicks %d, retries %d)", j, total, err, s.Kicks, s.Retries)
					}
					if from != netip.AddrPortFrom(tt.src, 40000) || !bytes.Equal(buf[:m], payload(j)) {
						t.Fatalf("packet %d: %d bytes from %v, want %d bytes from %v:40000 (seq %d)", j, m, from, len(payload(j)), tt.src, binary.BigEndian.Uint32(buf))
					}
				}
			}
			if tt.offload {
				return // a device finishing the checksum writes a right one
			}
			send(payload(1), true)
			send(payload(2), false)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			sink.SetReadDeadline(time.Now().Add(2 * time.Second))
			if m, _, err := sink.ReadFromUDPAddrPort(buf); err != nil || !bytes.Equal(buf[:m], payload(2)) {
				t.Fatalf("after a corrupt frame: %v, seq %d; want the next frame only", err, binary.BigEndian.Uint32(buf))
			}
			st, err := s.Stats()
			if err != nil || st.TxInvalidDescs != 0 {
				t.Fatalf("stats %+v, %v", st, err)
			}
		})
	}
}

// A frame that was never queued goes back with Release; frames in flight
// come back from the completion ring. Sending allocates nothing.
func TestFramesRecycledWithoutAllocation(t *testing.T) {
	n, ifindex, txMAC, rxMAC := pair(t, "a")
	s, err := openIn(t, n.TX, Config{Ifindex: ifindex, RingSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	h, err := udpframe.New(txMAC, rxMAC, netip.AddrPortFrom(n.TX4, 40000), netip.AddrPortFrom(n.RX4, 9)) // discard: nothing listens
	if err != nil {
		t.Fatal(err)
	}
	var held []uint64
	for {
		_, f, ok := s.Frame()
		if !ok {
			break
		}
		held = append(held, f)
	}
	if len(held) != 64 || s.Exhausted != 1 {
		t.Fatalf("took %d frames of 64 (exhausted %d)", len(held), s.Exhausted)
	}
	for _, f := range held {
		s.Release(f)
	}
	one := func() {
		buf, f, ok := s.Frame()
		if !ok {
			t.Fatal("no frame")
		}
		fr := buf[:h.Len()+1200]
		h.PutPartial(fr)
		s.Queue(f, len(fr), h.CsumStart(), udpframe.CsumOffset)
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(1000, one); a != 0 {
		t.Fatalf("%v allocations per frame", a)
	}
	if s.Pending() != 0 {
		t.Fatalf("%d frames still pending", s.Pending())
	}
}
