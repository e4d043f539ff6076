package main

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

func TestPacketize(t *testing.T) {
	m := defaultModel(2e6)
	for _, tt := range []struct {
		payload int
		want    []int
	}{
		{0, []int{13}},
		{1, []int{13}},
		{100, []int{112}},
		{1188, []int{1200}},
		{1189, []int{1200, 13}},
		{3000, []int{1200, 1200, 12 + 624}},
	} {
		if got := m.packetize(tt.payload, nil); !slices.Equal(got, tt.want) {
			t.Errorf("packetize(%d) = %v, want %v", tt.payload, got, tt.want)
		}
	}
}

// The generated stream has the model's bitrate, keyframes where the GOP
// says, several times larger than delta frames, and frames made of full
// packets and one shorter last packet.
func TestVideoGen(t *testing.T) {
	for _, rate := range []int{500e3, 1e6, 2e6, 4e6} {
		m := defaultModel(rate)
		g := newVideoGen(m, 7)
		var keyBytes, deltaBytes, keys, deltas int
		for f := range 10 * m.GOP {
			sizes, key := g.next()
			if key != (f%m.GOP == 0) {
				t.Fatalf("%d: frame %d keyframe=%v", rate, f, key)
			}
			n := 0
			for i, s := range sizes {
				n += s - rtpHeader
				if i < len(sizes)-1 && s != m.MaxPacket {
					t.Fatalf("%d: frame %d: packet %d of %d is %d bytes", rate, f, i, len(sizes), s)
				}
			}
			if last := sizes[len(sizes)-1]; last > m.MaxPacket || last <= rtpHeader {
				t.Fatalf("%d: last packet %d bytes", rate, last)
			}
			if key {
				keyBytes += n
				keys++
			} else {
				deltaBytes += n
				deltas++
			}
		}
		bitrate := float64(keyBytes+deltaBytes) * 8 / (float64(10*m.GOP) / float64(m.FPS))
		if math.Abs(bitrate/float64(rate)-1) > 0.03 {
			t.Errorf("%d: generated %.0f bit/s", rate, bitrate)
		}
		ratio := (float64(keyBytes) / float64(keys)) / (float64(deltaBytes) / float64(deltas))
		if math.Abs(ratio/m.KeyFactor-1) > 0.15 {
			t.Errorf("%d: keyframes %.1fx delta frames, want about %.0fx", rate, ratio, m.KeyFactor)
		}
		pps, bps := m.perViewer()
		if math.Abs(bps*8/float64(rate)-1) > 0.05 { // RTP headers add a little
			t.Errorf("%d: perViewer %.0f bit/s", rate, bps*8)
		}
		if pps < float64(rate)/8/1188 || pps > float64(rate)/8/1188+float64(m.FPS)+1 {
			t.Errorf("%d: perViewer %.1f packets/s", rate, pps)
		}
	}
}

// Packets carry consecutive sequence numbers, the frame's timestamp, and the
// marker on the last packet of each frame only.
func TestVideoGenPackets(t *testing.T) {
	g := newVideoGen(defaultModel(2e6), 1)
	var seq uint16
	for f := range 3 {
		sizes, _ := g.next()
		for i, s := range sizes {
			last := i == len(sizes)-1
			p := g.packet(s, last)
			if len(p) != s || p[0] != 0x80 || (p[1]&0x80 != 0) != last || p[1]&0x7f != 96 {
				t.Fatalf("frame %d packet %d: % x", f, i, p[:2])
			}
			if got := binary.BigEndian.Uint16(p[2:]); got != seq {
				t.Fatalf("seq %d, want %d", got, seq)
			}
			if got := binary.BigEndian.Uint32(p[4:]); got != uint32(f*3000) {
				t.Fatalf("timestamp %d, want %d", got, f*3000)
			}
			seq++
		}
	}
}
