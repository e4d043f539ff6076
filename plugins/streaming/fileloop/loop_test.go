package fileloop

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// sent is one packet as the Publisher saw it.
type sent struct {
	stream   int
	pkt      rtp.Packet
	keyframe bool
	size     int           // bytes, header included
	at       time.Duration // since the recorder started
}

// recorder is a Publisher that keeps copies of every packet.
type recorder struct {
	mu    sync.Mutex
	start time.Time
	pkts  []sent
	stall func(n int) // called before recording packet n, if set
}

func (r *recorder) publish(stream int, b []byte, keyframe bool) {
	var p rtp.Packet
	if err := p.Unmarshal(bytes.Clone(b)); err != nil {
		panic(err)
	}
	r.mu.Lock()
	n := len(r.pkts)
	r.mu.Unlock()
	if r.stall != nil {
		r.stall(n)
	}
	r.mu.Lock()
	r.pkts = append(r.pkts, sent{stream, p, keyframe, len(b), time.Since(r.start)})
	r.mu.Unlock()
}

func (r *recorder) of(stream int) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sent
	for _, s := range r.pkts {
		if s.stream == stream {
			out = append(out, s)
		}
	}
	return out
}

// vp8Frame is a frame put back together from its packets.
type vp8Frame struct {
	data     []byte
	ts       uint32
	picID    uint16
	keyframe bool // the Publisher's flag on the first packet
	at       time.Duration
}

// depacketize reassembles VP8 frames with pion's depacketizer and checks
// the packet-level rules on the way: sequence numbers without gaps, one
// timestamp per frame, S on the first packet only, marker on the last only.
func depacketize(t *testing.T, pkts []sent, mtu int) []vp8Frame {
	t.Helper()
	var frames []vp8Frame
	var cur *vp8Frame
	for i, s := range pkts {
		if s.size > mtu {
			t.Fatalf("packet %d: %d bytes, MTU %d", i, s.size, mtu)
		}
		if i > 0 && s.pkt.SequenceNumber != pkts[i-1].pkt.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, s.pkt.SequenceNumber, pkts[i-1].pkt.SequenceNumber)
		}
		var vp codecs.VP8Packet
		payload, err := vp.Unmarshal(s.pkt.Payload)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if vp.S == 1 && vp.PID == 0 {
			if cur != nil {
				t.Fatalf("packet %d starts a frame before the previous one's marker", i)
			}
			frames = append(frames, vp8Frame{ts: s.pkt.Timestamp, picID: vp.PictureID, keyframe: s.keyframe, at: s.at})
			cur = &frames[len(frames)-1]
		} else if cur == nil || s.keyframe {
			t.Fatalf("packet %d: continuation without a start (keyframe flag %v)", i, s.keyframe)
		}
		if s.pkt.Timestamp != cur.ts || vp.PictureID != cur.picID {
			t.Fatalf("packet %d: ts %d pic %d inside frame ts %d pic %d", i, s.pkt.Timestamp, vp.PictureID, cur.ts, cur.picID)
		}
		cur.data = append(cur.data, payload...)
		if s.pkt.Marker {
			cur = nil
		}
	}
	if cur != nil {
		frames = frames[:len(frames)-1] // cut by the end of the run
	}
	return frames
}

// checkLeaks fails if goroutines started during the test are still there.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d goroutines before, %d after", before, n)
		}
	})
}

// runFor runs l for d and checks that cancelling stops Run promptly.
func runFor(t *testing.T, l *Loop, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	time.Sleep(d)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunDemo(t *testing.T) {
	checkLeaks(t)
	c, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{start: time.Now()}
	l := NewLoop(c, Options{SSRCVideo: 1111}, rec.publish)
	const run = 1500 * time.Millisecond
	runFor(t, l, run)

	video := rec.of(StreamVideo)
	frames := depacketize(t, video, 1200)
	wantFrames := int(run / (time.Second / 30))
	if n := len(frames); n < wantFrames*8/10 || n > wantFrames*12/10+1 {
		t.Errorf("%d video frames in %v, want about %d", n, run, wantFrames)
	}
	for i, f := range frames {
		if !bytes.Equal(f.data, c.Video[i].Data) {
			t.Fatalf("frame %d: %d bytes differ from the clip's %d", i, len(f.data), len(c.Video[i].Data))
		}
		if f.keyframe != c.Video[i].Keyframe {
			t.Errorf("frame %d: keyframe flag %v, want %v", i, f.keyframe, c.Video[i].Keyframe)
		}
		if i == 0 {
			continue
		}
		if d := f.ts - frames[i-1].ts; d != 3000 {
			t.Errorf("frame %d: timestamp +%d, want +3000", i, d)
		}
		if d := (f.picID - frames[i-1].picID) & 0x7fff; d != 1 {
			t.Errorf("frame %d: picture ID +%d", i, d)
		}
	}
	// Absolute deadlines: frame i leaves at i/30 s after the first, never
	// early. A loaded machine may delay it, up to the loop's 500 ms stall
	// rule; no drift means the delay does not accumulate.
	for i, f := range frames {
		want := time.Duration(i) * time.Second / 30
		if got := f.at - frames[0].at; got < want-20*time.Millisecond || got > want+450*time.Millisecond {
			t.Errorf("frame %d sent at +%v, want +%v", i, got, want)
		}
	}
	for _, s := range video {
		if s.pkt.SSRC != 1111 || s.pkt.PayloadType != 96 || s.pkt.Version != 2 {
			t.Fatalf("video header %+v", s.pkt.Header)
		}
	}

	audio := rec.of(StreamAudio)
	wantAudio := int(run / (20 * time.Millisecond))
	if n := len(audio); n < wantAudio*8/10 || n > wantAudio*12/10+1 {
		t.Errorf("%d audio packets in %v, want about %d", n, run, wantAudio)
	}
	for i, s := range audio {
		if !bytes.Equal(s.pkt.Payload, c.Audio[i].Data) {
			t.Fatalf("audio packet %d differs from the clip", i)
		}
		if s.pkt.PayloadType != 111 || s.pkt.SSRC != l.SSRC(StreamAudio) || s.pkt.SSRC == 0 {
			t.Fatalf("audio header %+v", s.pkt.Header)
		}
		if s.pkt.Marker != (i == 0) {
			t.Errorf("audio packet %d: marker %v", i, s.pkt.Marker)
		}
		if i == 0 {
			continue
		}
		if s.pkt.SequenceNumber != audio[i-1].pkt.SequenceNumber+1 {
			t.Errorf("audio packet %d: seq %d after %d", i, s.pkt.SequenceNumber, audio[i-1].pkt.SequenceNumber)
		}
		if d := s.pkt.Timestamp - audio[i-1].pkt.Timestamp; d != 960 {
			t.Errorf("audio packet %d: timestamp +%d, want +960", i, d)
		}
	}

	st := l.Stats()
	var vb, ab uint64
	for _, s := range video {
		vb += uint64(s.size)
	}
	for _, s := range audio {
		ab += uint64(s.size)
	}
	want := LoopStats{VideoPackets: uint64(len(video)), VideoBytes: vb, AudioPackets: uint64(len(audio)), AudioBytes: ab}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

// tinyClip lasts 100 ms: three 1/30 s video frames (the second bigger than
// the MTU) and audioN 20 ms audio packets.
func tinyClip(audioN int) *Clip {
	c := &Clip{Width: 64, Height: 64, FPS: 30}
	for i := range 3 {
		data := bytes.Repeat([]byte{byte(i)}, 50+i%2*250)
		data[0] = byte(i << 1) // frame tag bit 0: 0 on the key frame only
		if i > 0 {
			data[0] |= 1
		}
		c.Video = append(c.Video, Frame{Data: data, Keyframe: i == 0, Duration: time.Second / 30})
	}
	for i := range audioN {
		c.Audio = append(c.Audio, Frame{Data: []byte{0xfc, byte(i)}, Keyframe: true, Duration: 20 * time.Millisecond})
	}
	return c
}

func TestRunLoops(t *testing.T) {
	onlyAudio := tinyClip(5)
	onlyAudio.Video = nil
	tests := []struct {
		name       string
		clip       *Clip
		audioTicks []uint32 // audio timestamp deltas over one pass, from packet 0 to packet 0
	}{
		{"same length", tinyClip(5), []uint32{960, 960, 960, 960, 960}},
		// The period is the longer stream; the shorter one waits for it.
		{"audio shorter", tinyClip(3), []uint32{960, 960, 4800 - 1920}},
		{"video only", func() *Clip { c := tinyClip(0); return c }(), nil},
		{"audio only", onlyAudio, []uint32{960, 960, 960, 960, 960}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			rec := &recorder{start: time.Now()}
			l := NewLoop(tt.clip, Options{MTU: 100, VideoPT: 100, AudioPT: 101}, rec.publish)
			runFor(t, l, 450*time.Millisecond)

			st := l.Stats()
			if st.Loops < 3 || st.Loops > 5 {
				t.Errorf("%d loops in 450 ms of a 100 ms clip", st.Loops)
			}
			frames := depacketize(t, rec.of(StreamVideo), 100)
			if len(tt.clip.Video) > 0 && len(frames) < 3*len(tt.clip.Video) {
				t.Fatalf("%d video frames", len(frames))
			}
			for i, f := range frames {
				if !bytes.Equal(f.data, tt.clip.Video[i%3].Data) {
					t.Errorf("frame %d differs from clip frame %d", i, i%3)
				}
				if f.keyframe != (i%3 == 0) {
					t.Errorf("frame %d: keyframe %v", i, f.keyframe)
				}
				if i == 0 {
					continue
				}
				if d := f.ts - frames[i-1].ts; d != 3000 {
					t.Errorf("frame %d: timestamp +%d across loops, want +3000", i, d)
				}
				if d := (f.picID - frames[i-1].picID) & 0x7fff; d != 1 {
					t.Errorf("frame %d: picture ID +%d", i, d)
				}
			}

			audio := rec.of(StreamAudio)
			if len(tt.clip.Audio) > 0 && len(audio) < 3*len(tt.clip.Audio) {
				t.Fatalf("%d audio packets", len(audio))
			}
			for i := 1; i < len(audio); i++ {
				a, b := audio[i-1].pkt, audio[i].pkt
				if b.SequenceNumber != a.SequenceNumber+1 {
					t.Errorf("audio %d: seq %d after %d", i, b.SequenceNumber, a.SequenceNumber)
				}
				if d, want := b.Timestamp-a.Timestamp, tt.audioTicks[(i-1)%len(tt.audioTicks)]; d != want {
					t.Errorf("audio %d: timestamp +%d, want +%d", i, d, want)
				}
				if !bytes.Equal(b.Payload, tt.clip.Audio[i%len(tt.clip.Audio)].Data) || b.PayloadType != 101 {
					t.Errorf("audio %d: PT %d payload % x", i, b.PayloadType, b.Payload)
				}
			}
		})
	}
}

func TestResumeAfterStop(t *testing.T) {
	checkLeaks(t)
	rec := &recorder{start: time.Now()}
	l := NewLoop(tinyClip(5), Options{MTU: 100}, rec.publish)
	runFor(t, l, 120*time.Millisecond)
	n := len(rec.of(StreamVideo))
	runFor(t, l, 120*time.Millisecond)
	video := rec.of(StreamVideo)
	if len(video) <= n {
		t.Fatal("second Run sent nothing")
	}
	frames := depacketize(t, video, 100) // checks seq continuity across the two runs
	for i := 1; i < len(frames); i++ {
		if d := frames[i].ts - frames[i-1].ts; d != 3000 {
			t.Errorf("frame %d: timestamp +%d, want +3000", i, d)
		}
	}
}

func TestLateRestartsClock(t *testing.T) {
	checkLeaks(t)
	const stall = 800 * time.Millisecond
	var resumed time.Duration
	rec := &recorder{start: time.Now()}
	rec.stall = func(n int) {
		if n == 10 {
			time.Sleep(stall)
			resumed = time.Since(rec.start)
		}
	}
	l := NewLoop(tinyClip(0), Options{}, rec.publish)
	runFor(t, l, stall+300*time.Millisecond)
	if st := l.Stats(); st.Late != 1 {
		t.Errorf("Late = %d, want 1", st.Late)
	}
	// Without the restart, the 24 frames missed during the stall would
	// all go out at once.
	burst := 0
	for _, s := range rec.of(StreamVideo) {
		if s.at > resumed && s.at < resumed+40*time.Millisecond && s.pkt.Marker {
			burst++
		}
	}
	if burst > 3 {
		t.Errorf("%d frames within 40 ms after a stall", burst)
	}
}

func TestRunErrors(t *testing.T) {
	pub := func(int, []byte, bool) {}
	tests := []struct {
		name string
		clip *Clip
		opt  Options
		pub  Publisher
	}{
		{"nil clip", nil, Options{}, pub},
		{"empty clip", &Clip{}, Options{}, pub},
		{"nil publisher", tinyClip(1), Options{}, nil},
		{"tiny MTU", tinyClip(1), Options{MTU: 20}, pub},
		{"no time", &Clip{Audio: []Frame{{Data: []byte{1}}}}, Options{}, pub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NewLoop(tt.clip, tt.opt, tt.pub).Run(context.Background()); err == nil {
				t.Error("Run accepted it")
			}
		})
	}

	t.Run("twice at once", func(t *testing.T) {
		checkLeaks(t)
		l := NewLoop(tinyClip(1), Options{}, pub)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		for l.Stats().VideoPackets == 0 {
			time.Sleep(time.Millisecond)
		}
		if err := l.Run(ctx); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("second Run: %v", err)
		}
		cancel()
		<-done
	})
}

func TestKeyframeRequests(t *testing.T) {
	l := NewLoop(tinyClip(1), Options{}, func(int, []byte, bool) {})
	for range 3 {
		l.RequestKeyframe()
	}
	if n := l.KeyframeRequests(); n != 3 {
		t.Errorf("KeyframeRequests = %d, want 3", n)
	}
}

func TestVP8Packetize(t *testing.T) {
	frame := make([]byte, 5000)
	for i := range frame {
		frame[i] = byte(i * 7)
	}
	frame[0] = 0x10 // key frame
	tests := []struct {
		mtu, packets int
	}{
		{32, 313}, // 16 bytes of payload each
		{100, 60},
		{1200, 5},
		{1500, 4},
		{5016, 1},
		{9000, 1},
	}
	for _, tt := range tests {
		rec := &recorder{start: time.Now()}
		l := NewLoop(&Clip{Video: []Frame{{Data: frame, Keyframe: true, Duration: time.Second}}}, Options{MTU: tt.mtu}, rec.publish)
		l.send(StreamVideo)
		l.send(StreamVideo)
		pkts := rec.of(StreamVideo)
		if len(pkts) != 2*tt.packets {
			t.Errorf("MTU %d: %d packets for two frames, want %d", tt.mtu, len(pkts), 2*tt.packets)
		}
		frames := depacketize(t, pkts, tt.mtu)
		if len(frames) != 2 || !bytes.Equal(frames[0].data, frame) || !bytes.Equal(frames[1].data, frame) {
			t.Errorf("MTU %d: reassembled %d frames that differ", tt.mtu, len(frames))
		}
		if len(frames) == 2 && frames[1].ts-frames[0].ts != 90000 {
			t.Errorf("MTU %d: second pass timestamp +%d, want +90000", tt.mtu, frames[1].ts-frames[0].ts)
		}
	}
}

func TestSendDoesNotAllocate(t *testing.T) {
	c, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	l := NewLoop(c, Options{}, func(_ int, b []byte, _ bool) { n += len(b) })
	allocs := testing.AllocsPerRun(1000, func() { l.send(l.nextDue()) })
	if allocs != 0 || n == 0 {
		t.Errorf("%v allocations per frame (%d bytes sent)", allocs, n)
	}
}

func TestToTicks(t *testing.T) {
	tests := []struct {
		d     time.Duration
		clock uint32
		want  uint32
	}{
		{time.Second / 30, 90000, 3000}, // 33333333 ns rounds up
		{299 * (time.Second / 30), 90000, 897000},
		{20 * time.Millisecond, 48000, 960},
		{10 * time.Second, 90000, 900000},
		{1000 * time.Hour, 90000, uint32(uint64(1000*3600*90000) % (1 << 32))}, // wraps, no overflow
	}
	for _, tt := range tests {
		if got := toTicks(tt.d, tt.clock); got != tt.want {
			t.Errorf("toTicks(%v, %d) = %d, want %d", tt.d, tt.clock, got, tt.want)
		}
	}
}
