package dataplane

import "testing"

func TestIsKeyframe(t *testing.T) {
	cases := []struct {
		name    string
		codec   string
		payload []byte
		want    bool
	}{
		{"vp8 key", "vp8", []byte{0x10, 0x50, 0x9d, 0x01, 0x2a}, true},
		{"vp8 inter", "vp8", []byte{0x10, 0x51}, false},
		{"vp8 not start of partition", "vp8", []byte{0x00, 0x50}, false},
		{"vp8 partition 1", "vp8", []byte{0x11, 0x50}, false},
		{"vp8 15-bit picture id, tl0, tid", "vp8", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x50}, true},
		{"vp8 15-bit picture id inter", "vp8", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x51}, false},
		{"vp8 7-bit picture id", "vp8", []byte{0x90, 0x80, 0x12, 0x50}, true},
		{"vp8 keyidx only", "vp8", []byte{0x90, 0x10, 0x03, 0x50}, true},
		{"vp8 truncated descriptor", "vp8", []byte{0x90, 0x80}, false},
		{"vp8 no payload header", "vp8", []byte{0x10}, false},
		{"vp8 empty", "vp8", nil, false},
		{"vp9 key start", "vp9", []byte{0x08}, true},
		{"vp9 key with picture id and end", "vp9", []byte{0x8c, 0x81, 0x23}, true},
		{"vp9 inter", "vp9", []byte{0x48}, false},
		{"vp9 key continuation", "vp9", []byte{0x04}, false},
		{"vp9 empty", "vp9", nil, false},
		{"h264 idr", "h264", []byte{0x65, 0x88}, true},
		{"h264 sps", "h264", []byte{0x67, 0x42}, true},
		{"h264 pps", "h264", []byte{0x68, 0xce}, false},
		{"h264 non-idr", "h264", []byte{0x41, 0x9a}, false},
		{"h264 stap-a with sps", "h264", []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a idr second", "h264", []byte{0x78, 0x00, 0x01, 0x06, 0x00, 0x02, 0x65, 0x88}, true},
		{"h264 stap-a pps and sei", "h264", []byte{0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x01, 0x06}, false},
		{"h264 stap-a truncated", "h264", []byte{0x78, 0x00}, false},
		{"h264 stap-a size past the end", "h264", []byte{0x78, 0x00, 0x09, 0x06, 0x00}, false},
		{"h264 fu-a idr start", "h264", []byte{0x7c, 0x85, 0x88}, true},
		{"h264 fu-a idr middle", "h264", []byte{0x7c, 0x05, 0x88}, false},
		{"h264 fu-a non-idr start", "h264", []byte{0x7c, 0x81, 0x9a}, false},
		{"h264 fu-a truncated", "h264", []byte{0x7c}, false},
		{"h264 empty", "h264", nil, false},
		{"av1 new sequence", "av1", []byte{0x18, 0x0a}, true},
		{"av1 continuation", "av1", []byte{0x10, 0x0a}, false},
		{"av1 empty", "av1", nil, false},
		{"opus", "opus", []byte{0xfc, 0xff}, false},
		{"upper-case name", "VP8", []byte{0x10, 0x50}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsKeyframe(c.codec, c.payload); got != c.want {
				t.Fatalf("IsKeyframe(%q, % x) = %v, want %v", c.codec, c.payload, got, c.want)
			}
		})
	}
}
