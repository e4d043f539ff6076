package media

import (
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/spillway-rtc/spillway/dataplane"
)

// Every video packet parses as RTP (pion) with a valid RFC 7741 descriptor
// (pion's VP8 depacketizer): PID 0, S on the first packet of a frame only, one
// 15-bit picture ID per frame counting up. The first packet starts a VP8
// frame header whose P bit is clear exactly on keyframes, which carry the
// start code and 640x360. Spillway's detector finds exactly those packets;
// the marker is on each frame's last packet; sequence numbers run on across
// a wrap and every packet of a frame has its timestamp, 3000 ticks apart.
func TestVP8Packets(t *testing.T) {
	m := DefaultVideoModel(2e6)
	g, err := NewVideoGen(m, 0x1234, 9)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint16
	var ts uint32
	var pic uint16
	var keys, wraps int
	const frames = 12000 // some 80,000 packets: past a sequence number wrap
	for f := range frames {
		fr := g.Next()
		if f > 0 && fr.Timestamp != ts+3000 {
			t.Fatalf("frame %d: timestamp %d after %d", f, fr.Timestamp, ts)
		}
		ts = fr.Timestamp
		for i, p := range fr.Packets {
			first, last := i == 0, i == len(fr.Packets)-1
			var h rtp.Packet
			if err := h.Unmarshal(p.Data); err != nil {
				t.Fatalf("frame %d packet %d: %v", f, i, err)
			}
			if h.Version != 2 || h.PayloadType != VideoPT || h.SSRC != 0x1234 || h.Marker != last ||
				h.Timestamp != ts || h.Padding || h.Extension || len(h.CSRC) != 0 {
				t.Fatalf("frame %d packet %d: header %+v", f, i, h.Header)
			}
			if (f > 0 || i > 0) && h.SequenceNumber != seq+1 {
				t.Fatalf("frame %d packet %d: seq %d after %d", f, i, h.SequenceNumber, seq)
			}
			if h.SequenceNumber < seq {
				wraps++
			}
			seq = h.SequenceNumber

			var d codecs.VP8Packet
			vp8, err := d.Unmarshal(h.Payload)
			if err != nil {
				t.Fatalf("frame %d packet %d: descriptor: %v", f, i, err)
			}
			if d.X != 1 || d.I != 1 || d.PID != 0 || d.L != 0 || d.T != 0 || d.K != 0 || d.N != 0 || (d.S == 1) != first {
				t.Fatalf("frame %d packet %d: descriptor %+v", f, i, d)
			}
			if first && f > 0 && d.PictureID != (pic+1)&0x7fff {
				t.Fatalf("frame %d: picture ID %d after %d", f, d.PictureID, pic)
			}
			if !first && d.PictureID != pic {
				t.Fatalf("frame %d packet %d: picture ID %d, frame has %d", f, i, d.PictureID, pic)
			}
			pic = d.PictureID
			if got := dataplane.IsKeyframe("vp8", h.Payload); got != (first && fr.Key) {
				t.Fatalf("frame %d packet %d (key %v): dataplane.IsKeyframe = %v", f, i, fr.Key, got)
			}
			if first {
				checkFrameHeader(t, vp8, fr.Key, len(fr.Packets))
			}
		}
		if fr.Key {
			keys++
		}
	}
	if keys != frames/m.GOP || wraps != 1 {
		t.Fatalf("%d keyframes, %d sequence wraps", keys, wraps)
	}
}

// checkFrameHeader reads a VP8 frame header as RFC 6386 9.1 lays it out.
func checkFrameHeader(t *testing.T, b []byte, key bool, packets int) {
	t.Helper()
	tag := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	inter, version, show, part := tag&1 == 1, tag>>1&7, tag>>4&1, tag>>5
	if inter == key || version != 0 || show != 1 || part == 0 || int(part) > packets*1200 {
		t.Fatalf("frame tag % x: inter %v version %d show %d first partition %d", b[:3], inter, version, show, part)
	}
	if !key {
		return
	}
	w, h := binary.LittleEndian.Uint16(b[6:]), binary.LittleEndian.Uint16(b[8:])
	if b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a || w != Width || h != Height || Width != 640 || Height != 360 {
		t.Fatalf("keyframe header % x: %dx%d", b[:10], w, h)
	}
}
