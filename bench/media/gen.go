package media

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Packet is one generated RTP packet, header included. Data stays valid
// until its generator's next call.
type Packet struct {
	Data    []byte
	stampAt int // offset of the stamp in Data
}

// SetSendTime writes the send time (Unix nanoseconds) into the packet's
// stamp; call it right before the packet goes to the socket.
func (p Packet) SetSendTime(unixNano int64) {
	binary.BigEndian.PutUint64(p.Data[p.stampAt+4:], uint64(unixNano))
}

// Frame is one video frame's packets, in sending order.
type Frame struct {
	Packets   []Packet // valid until the generator's next call
	Key       bool
	Timestamp uint32 // RTP timestamp of every packet of the frame
}

// VideoGen produces VP8 RTP (PT 96, 90 kHz) frame by frame, the same
// sequence for a given model and seed. Sequence numbers, timestamps and
// picture IDs start at seeded random values, as RFC 3550 asks, and run on
// without gaps. It allocates nothing once its buffer has grown to the
// largest frame.
type VideoGen struct {
	m     VideoModel
	sz    *sizer
	fill  *rand.Rand
	ssrc  uint32
	seq   uint16
	ts0   uint32
	pic   uint16
	count uint32
	buf   []byte
	noise []byte // the filler under a first packet's headers and stamp
	pkts  []Packet
}

// firstHeaders spans what a frame's first packet writes after the RTP
// header at most: descriptor, keyframe header, stamp.
const firstHeaders = rtpHeader + vp8DescriptorLen + vp8TagLen + vp8KeyHeaderLen + StampSize

// NewVideoGen returns a generator for the model with the given SSRC.
func NewVideoGen(m VideoModel, ssrc uint32, seed uint64) (*VideoGen, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("new video generator: %w", err)
	}
	r := rand.New(rand.NewPCG(seed, 0x76696465)) // "vide": start values, filler
	g := &VideoGen{m: m, sz: newSizer(m, seed), fill: r, ssrc: ssrc,
		seq: uint16(r.Uint32()), ts0: r.Uint32(), pic: uint16(r.Uint32()) & 0x7fff}
	// Room for the largest keyframe the jitter allows, so Next does not
	// allocate in steady state.
	largest := int(math.Ceil(m.deltaBytes()*m.KeyFactor*(1+m.Jitter))) + 1
	g.grow((largest/(m.MaxPacket-rtpHeader) + 1) * m.MaxPacket)
	return g, nil
}

// grow makes the frame buffer at least n bytes, filled with noise that
// stands in for entropy-coded VP8 data (headers overwrite their part).
func (g *VideoGen) grow(n int) {
	if len(g.buf) >= n {
		return
	}
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.fill.Uint64())
		copy(b[i:], w[:])
	}
	g.buf = b
	g.noise = slices.Clone(b[:firstHeaders])
}

// Next builds the next frame.
func (g *VideoGen) Next() Frame {
	n := g.sz.frame
	sizes, key := g.sz.next()
	total := 0
	for _, s := range sizes {
		total += s
	}
	g.grow(total)
	ts := g.ts0 + g.m.frameTicks(n)
	// The VP8 frame is what is left after descriptors, stamps and the frame
	// header; its first partition (modes, probabilities) is a fraction of it.
	vp8 := total - len(sizes)*(rtpHeader+vp8DescriptorLen+StampSize) - frameHeaderLen(key)
	g.pkts = g.pkts[:0]
	off := 0
	for i, size := range sizes {
		b := g.buf[off : off+size : off+size]
		off += size
		b[0] = 0x80
		b[1] = VideoPT
		if i == len(sizes)-1 {
			b[1] |= 0x80 // marker: end of frame
		}
		binary.BigEndian.PutUint16(b[2:], g.seq)
		binary.BigEndian.PutUint32(b[4:], ts)
		binary.BigEndian.PutUint32(b[8:], g.ssrc)
		g.seq++
		j := rtpHeader + putDescriptor(b[rtpHeader:], i == 0, g.pic)
		if i == 0 {
			// A keyframe's header and stamp reach further than a delta
			// frame's: put back the filler, so a packet depends only on
			// the seed and its send time, not on the frame before.
			copy(b[j:], g.noise[j:])
			j += putFrameHeader(b[j:], key, vp8/5)
		}
		putStamp(b[j:], g.count)
		g.count++
		g.pkts = append(g.pkts, Packet{Data: b, stampAt: j})
	}
	g.pic = (g.pic + 1) & 0x7fff
	return Frame{Packets: g.pkts, Key: key, Timestamp: ts}
}

// AudioGen produces Opus-like RTP (PT 111, 48 kHz): one packet per Ptime,
// never a marker, the stamp at the start of the payload.
type AudioGen struct {
	m     AudioModel
	rng   *rand.Rand
	ssrc  uint32
	seq   uint16
	ts    uint32
	count uint32
	buf   []byte
}

// NewAudioGen returns a generator for the model with the given SSRC.
func NewAudioGen(m AudioModel, ssrc uint32, seed uint64) (*AudioGen, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("new audio generator: %w", err)
	}
	r := rand.New(rand.NewPCG(seed, 0x61756469)) // "audi"
	g := &AudioGen{m: m, rng: r, ssrc: ssrc, seq: uint16(r.Uint32()), ts: r.Uint32(),
		buf: make([]byte, rtpHeader+m.MaxPayload)}
	for i := range g.buf {
		g.buf[i] = byte(r.Uint32())
	}
	return g, nil
}

// Next builds the next packet.
func (g *AudioGen) Next() Packet {
	size := g.m.MinPayload + g.rng.IntN(g.m.MaxPayload-g.m.MinPayload+1)
	b := g.buf[:rtpHeader+size]
	b[0] = 0x80
	b[1] = AudioPT
	binary.BigEndian.PutUint16(b[2:], g.seq)
	binary.BigEndian.PutUint32(b[4:], g.ts)
	binary.BigEndian.PutUint32(b[8:], g.ssrc)
	putStamp(b[rtpHeader:], g.count)
	g.seq++
	g.ts += g.m.ticks()
	g.count++
	return Packet{Data: b, stampAt: rtpHeader}
}
