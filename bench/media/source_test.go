package media

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// quiet keeps the sources' progress lines out of test output.
var quiet = slog.New(slog.DiscardHandler)

// checkGoroutines fails the test if goroutines it started outlive it.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// received is one packet as a receiver saw it.
type received struct {
	data []byte
	at   int64 // Unix ns, right after the read
}

// receiver collects every packet sent to a loopback UDP port until stopped.
type receiver struct {
	conn *net.UDPConn
	pkts []received
	done chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	r := &receiver{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			r.pkts = append(r.pkts, received{data: slices.Clone(buf[:n]), at: time.Now().UnixNano()})
		}
	}()
	t.Cleanup(func() { conn.Close(); <-r.done })
	return r
}

func (r *receiver) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// stop lets packets in flight arrive, then ends the reader.
func (r *receiver) stop() {
	_ = r.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	<-r.done
}

// A 3 s real-time run to loopback: both streams arrive whole, at the
// model's rates (±5%), with continuous sequence numbers and timestamps,
// exactly the bytes the generators make for the same seed, stamps whose
// counters count and whose send times are within a few ms of arrival, and a
// schedule that does not drift. Counters can be read while it runs and
// match what arrived.
func TestSourceRealTime(t *testing.T) {
	checkGoroutines(t)
	vr, ar := newReceiver(t), newReceiver(t)
	cfg := SourceConfig{
		Local:  netip.MustParseAddrPort("127.0.0.1:0"),
		Video:  vr.addr(),
		Audio:  ar.addr(),
		Seed:   11,
		Logger: quiet,
	}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const run = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- src.Run(ctx) }()
	var last Counters
	for polling := true; polling; {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			polling = false
		case <-time.After(100 * time.Millisecond):
			c := src.Counters()
			if c.Video.Packets < last.Video.Packets || c.Audio.Packets < last.Audio.Packets || c.Frames < last.Frames {
				t.Fatalf("counters went back: %+v after %+v", c, last)
			}
			last = c
		}
	}
	elapsed := time.Since(start)
	if last.Frames == 0 || elapsed > run+100*time.Millisecond {
		t.Fatalf("counters read while running: %+v; Run took %v", last, elapsed)
	}
	vr.stop()
	ar.stop()
	c := src.Counters()
	t.Logf("%v: %+v", elapsed, c)

	// Everything sent arrived.
	if got := counted(vr.pkts); got != c.Video || c.SendErrors != 0 {
		t.Fatalf("video: received %+v, sent %+v, %d send errors", got, c.Video, c.SendErrors)
	}
	if got := counted(ar.pkts); got != c.Audio {
		t.Fatalf("audio: received %+v, sent %+v", got, c.Audio)
	}

	// Rates: frames and audio packets per second of run, RTP bytes per
	// second against the model's average.
	secs := run.Seconds()
	vm, am := DefaultVideoModel(DefaultBitrate), DefaultAudioModel()
	_, vbps := vm.PerViewer()
	apps, abps := am.PerViewer()
	for _, r := range []struct {
		what      string
		got, want float64
	}{
		{"frames/s", float64(c.Frames) / secs, float64(vm.FPS)},
		{"video B/s", float64(c.Video.Bytes) / secs, vbps},
		{"audio packets/s", float64(c.Audio.Packets) / secs, apps},
		{"audio B/s", float64(c.Audio.Bytes) / secs, abps},
	} {
		if math.Abs(r.got/r.want-1) > 0.05 {
			t.Errorf("%s: %.1f, want %.1f ± 5%%", r.what, r.got, r.want)
		}
	}
	if c.Keyframes != 2 { // frames 0 and 60 of about 90
		t.Errorf("%d keyframes in %d frames", c.Keyframes, c.Frames)
	}

	// The packets are the generators' own, in order, stamped at send time.
	vg, err := NewVideoGen(vm, DefaultVideoSSRC, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	var want []Packet
	for len(want) < len(vr.pkts) {
		for _, p := range vg.Next().Packets {
			want = append(want, Packet{Data: slices.Clone(p.Data), stampAt: p.stampAt})
		}
	}
	if len(want) != len(vr.pkts) {
		t.Fatalf("received %d video packets, not whole frames (%d)", len(vr.pkts), len(want))
	}
	ag, err := NewAudioGen(am, DefaultAudioSSRC, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	var awant []Packet
	for range ar.pkts {
		p := ag.Next()
		awant = append(awant, Packet{Data: slices.Clone(p.Data), stampAt: p.stampAt})
	}
	vlat := checkStream(t, "video", vr.pkts, want, true)
	alat := checkStream(t, "audio", ar.pkts, awant, false)
	t.Logf("stamp to arrival: video %v, audio %v", vlat, alat)

	// No drift: frame k and audio packet k left k periods after the first,
	// within a few ms, to the last one.
	var frameSent []int64
	for i, p := range vr.pkts {
		if i == 0 || vr.pkts[i-1].data[1]&0x80 != 0 { // after a marker: a frame's first packet
			s, _ := ParseStamp(p.data[rtpHeader:], true)
			frameSent = append(frameSent, s.SentAt)
		}
	}
	var audioSent []int64
	for _, p := range ar.pkts {
		s, _ := ParseStamp(p.data[rtpHeader:], false)
		audioSent = append(audioSent, s.SentAt)
	}
	vdrift, vtail := drift(frameSent, func(k int) time.Duration { return vm.frameTime(int64(k)) })
	adrift, atail := drift(audioSent, func(k int) time.Duration { return time.Duration(k) * am.Ptime })
	t.Logf("schedule error p50/p95/max: video %v, audio %v; last quarter's median: %v, %v", vdrift, adrift, vtail, atail)
	for _, d := range [][3]time.Duration{vdrift, adrift} {
		if d[0] > time.Millisecond || d[1] > 3*time.Millisecond || d[2] > 20*time.Millisecond {
			t.Errorf("sends strayed from the schedule: p50/p95/max %v", d)
		}
	}
	// A schedule that drifted (a ticker, or sleeps relative to the last
	// send) would be furthest off at the end.
	if vtail > time.Millisecond || atail > time.Millisecond {
		t.Errorf("the schedule drifted: last quarter's median error video %v, audio %v", vtail, atail)
	}
	if events := c.Frames + c.Audio.Packets; c.Late > events/20 {
		t.Errorf("%d of %d sends late (worst %v)", c.Late, events, c.MaxLate)
	}
}

func counted(pkts []received) Sent {
	var s Sent
	for _, p := range pkts {
		s.Packets++
		s.Bytes += uint64(len(p.data))
	}
	return s
}

// checkStream compares received packets with the generator's, the send
// time aside, and returns the p50, p95 and max of arrival - send time.
func checkStream(t *testing.T, name string, got []received, want []Packet, video bool) [3]time.Duration {
	t.Helper()
	var lat []time.Duration
	for i, r := range got {
		s, ok := ParseStamp(r.data[rtpHeader:], video)
		if !ok || s.Counter != uint32(i) {
			t.Fatalf("%s packet %d: stamp %+v %v", name, i, s, ok)
		}
		if i > 0 && binary.BigEndian.Uint16(r.data[2:]) != binary.BigEndian.Uint16(got[i-1].data[2:])+1 {
			t.Fatalf("%s packet %d: sequence number does not follow", name, i)
		}
		w := want[i]
		w.SetSendTime(s.SentAt)
		if !slices.Equal(r.data, w.Data) {
			t.Fatalf("%s packet %d: not the generator's packet", name, i)
		}
		d := time.Duration(r.at - s.SentAt)
		if d < 0 {
			t.Fatalf("%s packet %d arrived %v before it was stamped", name, i, -d)
		}
		lat = append(lat, d)
	}
	q := quantiles(lat)
	if q[0] > 2*time.Millisecond || q[1] > 5*time.Millisecond {
		t.Errorf("%s: stamp to arrival p50/p95/max %v", name, q)
	}
	return q
}

// drift is how far each send strayed from first + period(k): quantiles of
// all, and the median of the last quarter.
func drift(sent []int64, period func(int) time.Duration) (all [3]time.Duration, tail time.Duration) {
	var d []time.Duration
	for k, s := range sent {
		e := time.Duration(s-sent[0]) - period(k)
		d = append(d, max(e, -e))
	}
	tail = quantiles(slices.Clone(d[len(d)*3/4:]))[0]
	return quantiles(d), tail
}

func quantiles(d []time.Duration) [3]time.Duration {
	if len(d) == 0 {
		return [3]time.Duration{}
	}
	slices.Sort(d)
	return [3]time.Duration{d[len(d)/2], d[len(d)*95/100], d[len(d)-1]}
}

// A cancelled Run returns nil promptly; a Source runs once; with no audio
// address only video goes out.
func TestSourceCancelAndRunOnce(t *testing.T) {
	checkGoroutines(t)
	vr := newReceiver(t)
	src, err := NewSource(SourceConfig{Local: netip.MustParseAddrPort("127.0.0.1:0"), Video: vr.addr(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	stopped := time.Now()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := time.Since(stopped); d > 100*time.Millisecond {
		t.Errorf("Run took %v to notice the cancel", d)
	}
	vr.stop()
	c := src.Counters()
	if c.Frames < 4 || c.Keyframes != 1 || c.Audio != (Sent{}) || counted(vr.pkts) != c.Video {
		t.Errorf("counters %+v, received %+v", c, counted(vr.pkts))
	}
	if err := src.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "once") {
		t.Errorf("second Run: %v", err)
	}
}

func TestNewSourceErrors(t *testing.T) {
	v4 := netip.MustParseAddrPort("127.0.0.1:5004")
	v6 := netip.MustParseAddrPort("[::1]:5006")
	for _, tt := range []struct {
		name string
		cfg  SourceConfig
		ok   bool
	}{
		{"video only", SourceConfig{Video: v4}, true},
		{"v4-mapped", SourceConfig{Video: netip.MustParseAddrPort("[::ffff:127.0.0.1]:5004"), Audio: v4}, true},
		{"no video", SourceConfig{Audio: v4}, false},
		{"video port 0", SourceConfig{Video: netip.MustParseAddrPort("127.0.0.1:0")}, false},
		{"mixed families", SourceConfig{Video: v4, Audio: v6}, false},
		{"local of the other family", SourceConfig{Video: v4, Local: netip.MustParseAddrPort("[::1]:0")}, false},
		{"bad video model", SourceConfig{Video: v4, VideoModel: VideoModel{Bitrate: 1}}, false},
		{"bad audio model", SourceConfig{Video: v4, Audio: v4, AudioModel: AudioModel{Ptime: time.Millisecond}}, false},
	} {
		_, err := NewSource(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewSource: %v", tt.name, err)
		}
		if err != nil && errors.Unwrap(err) == nil && strings.Contains(tt.name, "model") {
			t.Errorf("%s: %v does not wrap the model's error", tt.name, err)
		}
	}
}
