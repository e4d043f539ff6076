package media

import (
	"encoding/binary"
	"testing"
	"time"
)

// A stamp written at send time reads back from every kind of packet: the
// first packet of a keyframe and of a delta frame, a middle packet, audio;
// each stream's counter counts its packets from 0.
func TestStampRoundTrip(t *testing.T) {
	v, err := NewVideoGen(DefaultVideoModel(2e6), 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAudioGen(DefaultAudioModel(), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	var count uint32
	for f := range 3 { // a keyframe, then delta frames
		for i, p := range v.Next().Packets {
			p.SetSendTime(now + int64(count))
			s, ok := ParseStamp(p.Data[rtpHeader:], true)
			if !ok || s.SentAt != now+int64(count) || s.Counter != count {
				t.Fatalf("frame %d packet %d: %+v %v, want counter %d", f, i, s, ok, count)
			}
			if _, ok := ParseStamp(p.Data[rtpHeader:], false); ok {
				t.Fatalf("frame %d packet %d: found a stamp at the start of a video payload", f, i)
			}
			count++
		}
	}
	for i := range uint32(5) {
		p := a.Next()
		p.SetSendTime(now)
		s, ok := ParseStamp(p.Data[rtpHeader:], false)
		if !ok || !s.Sent().Equal(time.Unix(0, now)) || s.Counter != i {
			t.Fatalf("audio packet %d: %+v %v", i, s, ok)
		}
		if _, ok := ParseStamp(p.Data[rtpHeader:], true); ok {
			t.Fatalf("audio packet %d: read as video", i)
		}
	}
}

// ParseStamp reads past any descriptor RFC 7741 allows, and refuses what is
// not a stamp.
func TestParseStamp(t *testing.T) {
	stamp := make([]byte, StampSize)
	putStamp(stamp, 77)
	binary.BigEndian.PutUint64(stamp[4:], 123456789)
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	key := []byte{0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01}
	delta := []byte{0x51, 0x02, 0x00}
	for _, tt := range []struct {
		name    string
		payload []byte
		video   bool
		ok      bool
	}{
		{"audio", stamp, false, true},
		{"audio with trailing data", cat(stamp, []byte{1, 2, 3}), false, true},
		{"audio truncated", stamp[:StampSize-1], false, false},
		{"audio bad magic", cat([]byte{0}, stamp[1:]), false, false},
		{"empty", nil, false, false},
		{"video empty", nil, true, false},
		{"video minimal descriptor, middle packet", cat([]byte{0x00}, stamp), true, true},
		{"video minimal descriptor, delta start", cat([]byte{0x10}, delta, stamp), true, true},
		{"video minimal descriptor, key start", cat([]byte{0x10}, key, stamp), true, true},
		{"video 7-bit picture id", cat([]byte{0x90, 0x80, 0x12}, key, stamp), true, true},
		{"video 15-bit id, tl0, tid", cat([]byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40}, delta, stamp), true, true},
		{"video keyidx only, middle", cat([]byte{0x80, 0x10, 0x03}, stamp), true, true},
		{"video start of partition 1 has no frame header", cat([]byte{0x11}, stamp), true, true},
		{"video key start missing its header", cat([]byte{0x10}, stamp), true, false},
		{"video truncated descriptor", []byte{0x90, 0x80}, true, false},
		{"video truncated frame header", []byte{0x10, 0x50, 0x02}, true, false},
		{"video truncated stamp", cat([]byte{0x10}, delta, stamp[:10]), true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := ParseStamp(tt.payload, tt.video)
			if ok != tt.ok || ok && (s.SentAt != 123456789 || s.Counter != 77) {
				t.Fatalf("ParseStamp = %+v, %v; want ok %v", s, ok, tt.ok)
			}
		})
	}
}
