package fileloop

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	c, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := Demo(); c2 != c {
		t.Error("Demo parsed twice: want one cached clip")
	}
	if c.Width != 640 || c.Height != 360 || c.FPS != 30 {
		t.Errorf("got %dx%d at %d fps, want 640x360 at 30", c.Width, c.Height, c.FPS)
	}
	if len(c.Video) != 300 {
		t.Errorf("%d video frames, want 300", len(c.Video))
	}
	for i, f := range c.Video {
		if f.Keyframe != (i%30 == 0) {
			t.Errorf("video frame %d: keyframe %v, want a keyframe every 30 frames", i, f.Keyframe)
		}
		if d := f.Duration - time.Second/30; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("video frame %d lasts %v", i, f.Duration)
		}
	}
	if len(c.Audio) != 500 {
		t.Errorf("%d audio packets, want 500", len(c.Audio))
	}
	for i, f := range c.Audio {
		if f.Duration != 20*time.Millisecond || len(f.Data) == 0 {
			t.Errorf("audio packet %d: %d bytes, %v", i, len(f.Data), f.Duration)
		}
	}
	if d := c.Duration(); d != 10*time.Second {
		t.Errorf("clip lasts %v, want 10s", d)
	}
	// Video and audio must end together, or A/V sync slips at every loop.
	if v := total(c.Video); v < 10*time.Second-time.Millisecond {
		t.Errorf("video lasts %v, audio %v", v, total(c.Audio))
	}
	if size := len(demoIVF) + len(demoOgg); size > 1500<<10 {
		t.Errorf("embedded clip is %d bytes, budget 1.5 MB", size)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ivf, ogg := filepath.Join(dir, "a.ivf"), filepath.Join(dir, "a.ogg")
	if err := os.WriteFile(ivf, demoIVF, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ogg, demoOgg, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		ivf, ogg     string
		video, audio int
		err          string
	}{
		{"both", ivf, ogg, 300, 500, ""},
		{"video only", ivf, "", 300, 0, ""},
		{"audio only", "", ogg, 0, 500, ""},
		{"neither", "", "", 0, 0, "no video and no audio"},
		{"missing file", filepath.Join(dir, "nope.ivf"), "", 0, 0, "no such file"},
		{"swapped", ogg, ivf, 0, 0, "not an IVF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.ivf, tt.ogg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Video) != tt.video || len(c.Audio) != tt.audio {
				t.Errorf("%d video, %d audio frames; want %d, %d", len(c.Video), len(c.Audio), tt.video, tt.audio)
			}
		})
	}
}

// makeIVF writes an IVF file with a 1/30 time base.
func makeIVF(fourcc string, frames [][]byte, pts []uint64) []byte {
	b := make([]byte, 32)
	copy(b, "DKIF")
	binary.LittleEndian.PutUint16(b[6:], 32)
	copy(b[8:], fourcc)
	binary.LittleEndian.PutUint16(b[12:], 320)
	binary.LittleEndian.PutUint16(b[14:], 240)
	binary.LittleEndian.PutUint32(b[16:], 30)
	binary.LittleEndian.PutUint32(b[20:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(len(frames)))
	for i, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = binary.LittleEndian.AppendUint64(b, pts[i])
		b = append(b, f...)
	}
	return b
}

func TestParseIVF(t *testing.T) {
	key, delta := []byte{0x10, 1, 2}, []byte{0x11, 3}
	good := makeIVF("VP80", [][]byte{key, delta, delta}, []uint64{0, 1, 3})
	tests := []struct {
		name string
		ivf  []byte
		err  string
	}{
		{"good", good, ""},
		{"short", good[:20], "not an IVF"},
		{"vp9", makeIVF("VP90", [][]byte{key}, []uint64{0}), `"VP90"`},
		{"no frames", good[:32], "no frames"},
		{"truncated frame header", good[:32+6], "truncated header"},
		{"truncated frame", good[:len(good)-1], "size 2 with 1 bytes left"},
		{"pts going back", makeIVF("VP80", [][]byte{key, delta}, []uint64{5, 5}), "not after"},
		{"empty frame", makeIVF("VP80", [][]byte{key, {}}, []uint64{0, 1}), "size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.ivf, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []Frame{
				{key, true, time.Second / 30},
				{delta, false, 3*time.Second/30 - time.Second/30}, // from pts 1 to 3, in whole ns
				{delta, false, 3*time.Second/30 - time.Second/30}, // the last lasts as long as the one before
			}
			if len(c.Video) != len(want) {
				t.Fatalf("%d frames, want %d", len(c.Video), len(want))
			}
			for i, f := range c.Video {
				if !bytes.Equal(f.Data, want[i].Data) || f.Keyframe != want[i].Keyframe || f.Duration != want[i].Duration {
					t.Errorf("frame %d: %+v, want %+v", i, f, want[i])
				}
			}
			if c.Width != 320 || c.Height != 240 || c.FPS != 18 {
				t.Errorf("%dx%d %d fps, want 320x240 18 (5 frames over 5/30 s)", c.Width, c.Height, c.FPS)
			}
		})
	}
}

// makeOgg writes one logical stream, pageSize bytes of body at most per
// page, so a packet can span pages.
func makeOgg(packets [][]byte, pageSize int) []byte {
	var lacing []byte
	var body []byte
	for _, p := range packets {
		for n := len(p); ; n -= 255 {
			if n < 255 {
				lacing = append(lacing, byte(n))
				break
			}
			lacing = append(lacing, 255)
		}
		body = append(body, p...)
	}
	var out []byte
	cont := false
	for seq := uint32(0); len(lacing) > 0; seq++ {
		var segs []byte
		n := 0
		for len(lacing) > 0 && len(segs) < 255 && n+int(lacing[0]) <= pageSize {
			n += int(lacing[0])
			segs = append(segs, lacing[0])
			lacing = lacing[1:]
		}
		page := make([]byte, 27, 27+len(segs)+n)
		copy(page, "OggS")
		if cont {
			page[5] = 1
		}
		binary.LittleEndian.PutUint32(page[14:], 0x1234)
		binary.LittleEndian.PutUint32(page[18:], seq)
		page[26] = byte(len(segs))
		page = append(page, segs...)
		page = append(page, body[:n]...)
		body = body[n:]
		binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
		out = append(out, page...)
		cont = segs[len(segs)-1] == 255
	}
	return out
}

func TestParseOgg(t *testing.T) {
	head := append([]byte("OpusHead"), 1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0)
	tags := []byte("OpusTags\x00\x00\x00\x00\x00\x00\x00\x00")
	long := bytes.Repeat([]byte{0xfc}, 700) // spans pages and lacing values of 255
	pkts := [][]byte{head, tags, {0xfc, 1}, long, {0xfc}, {0x18, 1, 2}}
	want := []Frame{
		{[]byte{0xfc, 1}, true, 20 * time.Millisecond},
		{long, true, 20 * time.Millisecond},
		{[]byte{0xfc}, true, 20 * time.Millisecond},
		{[]byte{0x18, 1, 2}, true, 60 * time.Millisecond},
	}
	good := makeOgg(pkts, 300)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 1
	tests := []struct {
		name string
		ogg  []byte
		err  string
	}{
		{"good", good, ""},
		{"one page per packet", makeOgg(pkts, 1000), ""},
		{"demo crc", append(bytes.Clone(demoOgg[:len(demoOgg)-1]), demoOgg[len(demoOgg)-1]^0xff), "checksum"},
		{"crc", corrupt, "checksum"},
		{"not ogg", []byte("RIFF0000000000000000000000000000"), "no Ogg page"},
		{"truncated", good[:len(good)-3], "truncated"},
		{"no head", makeOgg([][]byte{tags, tags, {0xfc}}, 1000), "not OpusHead"},
		{"no tags", makeOgg([][]byte{head, head, {0xfc}}, 1000), "not OpusTags"},
		{"headers only", makeOgg([][]byte{head, tags}, 1000), "no Opus packets"},
		{"bad toc", makeOgg([][]byte{head, tags, {0x03}}, 1000), "frame count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(nil, tt.ogg)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Audio) != len(want) {
				t.Fatalf("%d packets, want %d", len(c.Audio), len(want))
			}
			for i, f := range c.Audio {
				if !bytes.Equal(f.Data, want[i].Data) || f.Keyframe != want[i].Keyframe || f.Duration != want[i].Duration {
					t.Errorf("packet %d: %d bytes %v, want %d bytes %v", i, len(f.Data), f.Duration, len(want[i].Data), want[i].Duration)
				}
			}
		})
	}
}

func TestOpusDuration(t *testing.T) {
	tests := []struct {
		pkt  []byte
		want time.Duration // 0: an error
	}{
		{[]byte{0xfc}, 20 * time.Millisecond},        // CELT FB 20 ms, one frame
		{[]byte{0x80}, 2500 * time.Microsecond},      // CELT NB 2.5 ms
		{[]byte{0x09}, 40 * time.Millisecond},        // SILK NB 20 ms, two equal frames
		{[]byte{0x0a}, 40 * time.Millisecond},        // SILK NB 20 ms, two frames of different sizes
		{[]byte{0x60}, 10 * time.Millisecond},        // hybrid SWB 10 ms
		{[]byte{0x78}, 20 * time.Millisecond},        // hybrid FB 20 ms
		{[]byte{0x73, 0x06}, 60 * time.Millisecond},  // hybrid FB 10 ms, code 3, 6 frames
		{[]byte{0x1b, 0x02}, 120 * time.Millisecond}, // SILK NB 60 ms, code 3, 2 frames
		{[]byte{0x1b, 0x03}, 0},                      // 3 x 60 ms: over 120 ms
		{[]byte{0x1b, 0xc3}, 0},                      // the same with VBR and padding flags
		{[]byte{0x1b, 0x00}, 0},                      // zero frames
		{[]byte{0x03}, 0},                            // code 3 without a count
		{nil, 0},                                     // empty
	}
	for _, tt := range tests {
		got, err := opusDuration(tt.pkt)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("% x: %v, want an error", tt.pkt, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("% x: %v, %v; want %v", tt.pkt, got, err, tt.want)
		}
	}
}
