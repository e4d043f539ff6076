//go:build linux

package dataplane

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// leakCheck fails the test if goroutines started during it outlive it.
// Register it first: cleanups run last-in first-out.
func leakCheck(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines leaked: %d before, %d after\n%s",
					before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// joinedPlane starts a plane and a control socket at local, joined.
func joinedPlane(t testing.TB, cfg Config, local string) (*Plane, *net.UDPConn) {
	t.Helper()
	ctrl, err := ListenReusePort(netip.MustParseAddrPort(local))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctrl.Close() })
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("plane close: %v", err)
		}
	})
	if err := p.Join(addrOf(ctrl)); err != nil {
		t.Fatal(err)
	}
	return p, ctrl
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func keysFor(t testing.TB, prof Profile) (key, salt []byte) {
	t.Helper()
	kl, err := srtp.ProtectionProfile(prof).KeyLen()
	if err != nil {
		t.Fatal(err)
	}
	sl, _ := srtp.ProtectionProfile(prof).SaltLen()
	key, salt = make([]byte, kl), make([]byte, sl)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	return key, salt
}

// got is one packet as a test viewer received it.
type got struct {
	raw  []byte // SRTP as it arrived
	hdr  rtp.Header
	pay  []byte
	from netip.AddrPort
}

// testViewer is a loopback UDP socket with its own SRTP context, decrypting
// what the plane sends it.
type testViewer struct {
	t     testing.TB
	conn  *net.UDPConn
	ctx   *srtp.Context
	h     Handoff
	mu    sync.Mutex
	pkts  map[uint32][]got // by SSRC
	bad   int
	total int
	done  chan struct{}
}

// newTestViewer listens on addr ("127.0.0.1:0" or "[::1]:0") and returns a
// Handoff for it. streams are (mid, ssrc, pt, clock, source index).
func newTestViewer(t testing.TB, prof Profile, local netip.AddrPort, addr string, streams ...Stream) *testViewer {
	t.Helper()
	key, salt := keysFor(t, prof)
	return listenViewer(t, Handoff{Profile: prof, MasterKey: key, MasterSalt: salt, Local: local, Streams: streams}, addr)
}

// listenViewer is a test viewer for the keys and streams of h, listening on
// addr; its Handoff is h with Remote set.
func listenViewer(t testing.TB, h Handoff, addr string) *testViewer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	return startViewer(t, h, conn)
}

// startViewer is a test viewer for the keys and streams of h on conn.
func startViewer(t testing.TB, h Handoff, conn *net.UDPConn) *testViewer {
	t.Helper()
	_ = conn.SetReadBuffer(4 << 20)
	ctx, err := srtp.CreateContext(h.MasterKey, h.MasterSalt, srtp.ProtectionProfile(h.Profile))
	if err != nil {
		t.Fatal(err)
	}
	h.Remote = addrOf(conn)
	tv := &testViewer{t: t, conn: conn, ctx: ctx, h: h, pkts: map[uint32][]got{}, done: make(chan struct{})}
	go tv.read()
	t.Cleanup(tv.close)
	return tv
}

func (tv *testViewer) close() {
	tv.conn.Close()
	<-tv.done
}

func (tv *testViewer) read() {
	defer close(tv.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := tv.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		raw := bytes.Clone(buf[:n])
		var h rtp.Header
		plain, err := tv.ctx.DecryptRTP(nil, raw, &h)
		tv.mu.Lock()
		tv.total++
		if err != nil {
			tv.bad++
		} else {
			hl := h.MarshalSize()
			end := len(plain)
			if h.Padding {
				end -= int(plain[end-1])
			}
			tv.pkts[h.SSRC] = append(tv.pkts[h.SSRC], got{raw: raw, hdr: h, pay: plain[hl:end], from: from})
		}
		tv.mu.Unlock()
	}
}

// count is how many datagrams arrived (decrypted or not).
func (tv *testViewer) count() int {
	tv.mu.Lock()
	defer tv.mu.Unlock()
	return tv.total
}

// stream returns a copy of what arrived for ssrc.
func (tv *testViewer) stream(ssrc uint32) []got {
	tv.mu.Lock()
	defer tv.mu.Unlock()
	return append([]got(nil), tv.pkts[ssrc]...)
}

// waitCount waits until at least n datagrams arrived.
func (tv *testViewer) waitCount(n int) {
	tv.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tv.count() < n {
		if time.Now().After(deadline) {
			tv.t.Fatalf("viewer %s: %d datagrams, want %d", tv.h.Remote, tv.count(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// rtpPacket builds a plain RTP packet.
func rtpPacket(ssrc uint32, pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	copy(b[12:], payload)
	return b
}

// payloadFor is a recognisable payload of varying size.
func payloadFor(src, stream, i int) []byte {
	n := 40 + (i*37)%1100
	p := make([]byte, n)
	binary.BigEndian.PutUint32(p, uint32(src<<24|stream<<16)|uint32(i))
	for j := 4; j < n; j++ {
		p[j] = byte(i + j)
	}
	return p
}
