package e2e

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"
)

// viewer is a pion/webrtc PeerConnection playing a browser that watches a
// mountpoint: it answers the server's offer, with the default interceptors
// (NACK generator, receiver reports), on loopback only.
type viewer struct {
	pc  *webrtc.PeerConnection
	mux *ice.UDPMuxDefault

	mu       sync.Mutex
	received map[string][]rxPacket // by kind
	srs      int
	tracks   map[string]*webrtc.TrackRemote
	up       chan struct{}
	upOnce   sync.Once
}

type rxPacket struct {
	seq     uint16
	ts      uint32
	ssrc    uint32
	pt      uint8
	marker  bool
	payload []byte
	at      time.Time
}

func loopbackSettingEngine() webrtc.SettingEngine {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	se.LoggerFactory = lf
	return se
}

func newViewer(t testing.TB, configure func(*webrtc.SettingEngine)) *viewer {
	t.Helper()
	return newViewerOpts(t, configure, nil)
}

// newViewerWith puts f closest to the network, before pion's interceptors.
// Interceptors see packets after SRTP, so one that "loses" a packet has
// already had it through the replay window: replay protection is off, or
// the retransmission would be refused as a replay.
func newViewerWith(t testing.TB, f interceptor.Factory) *viewer {
	t.Helper()
	return newViewerOpts(t, func(se *webrtc.SettingEngine) { se.DisableSRTPReplayProtection(true) }, f)
}

func newViewerOpts(t testing.TB, configure func(*webrtc.SettingEngine), first interceptor.Factory) *viewer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if first != nil {
		ir.Add(first)
	}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	se := loopbackSettingEngine()
	// A socket with a large receive buffer: a viewer in a test process
	// loaded by the race detector must not lose what the server sent.
	mux := bigBufferMux(t)
	se.SetICEUDPMux(mux)
	if configure != nil {
		configure(&se)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{pc: pc, mux: mux, received: map[string][]rxPacket{}, tracks: map[string]*webrtc.TrackRemote{}, up: make(chan struct{})}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			v.upOnce.Do(func() { close(v.up) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		kind := tr.Kind().String()
		v.mu.Lock()
		v.tracks[kind] = tr
		v.mu.Unlock()
		go func() {
			for {
				pkts, _, err := rcv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.SenderReport); ok {
						v.mu.Lock()
						v.srs++
						v.mu.Unlock()
					}
				}
			}
		}()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.record(kind, p)
		}
	})
	return v
}

func (v *viewer) record(kind string, p *rtp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.received[kind] = append(v.received[kind], rxPacket{
		seq: p.SequenceNumber, ts: p.Timestamp, ssrc: p.SSRC, pt: p.PayloadType, marker: p.Marker,
		payload: append([]byte(nil), p.Payload...), at: time.Now(),
	})
}

// answer takes the server's offer and returns the answer with every
// candidate gathered.
func (v *viewer) answer(t testing.TB, offer string) string {
	t.Helper()
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatalf("SetRemoteDescription: %v\n%s", err, offer)
	}
	a, err := v.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(a); err != nil {
		t.Fatal(err)
	}
	<-done
	return v.pc.LocalDescription().SDP
}

func (v *viewer) packets(kind string) []rxPacket {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]rxPacket(nil), v.received[kind]...)
}

func (v *viewer) senderReports() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.srs
}

func (v *viewer) close() {
	_ = v.pc.Close()
	_ = v.mux.Close()
}

// bigBufferMux is a viewer's UDP socket on loopback with an 8 MiB receive
// buffer (SO_RCVBUFFORCE as root, else as much as rmem_max allows).
func bigBufferMux(t testing.TB) *ice.UDPMuxDefault {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
				_ = conn.SetReadBuffer(8 << 20)
			}
		})
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	return ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn, Logger: lf.NewLogger("mux")})
}

// vp8Frames reassembles VP8 frames from packets in arrival order; it stops
// at the first gap in sequence numbers and reports it.
func vp8Frames(pkts []rxPacket) (frames [][]byte, gapAt int) {
	var cur []byte
	var dep codecs.VP8Packet
	gapAt = -1
	for i, p := range pkts {
		if i > 0 && p.seq != pkts[i-1].seq+1 {
			return frames, i
		}
		payload, err := dep.Unmarshal(p.payload)
		if err != nil {
			return frames, i
		}
		if dep.S == 1 && dep.PID == 0 {
			cur = cur[:0:0]
		}
		cur = append(cur, payload...)
		if p.marker {
			frames = append(frames, cur)
			cur = nil
		}
	}
	return frames, gapAt
}
