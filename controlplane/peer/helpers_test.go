package peer

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/spillway-rtc/spillway/dataplane"
)

// bareOffer is what a Streaming-plugin mountpoint writes: codecs, rtcp-fb,
// ssrc/msid, mid, sendonly, and no ICE or DTLS attribute.
const bareOffer = "v=0\r\n" +
	"o=- 4242 1 IN IP4 127.0.0.1\r\n" +
	"s=Mountpoint 1\r\n" +
	"t=0 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:a\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=fmtp:111 useinbandfec=1\r\n" +
	"a=sendonly\r\n" +
	"a=msid:spillway spillwaya\r\n" +
	"a=ssrc:1111 cname:spillway\r\n" +
	"a=ssrc:1111 msid:spillway spillwaya\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:v\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtcp-fb:96 nack pli\r\n" +
	"a=rtcp-fb:96 ccm fir\r\n" +
	"a=rtcp-fb:96 goog-remb\r\n" +
	"a=sendonly\r\n" +
	"a=msid:spillway spillwayv\r\n" +
	"a=ssrc:2222 cname:spillway\r\n" +
	"a=ssrc:2222 msid:spillway spillwayv\r\n"

const (
	audioSSRC = 1111
	videoSSRC = 2222
)

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PEER_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// leakCheck fails the test if goroutines started during it outlive it.
// Register it first so its cleanup runs last.
func leakCheck(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func newTestTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	if cfg.IPs == nil {
		cfg.IPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("transport close: %v", err)
		}
	})
	return tr
}

// recorder turns Events into channels and counters.
type recorder struct {
	up        chan dataplane.Handoff
	down      chan string
	downs     atomic.Int32
	keyframes atomic.Int32
	mu        sync.Mutex
	slow      []string
}

func newRecorder() *recorder {
	return &recorder{up: make(chan dataplane.Handoff, 1), down: make(chan string, 4)}
}

func (r *recorder) events() Events {
	return Events{
		Up: func(h dataplane.Handoff) { r.up <- h },
		Down: func(reason string) {
			r.downs.Add(1)
			r.down <- reason
		},
		KeyframeRequest: func() { r.keyframes.Add(1) },
		SlowLink: func(mid, media string, uplink bool, lost int) {
			r.mu.Lock()
			r.slow = append(r.slow, mid)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) waitUp(t *testing.T) dataplane.Handoff {
	t.Helper()
	select {
	case h := <-r.up:
		return h
	case reason := <-r.down:
		t.Fatalf("down before up: %s", reason)
	case <-time.After(15 * time.Second):
		t.Fatal("no Up")
	}
	return dataplane.Handoff{}
}

func (r *recorder) waitDown(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case reason := <-r.down:
		return reason
	case <-time.After(within):
		t.Fatalf("no Down within %v", within)
	}
	return ""
}

// fakeEgress stands in for the data plane: it counts what the sender sent
// and records what the peer asks of it.
type fakeEgress struct {
	mu       sync.Mutex
	counters map[uint32]dataplane.StreamCounters
	rtx      map[uint32][]uint16
	paths    [][2]netip.AddrPort
}

func newFakeEgress() *fakeEgress {
	return &fakeEgress{counters: map[uint32]dataplane.StreamCounters{}, rtx: map[uint32][]uint16{}}
}

func (f *fakeEgress) Retransmit(ssrc uint32, seqs []uint16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rtx[ssrc] = append(f.rtx[ssrc], seqs...)
	return len(seqs)
}

func (f *fakeEgress) Counters(ssrc uint32) (dataplane.StreamCounters, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.counters[ssrc]
	return c, ok
}

func (f *fakeEgress) SetPath(local, remote netip.AddrPort) {
	f.mu.Lock()
	f.paths = append(f.paths, [2]netip.AddrPort{local, remote})
	f.mu.Unlock()
}

func (f *fakeEgress) sent(ssrc uint32, ts uint32, payload int) {
	f.mu.Lock()
	c := f.counters[ssrc]
	c.Packets++
	c.Octets += uint32(payload)
	c.LastRTPTime, c.LastSentAt = ts, time.Now()
	f.counters[ssrc] = c
	f.mu.Unlock()
}

func (f *fakeEgress) retransmitted(ssrc uint32) []uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rtx[ssrc])
}

// sender plays the data plane: SRTP with the Handoff's key, written from
// the transport's own socket (same IP:port) to the viewer.
type sender struct {
	t    *testing.T
	conn *net.UDPConn
	ctx  *srtp.Context
	h    dataplane.Handoff
	seq  map[uint32]uint16
	ts   map[uint32]uint32
	eg   *fakeEgress
}

func newSender(t *testing.T, tr *Transport, h dataplane.Handoff, eg *fakeEgress) *sender {
	t.Helper()
	ctx, err := srtp.CreateContext(h.MasterKey, h.MasterSalt, srtp.ProtectionProfile(h.Profile))
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{t: t, ctx: ctx, h: h, seq: map[uint32]uint16{}, ts: map[uint32]uint32{}, eg: eg}
	for _, c := range tr.conns {
		if c.addr == h.Local {
			s.conn = c.UDPConn
		}
	}
	if s.conn == nil {
		t.Fatalf("handoff local %v is not a transport socket %v", h.Local, tr.LocalAddrs())
	}
	return s
}

func (s *sender) send(st dataplane.Stream, payload []byte) {
	s.seq[st.SSRC]++
	s.ts[st.SSRC] += st.ClockRate / 50
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: st.PT, SequenceNumber: s.seq[st.SSRC],
		Timestamp: s.ts[st.SSRC], SSRC: st.SSRC}, Payload: payload}
	raw, err := pkt.Marshal()
	if err != nil {
		s.t.Error(err)
		return
	}
	enc, err := s.ctx.EncryptRTP(nil, raw, nil)
	if err != nil {
		s.t.Error(err)
		return
	}
	if _, err := s.conn.WriteToUDPAddrPort(enc, s.h.Remote); err != nil {
		s.t.Error(err)
		return
	}
	if s.eg != nil {
		s.eg.sent(st.SSRC, pkt.Timestamp, len(payload))
	}
}

// dropConn is a viewer socket that can go silent at once, like a viewer
// whose machine vanished: no STUN, no DTLS close_notify.
type dropConn struct {
	*net.UDPConn
	drop atomic.Bool
}

func (d *dropConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if d.drop.Load() {
		return len(b), nil
	}
	return d.UDPConn.WriteTo(b, addr)
}

func (d *dropConn) ReadFrom(b []byte) (int, net.Addr, error) { return d.UDPConn.ReadFrom(b) }

type viewerOpts struct {
	// passive: answer a=setup:passive, the peer becomes the DTLS client.
	// Otherwise the viewer is forced to answer active as browsers do (pion
	// itself answers a lite offer with passive, taking the ICE-controlling
	// agent's DTLS server role).
	passive  bool
	profiles []dtls.SRTPProtectionProfile
	// ipv6: the viewer runs on ::1 only. pion's interface gathering skips
	// ::1 (its first 12 bytes are zero, like an IPv4-compatible address),
	// so the viewer's ICE goes through a UDPMux on a ::1 socket instead.
	ipv6 bool
	drop *dropConn // viewer's ICE over this socket
}

func newDropConn(t *testing.T, ip string) *dropConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	return &dropConn{UDPConn: c}
}

// viewer is a pion/webrtc v4 PeerConnection answering the server's offer,
// with the default interceptors (NACK, receiver reports, TWCC).
type viewer struct {
	pc      *webrtc.PeerConnection
	mu      sync.Mutex
	payload map[uint32][][]byte
	srs     map[uint32][]srSeen
	cnames  map[uint32]string
}

type srSeen struct {
	rtcp.SenderReport
	at time.Time
}

func newViewer(t *testing.T, o viewerOpts) *viewer {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if o.ipv6 {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.profiles != nil {
		se.SetSRTPProtectionProfiles(o.profiles...)
	}
	role := webrtc.DTLSRoleClient
	if o.passive {
		role = webrtc.DTLSRoleServer
	}
	if err := se.SetAnsweringDTLSRole(role); err != nil {
		t.Fatal(err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	se.LoggerFactory = lf
	if o.ipv6 && o.drop == nil {
		o.drop = newDropConn(t, "::1")
	}
	if o.drop != nil {
		mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: o.drop, Logger: lf.NewLogger("viewer-mux")})
		t.Cleanup(func() { _ = mux.Close() })
		se.SetICEUDPMux(mux)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{pc: pc, payload: map[uint32][][]byte{}, srs: map[uint32][]srSeen{}, cnames: map[uint32]string{}}
	t.Cleanup(func() { _ = pc.Close() })
	pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		go func() { // drain RTCP so the report interceptor sees our SRs
			for {
				pkts, _, err := rcv.ReadRTCP()
				if err != nil {
					return
				}
				v.noteRTCP(pkts)
			}
		}()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.mu.Lock()
			v.payload[p.SSRC] = append(v.payload[p.SSRC], slices.Clone(p.Payload))
			v.mu.Unlock()
		}
	})
	return v
}

func (v *viewer) noteRTCP(pkts []rtcp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			v.srs[p.SSRC] = append(v.srs[p.SSRC], srSeen{*p, time.Now()})
		case *rtcp.SourceDescription:
			for _, c := range p.Chunks {
				for _, it := range c.Items {
					if it.Type == rtcp.SDESCNAME {
						v.cnames[c.Source] = it.Text
					}
				}
			}
		}
	}
}

func (v *viewer) senderReports(ssrc uint32) []srSeen {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.srs[ssrc])
}

func (v *viewer) cname(ssrc uint32) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cnames[ssrc]
}

// answer applies the server's offer and returns the gathered answer.
func (v *viewer) answer(t *testing.T, offer string) string {
	t.Helper()
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatalf("viewer SetRemoteDescription: %v\n%s", err, offer)
	}
	ans, err := v.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	<-done
	return v.pc.LocalDescription().SDP
}

func (v *viewer) received(ssrc uint32) [][]byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.payload[ssrc])
}

func (v *viewer) waitConnected(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for v.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatalf("viewer not connected: %v", v.pc.ConnectionState())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connect runs offer/answer between a new peer and the viewer and waits
// for Up.
func connect(t *testing.T, tr *Transport, v *viewer, rec *recorder) (*Peer, dataplane.Handoff) {
	t.Helper()
	p := tr.NewPeer(rec.events())
	t.Cleanup(func() { p.Close("test over") })
	offer, err := p.CompleteOffer(bareOffer)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ApplyAnswer(v.answer(t, offer)); err != nil {
		t.Fatal(err)
	}
	return p, rec.waitUp(t)
}

func streamBySSRC(t *testing.T, h dataplane.Handoff, ssrc uint32) dataplane.Stream {
	t.Helper()
	for _, s := range h.Streams {
		if s.SSRC == ssrc {
			return s
		}
	}
	t.Fatalf("no stream %d in %+v", ssrc, h.Streams)
	return dataplane.Stream{}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsPayload(got [][]byte, want []byte) bool {
	for _, g := range got {
		if bytes.Equal(g, want) {
			return true
		}
	}
	return false
}
