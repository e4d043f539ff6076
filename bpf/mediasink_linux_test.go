//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// udpFrame builds an Ethernet frame with an IPv4 (with ipOpts words of
// options) or IPv6 header and a UDP header to dst, then payload.
func udpFrame(dst netip.AddrPort, ipOpts int, payload []byte) []byte {
	var b []byte
	udpLen := 8 + len(payload)
	if dst.Addr().Is4() {
		ihl := 20 + 4*ipOpts
		b = make([]byte, 14+ihl, 14+ihl+udpLen)
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		ip := b[14:]
		ip[0] = 0x40 | byte(ihl/4)
		binary.BigEndian.PutUint16(ip[2:], uint16(ihl+udpLen))
		ip[8], ip[9] = 64, 17
		copy(ip[12:], []byte{198, 18, 3, 1})
		a := dst.Addr().As4()
		copy(ip[16:], a[:])
	} else {
		b = make([]byte, 14+40, 14+40+udpLen)
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		ip := b[14:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(udpLen))
		ip[6], ip[7] = 17, 64
		copy(ip[8:], netip.MustParseAddr("2001:db8::1").AsSlice())
		a := dst.Addr().As16()
		copy(ip[24:], a[:])
	}
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
	return append(append(b, udp...), payload...)
}

// with returns a copy of b with b[i] = v.
func with(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}

// payload returns n bytes starting with b0, b1 (an RTP, RTCP, STUN or DTLS
// look-alike, by RFC 7983's first byte).
func payload(n int, b0, b1 byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	if n > 0 {
		p[0] = b0
	}
	if n > 1 {
		p[1] = b1
	}
	return p
}

// skbCtx is an __sk_buff for BPF_PROG_TEST_RUN with only gso_segs set.
func skbCtx(gsoSegs uint32) []byte {
	ctx := make([]byte, 192)
	binary.NativeEndian.PutUint32(ctx[skbGSOSegs:], gsoSegs)
	return ctx
}

var (
	testSample4 = netip.MustParseAddrPort("198.18.3.2:5006")
	testSample6 = netip.MustParseAddrPort("[2001:db8::2]:5006")
	testViewer4 = netip.MustParseAddrPort("198.18.3.2:5004")
	testViewer6 = netip.MustParseAddrPort("[2001:db8::2]:5004")
)

// Both programs' decisions and counters through BPF_PROG_TEST_RUN: RTP by
// the first two payload bytes, sample destinations by address and port,
// everything that is not RTP passed, GSO segments counted (tc).
func TestMediaSinkClassify(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.LeakCheck(t)
	s, err := NewMediaSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, dst := range []netip.AddrPort{testSample4, testSample6} {
		if err := s.AddSample(dst); err != nil {
			t.Fatal(err)
		}
	}
	rtp := payload(1200, 0x80, 96)
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	v4 := udpFrame(testViewer4, 0, rtp)
	v6 := udpFrame(testViewer6, 0, rtp)
	tests := []struct {
		name    string
		in      []byte
		slot    int
		gsoSegs uint32 // tc only: the skb's gso_segs
	}{
		{"ipv4 rtp", v4, mediaSlotRTP, 0},
		{"ipv6 rtp", v6, mediaSlotRTP, 0},
		{"ipv4 rtp gso 6 segments", v4, mediaSlotRTP, 6},
		{"ipv6 rtp gso 1 segment", v6, mediaSlotRTP, 1},
		{"ipv4 rtp to sample", udpFrame(testSample4, 0, rtp), mediaSlotSampled, 0},
		{"ipv6 rtp to sample", udpFrame(testSample6, 0, rtp), mediaSlotSampled, 0},
		{"ipv4 rtp gso to sample", udpFrame(testSample4, 0, rtp), mediaSlotSampled, 3},
		{"ipv4 options rtp to sample", udpFrame(testSample4, 2, rtp), mediaSlotSampled, 0},
		{"ipv4 options rtp", udpFrame(testViewer4, 1, rtp), mediaSlotRTP, 0},
		{"sample port other address", udpFrame(netip.MustParseAddrPort("198.18.3.9:5006"), 0, rtp), mediaSlotRTP, 0},
		{"sample address other port", udpFrame(netip.MustParseAddrPort("198.18.3.2:5007"), 0, rtp), mediaSlotRTP, 0},
		{"sample port ipv6 other address", udpFrame(netip.MustParseAddrPort("[2001:db8::3]:5006"), 0, rtp), mediaSlotRTP, 0},
		{"first byte 128", udpFrame(testViewer4, 0, payload(100, 128, 0)), mediaSlotRTP, 0},
		{"first byte 191", udpFrame(testViewer4, 0, payload(100, 191, 0)), mediaSlotRTP, 0},
		{"first byte 127", udpFrame(testViewer4, 0, payload(100, 127, 96)), mediaSlotOther, 0},
		{"first byte 192", udpFrame(testViewer4, 0, payload(100, 192, 96)), mediaSlotOther, 0},
		{"second byte 191 (marker, PT 63)", udpFrame(testViewer6, 0, payload(100, 0x80, 191)), mediaSlotRTP, 0},
		{"second byte 224 (marker, PT 96)", udpFrame(testViewer6, 0, payload(100, 0x80, 224)), mediaSlotRTP, 0},
		{"second byte 255", udpFrame(testViewer6, 0, payload(100, 0x80, 255)), mediaSlotRTP, 0},
		{"rtcp 192", udpFrame(testViewer6, 0, payload(100, 0x80, 192)), mediaSlotRTCP, 0},
		{"rtcp sr 200", udpFrame(testViewer4, 0, payload(28, 0x80, 200)), mediaSlotRTCP, 0},
		{"rtcp 223", udpFrame(testViewer4, 0, payload(28, 0x81, 223)), mediaSlotRTCP, 0},
		{"rtcp ipv6 to sample", udpFrame(testSample6, 0, payload(28, 0x80, 200)), mediaSlotOther, 0},
		{"rtcp to sample", udpFrame(testSample4, 0, payload(28, 0x80, 201)), mediaSlotOther, 0},
		{"stun", udpFrame(testViewer4, 0, payload(20, 0x00, 0x01)), mediaSlotOther, 0},
		{"stun first byte 3", udpFrame(testViewer6, 0, payload(20, 0x03, 0x01)), mediaSlotOther, 0},
		{"dtls", udpFrame(testViewer4, 0, payload(60, 22, 0xfe)), mediaSlotOther, 0},
		{"dtls to sample", udpFrame(testSample6, 0, payload(60, 22, 0xfe)), mediaSlotOther, 0},
		{"one payload byte", udpFrame(testViewer4, 0, payload(1, 0x80, 0)), mediaSlotOther, 0},
		{"empty udp", udpFrame(testViewer6, 0, nil), mediaSlotOther, 0},
		{"ipv4 tcp", with(v4, 14+9, 6), mediaSlotNotUDP, 0},
		{"ipv6 icmp", with(v6, 14+6, 58), mediaSlotNotUDP, 0},
		{"ipv6 hop-by-hop", with(v6, 14+6, 0), mediaSlotNotUDP, 0},
		{"ipv4 more fragments", with(v4, 14+6, 0x20), mediaSlotNotUDP, 0},
		{"ipv4 fragment offset", with(v4, 14+7, 0x01), mediaSlotNotUDP, 0},
		{"ipv4 fragment high offset bits", with(v4, 14+6, 0x1f), mediaSlotNotUDP, 0},
		{"ipv4 don't fragment", with(v4, 14+6, 0x40), mediaSlotRTP, 0},
		{"ipv4 bad ihl", with(v4, 14, 0x44), mediaSlotNotUDP, 0},
		{"arp", arp, mediaSlotNotUDP, 0},
		{"ethernet header only", v4[:14], mediaSlotNotUDP, 0},
		{"ipv4 truncated", v4[:14+19], mediaSlotNotUDP, 0},
		{"ipv6 truncated", v6[:14+39], mediaSlotNotUDP, 0},
	}
	// BPF_PROG_TEST_RUN refuses an skb whose IP header is cut short.
	truncated := map[string]bool{"ethernet header only": true, "ipv4 truncated": true, "ipv6 truncated": true}
	for _, kind := range []struct {
		name       string
		prog       *ebpf.Program
		pass, drop uint32
	}{
		{"tc", s.tc, tcActOK, tcActShot},
		{"xdp", s.xdp, xdpPass, xdpDrop},
	} {
		for _, tt := range tests {
			if kind.name == "tc" && truncated[tt.name] {
				continue
			}
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				before, err := s.Counts()
				if err != nil {
					t.Fatal(err)
				}
				opts := &ebpf.RunOptions{Data: tt.in}
				segs := uint64(1)
				if kind.name == "tc" && tt.gsoSegs != 0 {
					opts.Context = skbCtx(tt.gsoSegs)
					segs = uint64(tt.gsoSegs)
				}
				action, err := kind.prog.Run(opts)
				if err != nil {
					t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
				}
				want, wantAction := before, kind.pass
				var bytes uint64 // UDP payload
				if tt.slot == mediaSlotRTP || tt.slot == mediaSlotSampled {
					bytes = uint64(len(tt.in) - 14 - 8 - 40)
					if tt.in[14]>>4 == 4 {
						bytes = uint64(len(tt.in) - 14 - 8 - int(tt.in[14]&0xf)*4)
					}
				}
				switch tt.slot {
				case mediaSlotRTP:
					want.Packets += segs
					want.Bytes += bytes
					wantAction = kind.drop
				case mediaSlotSampled:
					want.Sampled += segs
					want.SampledBytes += bytes
				case mediaSlotRTCP:
					want.RTCP += segs
					wantAction = kind.drop
				case mediaSlotOther:
					want.Other += segs
				case mediaSlotNotUDP:
					want.Other += segs
					want.NotUDP += segs
				}
				if action != wantAction {
					t.Errorf("action %d, want %d", action, wantAction)
				}
				after, err := s.Counts()
				if err != nil {
					t.Fatal(err)
				}
				if after != want {
					t.Errorf("counts %+v, want %+v", after, want)
				}
			})
		}
	}
}

// AddSample and RemoveSample: an IPv4 address and its v4-mapped form are
// one key; removing an absent key and an invalid address fail.
func TestMediaSinkSampleKeys(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.LeakCheck(t)
	s, err := NewMediaSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mapped := netip.AddrPortFrom(netip.AddrFrom16(testSample4.Addr().As16()), testSample4.Port())
	if err := s.AddSample(mapped); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSample(testSample4); err != nil {
		t.Fatalf("remove v4 form of a v4-mapped sample: %v", err)
	}
	if err := s.RemoveSample(testSample4); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("removing an absent sample: %v, want ErrKeyNotExist", err)
	}
	if err := s.AddSample(netip.AddrPort{}); err == nil {
		t.Fatal("AddSample of an invalid address succeeded")
	}
}

// newMediaNet is the media sink's pair: benchmarking addresses, the
// viewers' side at testViewer4's address.
func newMediaNet(t *testing.T) *netnstest.Pair {
	t.Helper()
	return netnstest.New(t, "m", netip.MustParseAddr("198.18.3.1"), testViewer4.Addr(), netnstest.Options{})
}

// sendGSO sends b as one UDP GSO datagram of seg-byte segments.
func sendGSO(t *testing.T, c *net.UDPConn, dst netip.AddrPort, b []byte, seg int) {
	t.Helper()
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
	if _, _, err := c.WriteMsgUDPAddrPort(b, oob, dst); err != nil {
		t.Fatalf("send UDP GSO datagram (UDP_SEGMENT, Linux 4.18): %v", err)
	}
}

func send(t *testing.T, c *net.UDPConn, dst netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, dst); err != nil {
		t.Fatal(err)
	}
}

// gsoRTP is 5 segments of seg bytes and a short last one, each an RTP
// look-alike, as the data plane packs a frame.
func gsoRTP(seg, last int) []byte {
	var b []byte
	for range 5 {
		b = append(b, payload(seg, 0x80, 96)...)
	}
	return append(b, payload(last, 0x80, 0xe0)...)
}

// kinds counts the datagrams a socket receives until none arrives for
// wait, by RFC 7983 kind.
func kinds(t *testing.T, c *net.UDPConn, wait time.Duration) map[string]int {
	t.Helper()
	got := map[string]int{}
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(time.Now().Add(wait))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if os.IsTimeout(err) {
				return got
			}
			t.Fatal(err)
		}
		switch b := buf[:n]; {
		case b[0] <= 3:
			got["stun"]++
		case b[0] >= 20 && b[0] <= 63:
			got["dtls"]++
		case b[0] >= 128 && b[0] <= 191 && b[1] >= 192 && b[1] <= 223:
			got["rtcp"]++
		case b[0] >= 128 && b[0] <= 191:
			got["rtp"]++
		default:
			got["?"]++
		}
	}
}

// waitMedia reads the counters until they pass want's Packets, Sampled,
// RTCP and UDP Other, or 3 s go by, then once more after anything extra would
// have shown.
func waitMedia(t *testing.T, s *MediaSink, want MediaCounts) MediaCounts {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		cs, err := s.Counts()
		if err != nil {
			t.Fatal(err)
		}
		if (cs.Packets >= want.Packets && cs.Sampled >= want.Sampled && cs.RTCP >= want.RTCP &&
			cs.Other-cs.NotUDP >= want.Other-want.NotUDP) || time.Now().After(deadline) {
			time.Sleep(50 * time.Millisecond)
			if cs, err = s.Counts(); err != nil {
				t.Fatal(err)
			}
			return cs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkMedia compares everything but non-UDP packets (ARP, ND), which the
// kernel sends when it likes.
func checkMedia(t *testing.T, got, want MediaCounts) {
	t.Helper()
	got.Other -= got.NotUDP
	want.Other -= want.NotUDP
	got.NotUDP, want.NotUDP = 0, 0
	if got != want {
		t.Fatalf("counts %+v, want %+v (Other without NotUDP)", got, want)
	}
}

func equalKinds(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// mediaRound sends a viewer and a sample viewer of one family what a
// server sends (RTP, a GSO run of RTP, STUN, DTLS, RTCP) and checks what
// arrived and what was counted.
func mediaRound(t *testing.T, s *MediaSink, n *netnstest.Pair, src, dst netip.Addr) {
	viewerAddr, sampleAddr := netip.AddrPortFrom(dst, 5004), netip.AddrPortFrom(dst, 5006)
	viewer := netnstest.Listen(t, n.RX, viewerAddr)
	sample := netnstest.Listen(t, n.RX, sampleAddr)
	sender := netnstest.Listen(t, n.TX, netip.AddrPortFrom(src, 0))
	if err := s.AddSample(sampleAddr); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.RemoveSample(sampleAddr); err != nil {
			t.Error(err)
		}
	}()
	// Resolve the neighbour first, so nothing waits in its queue.
	send(t, sender, viewerAddr, payload(20, 0, 1))
	if got := kinds(t, viewer, time.Second); got["stun"] != 1 {
		t.Fatalf("warm-up STUN: received %v", got)
	}

	before, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	const rtpSize, seg, last = 1200, 1000, 300
	gso := gsoRTP(seg, last)
	for i := range 10 {
		send(t, sender, viewerAddr, payload(rtpSize, 0x80, byte(96+128*(i%2)))) // marker on odd ones
	}
	sendGSO(t, sender, viewerAddr, gso, seg)
	send(t, sender, viewerAddr, payload(20, 0x00, 0x01)) // STUN binding request
	send(t, sender, viewerAddr, payload(90, 22, 0xfe))   // DTLS
	send(t, sender, viewerAddr, payload(28, 0x80, 200))  // RTCP SR
	for range 4 {
		send(t, sender, sampleAddr, payload(rtpSize, 0x80, 96))
	}
	sendGSO(t, sender, sampleAddr, gso, seg)
	send(t, sender, sampleAddr, payload(28, 0x80, 200))

	want := before
	want.Packets += 10 + 6
	want.Bytes += 10*rtpSize + uint64(len(gso))
	want.Sampled += 4 + 6
	want.SampledBytes += 4*rtpSize + uint64(len(gso))
	want.RTCP++
	want.Other += 3
	checkMedia(t, waitMedia(t, s, want), want)

	if got, want := kinds(t, viewer, 200*time.Millisecond), map[string]int{"stun": 1, "dtls": 1}; !equalKinds(got, want) {
		t.Errorf("viewer received %v, want %v", got, want)
	}
	if got, want := kinds(t, sample, 200*time.Millisecond), map[string]int{"rtp": 4 + 6, "rtcp": 1}; !equalKinds(got, want) {
		t.Errorf("sample viewer received %v, want %v", got, want)
	}
}

// liveSamples changes the sample set while packets flow: the next RTP
// follows it, and the key is the address and port, not the port alone.
func liveSamples(t *testing.T, s *MediaSink, n *netnstest.Pair) {
	v4, s4 := netip.AddrPortFrom(n.RX4, 5004), netip.AddrPortFrom(n.RX4, 5006)
	s6 := netip.AddrPortFrom(n.RX6, 5006)
	viewer4 := netnstest.Listen(t, n.RX, v4)
	sample4 := netnstest.Listen(t, n.RX, s4)
	sample6 := netnstest.Listen(t, n.RX, s6)
	send4 := netnstest.Listen(t, n.TX, netip.AddrPortFrom(n.TX4, 0))
	send6 := netnstest.Listen(t, n.TX, netip.AddrPortFrom(n.TX6, 0))
	rtp := payload(500, 0x80, 96)

	step := func(name string, c *net.UDPConn, to netip.AddrPort, rx *net.UDPConn, arrives bool) {
		t.Helper()
		before, err := s.Counts()
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, to, rtp)
		want := before
		if arrives {
			want.Sampled++
			want.SampledBytes += uint64(len(rtp))
		} else {
			want.Packets++
			want.Bytes += uint64(len(rtp))
		}
		checkMedia(t, waitMedia(t, s, want), want)
		wantRTP := 0
		if arrives {
			wantRTP = 1
		}
		if got := kinds(t, rx, 100*time.Millisecond); got["rtp"] != wantRTP || len(got) > wantRTP {
			t.Fatalf("%s: received %v, want %d RTP", name, got, wantRTP)
		}
	}
	if err := s.AddSample(s4); err != nil {
		t.Fatal(err)
	}
	step("v4 sample", send4, s4, sample4, true)
	step("same port, IPv6 address", send6, s6, sample6, false)
	if err := s.RemoveSample(s4); err != nil {
		t.Fatal(err)
	}
	step("removed sample", send4, s4, sample4, false)
	mapped := netip.AddrPortFrom(netip.AddrFrom16(n.RX4.As16()), 5004)
	if err := s.AddSample(mapped); err != nil {
		t.Fatal(err)
	}
	step("added as v4-mapped", send4, v4, viewer4, true)
	if err := s.RemoveSample(v4); err != nil {
		t.Fatal(err)
	}
	step("removed as v4", send4, v4, viewer4, false)
}

// Over a real veth, in both places: tc egress on the server's end (GSO
// skbs counted as their segments) and XDP on the viewers' end (the server
// segments). Viewers' sockets receive STUN and DTLS but no RTP or RTCP
// unless they are samples; the counters match exactly; after Close RTP flows.
func TestMediaSinkVeth(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, mode := range []string{"tc", "xdp"} {
		t.Run(mode, func(t *testing.T) {
			n := newMediaNet(t)
			netnstest.LeakCheck(t)
			s, err := NewMediaSink()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			attach := func() error { return s.AttachTC(n.TX, n.TXIf) }
			if mode == "xdp" {
				attach = func() error { return s.AttachXDP(n.RX, n.RXIf) }
			}
			if err := attach(); err != nil {
				t.Fatal(err)
			}
			if err := attach(); err == nil {
				t.Fatal("second attach succeeded")
			}
			t.Run("ipv4", func(t *testing.T) { mediaRound(t, s, n, n.TX4, n.RX4) })
			t.Run("ipv6", func(t *testing.T) { mediaRound(t, s, n, n.TX6, n.RX6) })
			t.Run("live samples", func(t *testing.T) { liveSamples(t, s, n) })
			if t.Failed() {
				return
			}

			viewer := netnstest.Listen(t, n.RX, testViewer6)
			sender := netnstest.Listen(t, n.TX, netip.AddrPortFrom(n.TX6, 0))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Counts(); err == nil {
				t.Fatal("Counts after Close succeeded")
			}
			if mode == "xdp" && xdpAttached(t, n.RX, n.RXIf) {
				t.Fatal("XDP program still attached after Close")
			}
			sendGSO(t, sender, testViewer6, gsoRTP(1000, 300), 1000)
			if got := kinds(t, viewer, time.Second); got["rtp"] != 6 {
				t.Fatalf("after Close the viewer received %v, want 6 RTP", got)
			}
		})
	}
}

// Attach names what is missing: the namespace or the interface. A failed
// attach leaves the sink usable; a closed sink refuses everything.
func TestMediaSinkAttachErrors(t *testing.T) {
	netnstest.RequireRoot(t)
	n := newMediaNet(t)
	netnstest.LeakCheck(t)
	s, err := NewMediaSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	noNetns := fmt.Sprintf("%s%d-missing", netnstest.Prefix, os.Getpid())
	err = s.AttachTC(noNetns, n.TXIf)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/run/netns/"+noNetns) {
		t.Errorf("missing netns: %v, want ErrNotExist naming /run/netns/%s", err, noNetns)
	}
	err = s.AttachXDP(noNetns, n.RXIf)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing netns (XDP): %v, want ErrNotExist", err)
	}
	for _, attach := range []func(string, string) error{s.AttachTC, s.AttachXDP} {
		for _, ns := range []string{n.TX, ""} {
			err = attach(ns, "spwmsnosuch0")
			if err == nil || !strings.Contains(err.Error(), "spwmsnosuch0") || !strings.Contains(err.Error(), "no such network interface") {
				t.Errorf("missing interface in netns %q: %v", ns, err)
			}
		}
	}
	if err := s.AttachXDP(n.RX, n.RXIf); err != nil {
		t.Fatalf("attach after failed attaches: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.AttachTC(n.TX, n.TXIf); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("attach after Close: %v", err)
	}
	if err := s.AddSample(testSample4); err == nil {
		t.Error("AddSample after Close succeeded")
	}
}

// rtpRun is a GSO payload: one RTP header per segment of size bytes (the
// last one shorter when short > 0), each (ssrc, seq).
func rtpRun(size, short int, hdrs ...[2]uint32) []byte {
	var b []byte
	for i, h := range hdrs {
		n := size
		if i == len(hdrs)-1 && short > 0 {
			n = short
		}
		seg := payload(n, 0x80, 96)
		binary.BigEndian.PutUint16(seg[2:], uint16(h[1]))
		binary.BigEndian.PutUint32(seg[8:], h[0])
		b = append(b, seg...)
	}
	return b
}

// The flow map: per destination and SSRC, packets and the highest sequence
// number extended past wraps, from plain packets and from GSO runs whose
// last, shorter segment may be of another stream. The port table holds
// the first address's first two streams on a port; the rest go to the LRU
// hash, and Flows reads both.
func TestMediaSinkFlows(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.LeakCheck(t)
	type step struct {
		name string
		dst  netip.AddrPort
		data []byte
		segs uint32 // tc: gso_segs (0: no GSO)
		size uint32 // tc: gso_size
	}
	const a, b, c = 0x0a0a0a0a, 0xb0b0b0b0, 0xc
	other := netip.MustParseAddrPort("198.18.3.7:7000")
	one := func(dst netip.AddrPort, ssrc, seq uint32) step {
		return step{fmt.Sprintf("%x/%d", ssrc, seq), dst, udpFrame(dst, 0, rtpRun(200, 0, [2]uint32{ssrc, seq})), 0, 0}
	}
	gso := func(name string, dst netip.AddrPort, short int, hdrs ...[2]uint32) step {
		return step{name, dst, udpFrame(dst, 0, rtpRun(1000, short, hdrs...)), uint32(len(hdrs)), 1000}
	}
	tests := []struct {
		prog   string
		steps  []step
		want   map[MediaFlow]MediaFlowCount
		hashed int // flows in the LRU hash
	}{
		{"tc", []step{
			one(testViewer4, a, 100),
			gso("run of 3", testViewer4, 0, [2]uint32{a, 101}, [2]uint32{a, 102}, [2]uint32{a, 103}),
			gso("run of 3, short last of another stream", testViewer4, 120, [2]uint32{a, 104}, [2]uint32{a, 105}, [2]uint32{b, 7}),
			gso("run of 2, short last", testViewer4, 300, [2]uint32{a, 106}, [2]uint32{a, 107}),
			one(testViewer4, a, 90),    // late: moves nothing
			one(testViewer4, a, 110),   // 108 and 109 lost
			one(testViewer6, c, 65535), // wraps
			one(testViewer6, c, 2),
			one(testSample4, a, 5), // samples are followed too
		}, map[MediaFlow]MediaFlowCount{
			{testViewer4, a}: {Packets: 10, Highest: 110},
			{testViewer4, b}: {Packets: 1, Highest: 7},
			{testViewer6, c}: {Packets: 2, Highest: 65538},
			{testSample4, a}: {Packets: 1, Highest: 5},
		}, 1},
		{"xdp", []step{
			one(testViewer4, a, 65000),
			one(testViewer4, a, 65001),
			one(testViewer4, a, 64000), // late
			one(testViewer4, a, 10),    // past the wrap: 545 numbers on
			one(testViewer6, b, 1),
			one(testViewer4, 0, 40), // SSRC 0 takes the second place
			one(testViewer4, 0, 41),
			one(testViewer4, c, 9), // a third stream: hashed
			one(testViewer4, c, 10),
			one(other, c, 3),
		}, map[MediaFlow]MediaFlowCount{
			{testViewer4, a}: {Packets: 4, Highest: 65536 + 10},
			{testViewer6, b}: {Packets: 1, Highest: 1},
			{testViewer4, 0}: {Packets: 2, Highest: 41},
			{testViewer4, c}: {Packets: 2, Highest: 10},
			{other, c}:       {Packets: 1, Highest: 3},
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.prog, func(t *testing.T) {
			s, err := NewMediaSink()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.AddSample(testSample4); err != nil {
				t.Fatal(err)
			}
			prog := s.xdp
			if tt.prog == "tc" {
				prog = s.tc
			}
			for _, st := range tt.steps {
				opts := &ebpf.RunOptions{Data: st.data}
				if st.segs > 0 {
					ctx := skbCtx(st.segs)
					binary.NativeEndian.PutUint32(ctx[skbGSOSize:], st.size)
					opts.Context = ctx
				}
				if _, err := prog.Run(opts); err != nil {
					t.Fatalf("%s: BPF_PROG_TEST_RUN: %v", st.name, err)
				}
			}
			got, err := s.Flows()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d flows, want %d: %v", len(got), len(tt.want), got)
			}
			for f, w := range tt.want {
				if g, ok := got[f]; !ok || g != w {
					t.Errorf("flow %v: %+v (found %v), want %+v", f, g, ok, w)
				}
			}
			hashed := 0
			var k [mediaFlowKeySize]byte
			var v [16]byte
			for it := s.flows.Iterate(); it.Next(&k, &v); {
				hashed++
			}
			if hashed != tt.hashed {
				t.Errorf("%d flows in the LRU hash, want %d", hashed, tt.hashed)
			}
		})
	}
}
