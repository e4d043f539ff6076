package media

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// The default model is bench/dataplane's, field for field.
func TestDefaultVideoModel(t *testing.T) {
	want := VideoModel{Bitrate: 3e6, FPS: 30, GOP: 60, KeyFactor: 6, Jitter: 0.2, MaxPacket: 1200}
	if got := DefaultVideoModel(3e6); got != want {
		t.Fatalf("DefaultVideoModel(3e6) = %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultAudioModel().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	d := DefaultVideoModel(2e6)
	for _, tt := range []struct {
		name string
		edit func(*VideoModel)
		want string // substring of the error; empty: valid
	}{
		{"default", func(*VideoModel) {}, ""},
		{"no jitter", func(m *VideoModel) { m.Jitter = 0 }, ""},
		{"zero bitrate", func(m *VideoModel) { m.Bitrate = 0 }, "bitrate"},
		{"zero fps", func(m *VideoModel) { m.FPS = 0 }, "fps"},
		{"zero gop", func(m *VideoModel) { m.GOP = 0 }, "gop"},
		{"key factor below 1", func(m *VideoModel) { m.KeyFactor = 0.5 }, "key factor"},
		{"jitter 1", func(m *VideoModel) { m.Jitter = 1 }, "jitter"},
		{"jitter NaN", func(m *VideoModel) { m.Jitter = math.NaN() }, "jitter"},
		{"tiny packets", func(m *VideoModel) { m.MaxPacket = 40 }, "max packet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := d
			tt.edit(&m)
			err := m.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if _, gerr := NewVideoGen(m, 1, 1); (gerr == nil) != (err == nil) {
				t.Fatalf("NewVideoGen error %v, Validate %v", gerr, err)
			}
		})
	}
	a := DefaultAudioModel()
	for _, tt := range []struct {
		name string
		edit func(*AudioModel)
		ok   bool
	}{
		{"default", func(*AudioModel) {}, true},
		{"10 ms", func(m *AudioModel) { m.Ptime = 10 * time.Millisecond }, true},
		{"fraction of a tick", func(m *AudioModel) { m.Ptime = 20*time.Millisecond + 1 }, false},
		{"no room for the stamp", func(m *AudioModel) { m.MinPayload = 10 }, false},
		{"max below min", func(m *AudioModel) { m.MaxPayload = 70 }, false},
	} {
		m := a
		tt.edit(&m)
		if err := m.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}

func TestPacketize(t *testing.T) {
	m := DefaultVideoModel(2e6)
	for _, tt := range []struct {
		payload int
		key     bool
		want    []int
	}{
		{0, false, []int{12 + 4 + 3 + 16}},
		{0, true, []int{12 + 4 + 10 + 16}},
		{100, false, []int{112}},
		{1188, true, []int{1200}},
		{1189, false, []int{1200, 12 + 4 + 16}}, // a last packet still holds descriptor and stamp
		{3000, true, []int{1200, 1200, 12 + 624}},
	} {
		if got := m.packetize(tt.payload, tt.key, nil); !slices.Equal(got, tt.want) {
			t.Errorf("packetize(%d, %v) = %v, want %v", tt.payload, tt.key, got, tt.want)
		}
	}
}

// Ten seconds of generated frames carry the model's bitrate within 2%, with
// keyframes where the GOP says, about KeyFactor times a delta frame, each
// frame within its jitter, made of full packets and one shorter last one;
// PerViewer agrees with what was generated.
func TestVideoBitrate(t *testing.T) {
	for _, rate := range []int{300e3, 1e6, 2e6, 4e6, 8e6} {
		for _, seed := range []uint64{1, 7, 42} {
			m := DefaultVideoModel(rate)
			g, err := NewVideoGen(m, 1, seed)
			if err != nil {
				t.Fatal(err)
			}
			frames := 10 * m.FPS
			var keyBytes, deltaBytes, keys, deltas, pkts, rtpBytes int
			for f := range frames {
				fr := g.Next()
				if fr.Key != (f%m.GOP == 0) {
					t.Fatalf("%d/%d: frame %d keyframe=%v", rate, seed, f, fr.Key)
				}
				n := 0
				for i, p := range fr.Packets {
					n += len(p.Data) - rtpHeader
					rtpBytes += len(p.Data)
					if i < len(fr.Packets)-1 && len(p.Data) != m.MaxPacket {
						t.Fatalf("%d/%d: frame %d: packet %d of %d is %d bytes", rate, seed, f, i, len(fr.Packets), len(p.Data))
					}
				}
				pkts += len(fr.Packets)
				mean := m.deltaBytes()
				if fr.Key {
					mean *= m.KeyFactor
					keyBytes += n
					keys++
				} else {
					deltaBytes += n
					deltas++
				}
				if float64(n) > mean*(1+m.Jitter)+1 || float64(n) < mean*(1-m.Jitter)-1 {
					t.Fatalf("%d/%d: frame %d has %d bytes, mean %.0f ± %.0f%%", rate, seed, f, n, mean, 100*m.Jitter)
				}
			}
			secs := float64(frames) / float64(m.FPS)
			bitrate := float64(keyBytes+deltaBytes) * 8 / secs
			if math.Abs(bitrate/float64(rate)-1) > 0.02 {
				t.Errorf("%d/%d: generated %.0f bit/s", rate, seed, bitrate)
			}
			ratio := (float64(keyBytes) / float64(keys)) / (float64(deltaBytes) / float64(deltas))
			if math.Abs(ratio/m.KeyFactor-1) > 0.15 {
				t.Errorf("%d/%d: keyframes %.1fx delta frames, want about %.0fx", rate, seed, ratio, m.KeyFactor)
			}
			pps, bps := m.PerViewer()
			// PerViewer averages 20 GOPs of seed 1; packet counts vary most at low rates.
			if math.Abs(pps/(float64(pkts)/secs)-1) > 0.05 || math.Abs(bps/(float64(rtpBytes)/secs)-1) > 0.03 {
				t.Errorf("%d/%d: PerViewer %.1f pkt/s %.0f B/s, generated %.1f pkt/s %.0f B/s",
					rate, seed, pps, bps, float64(pkts)/secs, float64(rtpBytes)/secs)
			}
		}
	}
	if pps, bps := (VideoModel{}).PerViewer(); pps != 0 || bps != 0 {
		t.Errorf("PerViewer of an invalid model = %v, %v", pps, bps)
	}
}

// Audio: one packet per 20 ms of 80-160 bytes (mean near 120), PT 111, no
// marker, continuous sequence numbers, timestamps 960 apart; PerViewer
// agrees.
func TestAudioGen(t *testing.T) {
	m := DefaultAudioModel()
	g, err := NewAudioGen(m, 0xa0d10, 5)
	if err != nil {
		t.Fatal(err)
	}
	const n = 70000 // past a sequence number wrap, wherever it started
	var total int
	var lastSeq uint16
	var lastTS uint32
	for i := range n {
		b := g.Next().Data
		size := len(b) - rtpHeader
		total += len(b)
		if size < 80 || size > 160 {
			t.Fatalf("packet %d: payload %d bytes", i, size)
		}
		if b[0] != 0x80 || b[1] != AudioPT || binary.BigEndian.Uint32(b[8:]) != 0xa0d10 {
			t.Fatalf("packet %d: header % x", i, b[:12])
		}
		seq, ts := binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:])
		if i > 0 && (seq != lastSeq+1 || ts != lastTS+960) {
			t.Fatalf("packet %d: seq %d ts %d after %d %d", i, seq, ts, lastSeq, lastTS)
		}
		lastSeq, lastTS = seq, ts
	}
	mean := float64(total)/n - rtpHeader
	if math.Abs(mean-120) > 1 {
		t.Errorf("mean payload %.1f bytes, want about 120", mean)
	}
	pps, bps := m.PerViewer()
	if pps != 50 || bps != 50*(12+120) {
		t.Errorf("PerViewer() = %v, %v; want 50, %v", pps, bps, 50*(12+120))
	}
}

// After warming up, the generators allocate nothing per frame or packet.
func TestGeneratorsDoNotAllocate(t *testing.T) {
	v, err := NewVideoGen(DefaultVideoModel(4e6), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAudioGen(DefaultAudioModel(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	v.Next() // grows the packet list once
	if n := testing.AllocsPerRun(300, func() { v.Next(); a.Next() }); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}
