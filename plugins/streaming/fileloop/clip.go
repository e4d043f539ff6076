// Package fileloop is a media source for the Streaming plugin that plays a
// short VP8 + Opus clip forever, as RTP, in real time.
//
// The project's demo clip (made by scripts/make-demo-clip.sh) is embedded, so
// a server with no camera and no RTP source still has something to show:
//
//	clip/demo.ivf -> Demo() -> Clip{Video, Audio} -> NewLoop -> Run -> Publisher(stream, rtp)
//
// Parsing happens once; Run only packetizes into one reused buffer and paces.
package fileloop

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

//go:embed clip/demo.ivf
var demoIVF []byte

//go:embed clip/demo.ogg
var demoOgg []byte

// Clip is a parsed clip: whole frames, in order, ready to packetize.
type Clip struct {
	Video         []Frame // VP8 frames in order
	Audio         []Frame // Opus packets in order
	Width, Height int
	FPS           int
}

// Frame is one VP8 frame or one Opus packet.
type Frame struct {
	Data     []byte
	Keyframe bool // VP8 key frame; always true for Opus (every packet decodes alone)
	Duration time.Duration
}

// Duration is how long one pass of the clip lasts: the longer of its streams.
func (c *Clip) Duration() time.Duration {
	return max(total(c.Video), total(c.Audio))
}

func total(fs []Frame) time.Duration {
	var d time.Duration
	for _, f := range fs {
		d += f.Duration
	}
	return d
}

var demo = sync.OnceValues(func() (*Clip, error) {
	c, err := Parse(demoIVF, demoOgg)
	if err != nil {
		return nil, fmt.Errorf("fileloop: embedded demo clip: %w", err)
	}
	return c, nil
})

// Demo returns the embedded demo clip, parsed on first use and shared after:
// callers must not modify it.
func Demo() (*Clip, error) { return demo() }

// Load reads a clip from an IVF (VP8) file and an Ogg (Opus) file. Either
// path may be "" for a clip with one stream, not both.
func Load(ivfPath, oggPath string) (*Clip, error) {
	var ivf, ogg []byte
	var err error
	if ivfPath != "" {
		if ivf, err = os.ReadFile(ivfPath); err != nil {
			return nil, fmt.Errorf("fileloop: %w", err)
		}
	}
	if oggPath != "" {
		if ogg, err = os.ReadFile(oggPath); err != nil {
			return nil, fmt.Errorf("fileloop: %w", err)
		}
	}
	if ivfPath == "" && oggPath == "" {
		return nil, errors.New("fileloop: no video and no audio file")
	}
	return Parse(ivf, ogg)
}

// Parse builds a clip from the contents of an IVF file and an Ogg Opus file;
// a nil slice means that stream is absent. Frame data alias the inputs.
func Parse(ivf, ogg []byte) (*Clip, error) {
	c := &Clip{}
	if ivf != nil {
		if err := parseIVF(c, ivf); err != nil {
			return nil, fmt.Errorf("ivf: %w", err)
		}
	}
	if ogg != nil {
		var err error
		if c.Audio, err = parseOggOpus(ogg); err != nil {
			return nil, fmt.Errorf("ogg: %w", err)
		}
	}
	if len(c.Video) == 0 && len(c.Audio) == 0 {
		return nil, errors.New("fileloop: clip has no frames")
	}
	return c, nil
}

// parseIVF reads the IVF container (a 32-byte file header, then a 12-byte
// header per frame: size, 64-bit pts in time-base units).
func parseIVF(c *Clip, b []byte) error {
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		return errors.New("not an IVF file")
	}
	if fourcc := string(b[8:12]); fourcc != "VP80" {
		return fmt.Errorf("codec %q, want VP80", fourcc)
	}
	hdrLen := int(binary.LittleEndian.Uint16(b[6:]))
	rate := binary.LittleEndian.Uint32(b[16:]) // time base = scale/rate seconds
	scale := binary.LittleEndian.Uint32(b[20:])
	if hdrLen < 32 || hdrLen > len(b) || rate == 0 || scale == 0 {
		return fmt.Errorf("bad header (length %d, time base %d/%d)", hdrLen, scale, rate)
	}
	c.Width = int(binary.LittleEndian.Uint16(b[12:]))
	c.Height = int(binary.LittleEndian.Uint16(b[14:]))
	tick := func(pts uint64) time.Duration {
		return time.Duration(pts * uint64(scale) * uint64(time.Second) / uint64(rate))
	}

	var pts []uint64
	for off := hdrLen; off < len(b); {
		if len(b)-off < 12 {
			return fmt.Errorf("frame %d: truncated header", len(c.Video))
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		p := binary.LittleEndian.Uint64(b[off+4:])
		off += 12
		if n == 0 || n > len(b)-off {
			return fmt.Errorf("frame %d: size %d with %d bytes left", len(c.Video), n, len(b)-off)
		}
		data := b[off : off+n : off+n]
		off += n
		if len(pts) > 0 && p <= pts[len(pts)-1] {
			return fmt.Errorf("frame %d: pts %d not after %d", len(c.Video), p, pts[len(pts)-1])
		}
		// VP8 frame tag (RFC 6386 9.1): bit 0 is 0 for a key frame.
		c.Video = append(c.Video, Frame{Data: data, Keyframe: data[0]&1 == 0})
		pts = append(pts, p)
	}
	if len(c.Video) == 0 {
		return errors.New("no frames")
	}
	// A frame lasts until the next one; the last one as long as the one before.
	for i := range c.Video {
		if i+1 < len(pts) {
			c.Video[i].Duration = tick(pts[i+1]) - tick(pts[i])
		} else if i > 0 {
			c.Video[i].Duration = c.Video[i-1].Duration
		} else {
			c.Video[i].Duration = tick(1)
		}
	}
	c.FPS = int((time.Duration(len(c.Video))*time.Second + total(c.Video)/2) / total(c.Video))
	return nil
}

// parseOggOpus returns the Opus packets of the first logical stream of an
// Ogg file (RFC 7845), without the OpusHead and OpusTags header packets.
func parseOggOpus(b []byte) ([]Frame, error) {
	var (
		frames  []Frame
		serial  uint32
		pending []byte // a packet continued on the next page
		npkt    int    // packets seen, headers included
	)
	for off, page := 0, 0; off < len(b); page++ {
		if len(b)-off < 27 || string(b[off:off+4]) != "OggS" || b[off+4] != 0 {
			return nil, fmt.Errorf("page %d at %d: no Ogg page header", page, off)
		}
		h := b[off:]
		nseg := int(h[26])
		if len(h) < 27+nseg {
			return nil, fmt.Errorf("page %d: truncated segment table", page)
		}
		lacing := h[27 : 27+nseg]
		size := 27 + nseg
		for _, l := range lacing {
			size += int(l)
		}
		if size > len(h) {
			return nil, fmt.Errorf("page %d: truncated (%d of %d bytes)", page, len(h), size)
		}
		if got, want := oggCRC(h[:size]), binary.LittleEndian.Uint32(h[22:]); got != want {
			return nil, fmt.Errorf("page %d: checksum %08x, want %08x", page, got, want)
		}
		off += size
		s := binary.LittleEndian.Uint32(h[14:])
		if page == 0 {
			serial = s
		} else if s != serial {
			continue // another logical stream: not ours
		}
		if h[5]&1 == 0 && pending != nil {
			return nil, fmt.Errorf("page %d: continued packet not continued", page)
		}
		body := h[27+nseg : size]
		for _, l := range lacing {
			pending = append(pending, body[:l]...)
			body = body[l:]
			if l == 255 {
				continue // lacing value 255: the packet goes on
			}
			pkt := pending
			pending = nil
			npkt++
			switch {
			case npkt == 1:
				if len(pkt) < 19 || string(pkt[:8]) != "OpusHead" {
					return nil, errors.New("first packet is not OpusHead")
				}
			case npkt == 2:
				if !bytes.HasPrefix(pkt, []byte("OpusTags")) {
					return nil, errors.New("second packet is not OpusTags")
				}
			default:
				d, err := opusDuration(pkt)
				if err != nil {
					return nil, fmt.Errorf("packet %d: %w", len(frames), err)
				}
				frames = append(frames, Frame{Data: pkt, Keyframe: true, Duration: d})
			}
		}
	}
	if len(frames) == 0 {
		return nil, errors.New("no Opus packets")
	}
	return frames, nil
}

// opusDuration reads a packet's length from its TOC byte (RFC 6716 3.1).
func opusDuration(p []byte) (time.Duration, error) {
	if len(p) == 0 {
		return 0, errors.New("empty Opus packet")
	}
	cfg := p[0] >> 3
	var frame time.Duration
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = [...]time.Duration{10, 20, 40, 60}[cfg%4] * time.Millisecond
	case cfg < 16: // hybrid: 10, 20 ms
		frame = [...]time.Duration{10, 20}[cfg%2] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [...]time.Duration{2500, 5000, 10000, 20000}[cfg%4] * time.Microsecond
	}
	n := 1
	switch p[0] & 3 {
	case 1, 2:
		n = 2
	case 3:
		if len(p) < 2 {
			return 0, errors.New("code 3 Opus packet without frame count")
		}
		n = int(p[1] & 0x3f)
	}
	d := time.Duration(n) * frame
	if d == 0 || d > 120*time.Millisecond {
		return 0, fmt.Errorf("packet of %d frames lasts %v, want 2.5 to 120 ms", n, d)
	}
	return d, nil
}

var oggTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// oggCRC is the page checksum: CRC-32, polynomial 0x04c11db7, not
// reflected, zero start, computed with the checksum field zeroed.
func oggCRC(page []byte) uint32 {
	var crc uint32
	for i, v := range page {
		if i >= 22 && i < 26 {
			v = 0
		}
		crc = crc<<8 ^ oggTable[byte(crc>>24)^v]
	}
	return crc
}
