//go:build linux

package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rtpWithExtras builds an RTP packet with one CSRC, a one-byte header
// extension and 3 bytes of padding around payload.
func rtpWithExtras(seq uint16, ts uint32, payload []byte) []byte {
	b := []byte{0x80 | 0x20 | 0x10 | 1, 100, byte(seq >> 8), byte(seq), byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts),
		0, 0, 0, 9, // ssrc
		0x11, 0x22, 0x33, 0x44, // csrc
		0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, // one-byte extension, id 1
	}
	b = append(b, payload...)
	return append(b, 0, 0, 3)
}

// Ingest receives RTP from a UDP sender, drops what is not RTP, finds the
// payload behind CSRCs, extension and padding, detects keyframes and
// publishes; viewers get the packets with the extension stripped.
func TestIngest(t *testing.T) {
	leakCheck(t)
	p, ctrl := joinedPlane(t, Config{Workers: 1}, "127.0.0.1:0")
	src := p.NewSource("rtp", 2)
	tv := newTestViewer(t, ProfileAEADAES128GCM, addrOf(ctrl), "127.0.0.1:0", viewerStreams(0)...)
	if _, err := p.AddViewer(tv.h, src); err != nil {
		t.Fatal(err)
	}
	vin, err := p.ListenRTP(src, 0, netip.MustParseAddrPort("127.0.0.1:0"), "vp8")
	if err != nil {
		t.Fatal(err)
	}
	ain, err := p.ListenRTP(src, 1, netip.MustParseAddrPort("[::1]:0"), "opus")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListenRTP(src, 2, netip.MustParseAddrPort("127.0.0.1:0"), "vp8"); err == nil {
		t.Fatal("ingest for a stream the source does not have")
	}
	if vin.Addr().Port() == 0 || ain.Addr().Port() == 0 {
		t.Fatalf("addresses %s %s", vin.Addr(), ain.Addr())
	}
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	snd6, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer snd6.Close()
	send := func(c *net.UDPConn, to netip.AddrPort, b []byte) {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}

	vp8Inter := []byte{0x10, 0x51, 1, 2, 3}
	vp8Key := []byte{0x10, 0x50, 0x9d, 0x01, 0x2a, 4, 5, 6}
	send(snd, vin.Addr(), []byte{0x80, 1, 2})                                 // too short
	send(snd, vin.Addr(), rtpPacket(9, 100, 1, 0, false, vp8Key)[1:])         // not version 2
	send(snd, vin.Addr(), rtpPacket(9, 100, 1, 0, false, make([]byte, 2000))) // too large
	send(snd, vin.Addr(), rtpWithExtras(1, 0, vp8Inter))                      // dropped: no keyframe yet
	send(snd, vin.Addr(), rtpWithExtras(2, 3000, vp8Key))
	send(snd, vin.Addr(), rtpWithExtras(3, 6000, vp8Inter))
	tv.waitCount(2)
	send(snd6, ain.Addr(), rtpPacket(8, 111, 50, 960, false, []byte("opus")))
	tv.waitCount(3)

	v := tv.stream(vSSRC)
	if len(v) != 2 || !bytes.Equal(v[0].pay, vp8Key) || !bytes.Equal(v[1].pay, vp8Inter) {
		t.Fatalf("video: %+v", v)
	}
	for _, g := range v {
		if g.hdr.Extension || len(g.hdr.CSRC) != 1 || g.hdr.CSRC[0] != 0x11223344 || !g.hdr.Padding {
			t.Fatalf("video header %+v", g.hdr)
		}
	}
	if a := tv.stream(aSSRC); len(a) != 1 || string(a[0].pay) != "opus" {
		t.Fatalf("audio: %+v", a)
	}

	st := vin.Stats()
	if st.Packets != 3 || st.Invalid != 3 || st.LastFrom != addrOf(snd) ||
		time.Since(st.LastArrival) > 5*time.Second || st.Bytes != uint64(3*len(rtpWithExtras(0, 0, nil))+2*len(vp8Inter)+len(vp8Key)) {
		t.Fatalf("video ingest stats %+v", st)
	}
	if st := ain.Stats(); st.Packets != 1 || st.LastFrom != addrOf(snd6) {
		t.Fatalf("audio ingest stats %+v", st)
	}
	if err := vin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vin.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	// ain is closed by the plane.
}

// The ingest sockets and the control plane's media port get their receive
// buffers: as root (SO_RCVBUFFORCE) what was asked, else what
// net.core.rmem_max allows. The kernel reports twice the value set.
func TestReceiveBuffers(t *testing.T) {
	want := func(n int) int {
		if os.Geteuid() == 0 {
			return 2 * n
		}
		b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
		if err != nil {
			t.Fatal(err)
		}
		max, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return 2 * min(n, max)
	}
	rcvbuf := func(c *net.UDPConn) (n int) {
		t.Helper()
		if err := control(c, func(fd int) (err error) {
			n, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, asked := range []int{0, 6 << 20} {
		p, ctrl := joinedPlane(t, Config{Workers: 1, RcvBuf: asked}, "127.0.0.1:0")
		if got := rcvbuf(ctrl); got < want(DefaultRcvBuf) {
			t.Errorf("media port SO_RCVBUF %d, want %d", got, want(DefaultRcvBuf))
		}
		in, err := p.ListenRTP(p.NewSource("s", 1), 0, netip.MustParseAddrPort("127.0.0.1:0"), "vp8")
		if err != nil {
			t.Fatal(err)
		}
		n := asked
		if n == 0 {
			n = DefaultRcvBuf
		}
		if got := rcvbuf(in.conn); got < want(n) {
			t.Errorf("RcvBuf %d: ingest SO_RCVBUF %d, want %d", asked, got, want(n))
		}
	}
	if _, err := New(Config{RcvBuf: -1}); err == nil {
		t.Error("a negative RcvBuf was accepted")
	}
}

// rxTime reads the kernel's arrival stamp: a datagram read 150 ms after
// it came was stamped when it came.
func TestRxTime(t *testing.T) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := control(c, setRxTimestamps); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if _, err := c.WriteToUDPAddrPort([]byte("x"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	buf, oob := make([]byte, 16), make([]byte, rxTimeSpace)
	_, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	at, ok := rxTime(oob[:oobn])
	if !ok {
		t.Fatalf("no arrival time in %d bytes of control messages", oobn)
	}
	if d := time.Duration(at - sent.UnixNano()); d < -time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("stamped %v after sending, want at once (read 150 ms later)", d)
	}
	if _, ok := rxTime(oob[:4]); ok {
		t.Fatal("a truncated control message gave a time")
	}
	if allocs := testing.AllocsPerRun(100, func() { rxTime(oob[:oobn]) }); allocs != 0 {
		t.Fatalf("rxTime allocates %v times", allocs)
	}
}
