package e2e

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// dropOnce is an interceptor closest to the network on the viewer: it
// swallows the first copy of one video packet, so the viewer's NACK
// generator sees a gap and asks for it.
type dropOnce struct {
	interceptor.NoOp
	nth     int // drop the nth video packet
	seen    atomic.Int64
	dropped atomic.Int32 // sequence number + 1 once dropped
}

func (d *dropOnce) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *dropOnce) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	if info.MimeType != webrtc.MimeTypeVP8 {
		return reader
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := reader.Read(b, a)
			if err != nil || n < 12 {
				return n, attr, err
			}
			if d.seen.Add(1) == int64(d.nth) && d.dropped.Load() == 0 {
				d.dropped.Store(int32(binary.BigEndian.Uint16(b[2:4])) + 1)
				continue
			}
			return n, attr, err
		}
	})
}

// TestRTCPPaths: a packet the viewer lost comes back after its NACK, a PLI
// reaches the source of an RTP mountpoint (and the clip's loop), and the
// viewer gets sender reports.
func TestRTCPPaths(t *testing.T) {
	leakCheck(t)
	srv := startServer(t, nil)
	c := dialWS(t, wsURL(srv))
	defer c.close()
	mustf(t, c.create(), "create")

	// The RTP mountpoint's ports, from info with its (empty) secret.
	h0, err := c.attach("janus.plugin.streaming")
	mustf(t, err, "attach")
	r, err := c.message(h0, msg{"request": "info", "id": 2}, nil, false)
	mustf(t, err, "info")
	media, _ := r.pluginData().obj("info")["media"].([]any)
	if len(media) != 2 {
		t.Fatalf("info media %v", r.pluginData())
	}
	vport := int(msg(media[0].(map[string]any)).num("port"))
	vrtcp := int(msg(media[0].(map[string]any)).num("rtcpport"))
	aport := int(msg(media[1].(map[string]any)).num("port"))
	if vport == 0 || vrtcp == 0 || aport == 0 {
		t.Fatalf("ports missing from info: %v", media)
	}

	// A source: VP8-like RTP at 30 packets/s on the video port, from an
	// RTP socket, and an RTCP socket that sends one SR so the server learns
	// where to send PLIs.
	rtpSock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	mustf(t, err, "source rtp socket")
	defer rtpSock.Close()
	rtcpSock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	mustf(t, err, "source rtcp socket")
	defer rtcpSock.Close()
	const srcSSRC = 0x5eed
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: srcSSRC}})
	_, err = rtcpSock.WriteToUDP(sr, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: vrtcp})
	mustf(t, err, "send SR")
	plis := make(chan uint32, 16)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := rtcpSock.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pkts, err := rtcp.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			for _, p := range pkts {
				if pli, ok := p.(*rtcp.PictureLossIndication); ok {
					select {
					case plis <- pli.MediaSSRC:
					default:
					}
				}
			}
		}
	}()
	stopSrc := make(chan struct{})
	var srcWG sync.WaitGroup
	srcWG.Add(1)
	go func() {
		defer srcWG.Done()
		dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: vport}
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopSrc:
				return
			case <-tick.C:
			}
			payload := make([]byte, 600)
			payload[0] = 0x10 // VP8 descriptor: S=1, PID 0
			if i%30 != 0 {
				payload[1] = 0x01 // P=1: an interframe
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: srcSSRC, Marker: true}, Payload: payload}
			b, _ := p.Marshal()
			_, _ = rtpSock.WriteToUDP(b, dst)
		}
	}()
	defer func() { close(stopSrc); srcWG.Wait() }()

	// Viewer 1 on the clip, with a lost packet.
	drop := &dropOnce{nth: 60}
	v := newViewerWith(t, drop)
	defer v.close()
	watch(t, c, v, 1)

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if d := drop.dropped.Load(); d != 0 && hasSeq(v.packets("video"), uint16(d-1)) && v.senderReports() > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	d := drop.dropped.Load()
	if d == 0 {
		t.Fatalf("the viewer never dropped its packet (saw %d video packets)", drop.seen.Load())
	}
	if !hasSeq(v.packets("video"), uint16(d-1)) {
		t.Errorf("video packet %d was dropped and never came back after the NACK", d-1)
	}
	if v.senderReports() == 0 {
		t.Errorf("no sender report reached the viewer")
	}

	// Viewer 2 on the RTP mountpoint: its PLI reaches the source.
	v2 := newViewer(t, nil)
	defer v2.close()
	watch(t, c, v2, 2)
	// The server asks for a keyframe when a viewer starts; drain that one.
	select {
	case <-plis:
	case <-time.After(5 * time.Second):
		t.Fatalf("no PLI reached the source when the viewer started")
	}
	var ssrc uint32
	for _, p := range waitPackets(t, v2, "video", 5, 10*time.Second) {
		ssrc = p.ssrc
	}
	time.Sleep(300 * time.Millisecond) // past the server's PLI throttle
	mustf(t, v2.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}), "viewer PLI")
	select {
	case got := <-plis:
		if got != srcSSRC {
			t.Errorf("PLI for SSRC %#x, want the source's %#x", got, srcSSRC)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the viewer's PLI did not reach the source")
	}
}

func hasSeq(pkts []rxPacket, seq uint16) bool {
	for _, p := range pkts {
		if p.seq == seq {
			return true
		}
	}
	return false
}

func waitPackets(t *testing.T, v *viewer, kind string, n int, d time.Duration) []rxPacket {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p := v.packets(kind); len(p) >= n {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d packets in %v", kind, n, d)
	return nil
}
