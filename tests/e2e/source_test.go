package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// synthSource sends VP8-shaped RTP (a keyframe every 30 frames, one packet
// per frame) to a port at 30 packets/s. Byte 2 of each payload carries a
// tag so a viewer can tell sources apart.
type synthSource struct {
	conn *net.UDPConn
	dst  *net.UDPAddr
	tag  byte
	ssrc atomic.Uint32
	seq  atomic.Uint32 // next sequence number
	sent atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func newSynthSource(t *testing.T, port int, tag byte, ssrc uint32) *synthSource {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	mustf(t, err, "source socket")
	s := &synthSource{conn: conn, dst: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, tag: tag}
	s.ssrc.Store(ssrc)
	t.Cleanup(func() { s.halt(); conn.Close() })
	return s
}

// run starts sending; halt stops. A source can run again, as a restarted
// encoder would, with a new SSRC and sequence base.
func (s *synthSource) run() {
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			payload := make([]byte, 400)
			payload[0] = 0x10 // VP8 descriptor: S=1, PID 0
			if i%30 != 0 {
				payload[1] = 0x01 // P=1: an interframe
			}
			payload[2] = s.tag
			seq := uint16(s.seq.Add(1) - 1)
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq,
				Timestamp: uint32(seq) * 3000, SSRC: s.ssrc.Load(), Marker: true}, Payload: payload}
			b, _ := p.Marshal()
			if _, err := s.conn.WriteToUDP(b, s.dst); err == nil {
				s.sent.Add(1)
			}
		}
	}()
}

func (s *synthSource) halt() {
	if s.stop != nil {
		close(s.stop)
		s.wg.Wait()
		s.stop = nil
	}
}

// countSince counts video packets received after a point in time, and
// whether any carried the given source tag.
func countSince(v *viewer, since time.Time, tag byte) (n int, tagged int) {
	for _, p := range v.packets("video") {
		if p.at.After(since) {
			n++
			if len(p.payload) > 2 && p.payload[2] == tag {
				tagged++
			}
		}
	}
	return n, tagged
}

// TestPauseConfigureSwitchRestart: pause and start, configure a stream off
// and on, switch to another mountpoint without renegotiation, and a source
// that stops and restarts; the viewer's sequence numbers stay continuous.
func TestPauseConfigureSwitchRestart(t *testing.T) {
	leakCheck(t)
	srv := startServer(t, nil)
	c := dialWS(t, wsURL(srv))
	defer c.close()
	mustf(t, c.create(), "create")
	admin, err := c.attach("janus.plugin.streaming")
	mustf(t, err, "attach")
	ports := map[float64]int{}
	for _, id := range []float64{2, 3} {
		if id == 3 {
			r, err := c.message(admin, msg{"request": "create", "type": "rtp", "id": 3, "description": "second",
				"media": []any{msg{"type": "video", "mid": "v", "port": 0, "pt": 96, "codec": "vp8"},
					msg{"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}}}, nil, false)
			mustf(t, err, "create 3")
			if r.pluginData().str("streaming") != "created" {
				t.Fatalf("create 3: %v", r)
			}
		}
		r, err := c.message(admin, msg{"request": "info", "id": id}, nil, false)
		mustf(t, err, "info")
		media, _ := r.pluginData().obj("info")["media"].([]any)
		ports[id] = int(msg(media[0].(map[string]any)).num("port"))
	}
	srcA := newSynthSource(t, ports[2], 'A', 0xA)
	srcB := newSynthSource(t, ports[3], 'B', 0xB)
	srcA.run()
	srcB.run()

	v := newViewer(t, nil)
	defer v.close()
	h := watch(t, c, v, 2)
	events := c.handleEvents(h)
	waitPackets(t, v, "video", 30, 10*time.Second)
	ask := func(body msg, check func(msg) bool) {
		t.Helper()
		ack, err := c.message(h, body, nil, true)
		mustf(t, err, "%v", body)
		tx := ack.str("transaction")
		ev, err := waitOn(events, 5*time.Second, func(m msg) bool { return m.str("janus") == "event" && m.str("transaction") == tx })
		mustf(t, err, "%v event", body["request"])
		if !check(ev.pluginData()) {
			t.Fatalf("%v: event %v", body["request"], ev.pluginData())
		}
	}
	status := func(want string) func(msg) bool {
		return func(d msg) bool { return d.obj("result").str("status") == want }
	}

	// Pause: nothing for a second; start: media again.
	ask(msg{"request": "pause"}, status("pausing"))
	time.Sleep(200 * time.Millisecond)
	mark := time.Now()
	time.Sleep(time.Second)
	if n, _ := countSince(v, mark, 'A'); n != 0 {
		t.Errorf("%d video packets while paused", n)
	}
	ask(msg{"request": "start"}, status("started"))
	mark = time.Now()
	time.Sleep(1500 * time.Millisecond)
	if n, _ := countSince(v, mark, 'A'); n < 10 {
		t.Errorf("%d video packets after resuming", n)
	}

	// Configure: video off, then on.
	ask(msg{"request": "configure", "streams": []any{msg{"mid": "v", "send": false}}},
		func(d msg) bool { return d.obj("result").str("event") == "configured" })
	time.Sleep(200 * time.Millisecond)
	mark = time.Now()
	time.Sleep(time.Second)
	if n, _ := countSince(v, mark, 'A'); n != 0 {
		t.Errorf("%d video packets with video configured off", n)
	}
	ask(msg{"request": "configure", "streams": []any{msg{"mid": "v", "send": true}}},
		func(d msg) bool { return d.obj("result").str("event") == "configured" })
	mark = time.Now()
	time.Sleep(1500 * time.Millisecond)
	if n, _ := countSince(v, mark, 'A'); n < 10 {
		t.Errorf("%d video packets with video configured on again", n)
	}

	// Switch to mountpoint 3: B's packets arrive on the same track.
	ask(msg{"request": "switch", "id": 3}, func(d msg) bool {
		return d.obj("result").str("switched") == "ok" && d.obj("result").num("id") == 3
	})
	time.Sleep(200 * time.Millisecond) // what A's packets were already on their way
	mark = time.Now()
	time.Sleep(2 * time.Second)
	if n, b := countSince(v, mark, 'B'); n < 10 || b != n {
		t.Errorf("after the switch: %d video packets, %d from mountpoint 3", n, b)
	}

	// Restart B with a new SSRC and sequence base, as a restarted encoder.
	srcB.halt()
	time.Sleep(time.Second)
	srcB.ssrc.Store(0xBB)
	srcB.seq.Store(40000)
	srcB.run()
	mark = time.Now()
	time.Sleep(2500 * time.Millisecond)
	if n, _ := countSince(v, mark, 'B'); n < 20 {
		t.Errorf("%d video packets after the source restarted", n)
	}

	// Output sequence numbers never jumped: pause, configure, switch and
	// restart only left packets out, and the receiver saw one stream.
	pkts := v.packets("video")
	ssrc := pkts[0].ssrc
	for i := 1; i < len(pkts); i++ {
		if pkts[i].ssrc != ssrc {
			t.Fatalf("the viewer's SSRC changed at packet %d", i)
		}
		if d := pkts[i].seq - pkts[i-1].seq; d != 1 {
			t.Fatalf("sequence jumped by %d at packet %d (%d -> %d)", int16(d), i, pkts[i-1].seq, pkts[i].seq)
		}
		if int32(pkts[i].ts-pkts[i-1].ts) <= 0 {
			t.Fatalf("timestamp went back at packet %d", i)
		}
	}
	ask(msg{"request": "stop"}, status("stopping"))
}
