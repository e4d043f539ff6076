package main

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// videoModel describes the synthetic stream: one video source at a target
// bitrate, 30 frames a second, a keyframe every GOP frames that is several
// times a delta frame, each frame sent as a burst of full-size packets and a
// shorter last one.
type videoModel struct {
	Bitrate   int     // bits per second of RTP payload
	FPS       int     // frames per second
	GOP       int     // frames from one keyframe to the next
	KeyFactor float64 // keyframe size / delta frame size
	Jitter    float64 // frame sizes vary uniformly by ± this fraction
	MaxPacket int     // full RTP packet, header included
}

const rtpHeader = 12

func defaultModel(bitrate int) videoModel {
	return videoModel{Bitrate: bitrate, FPS: 30, GOP: 60, KeyFactor: 6, Jitter: 0.2, MaxPacket: 1200}
}

// deltaBytes is the mean payload of a delta frame: a GOP's worth of bits
// shared among GOP-1 delta frames and one keyframe KeyFactor times larger.
func (m videoModel) deltaBytes() float64 {
	gopBytes := float64(m.Bitrate) / 8 * float64(m.GOP) / float64(m.FPS)
	return gopBytes / (float64(m.GOP-1) + m.KeyFactor)
}

// packetize splits a frame's payload into RTP packet sizes: full packets,
// then the remainder.
func (m videoModel) packetize(payload int, sizes []int) []int {
	full := m.MaxPacket - rtpHeader
	for payload > full {
		sizes = append(sizes, m.MaxPacket)
		payload -= full
	}
	return append(sizes, rtpHeader+max(payload, 1))
}

// videoGen produces the stream's RTP packets frame by frame, the same
// sequence for a given seed.
type videoGen struct {
	m     videoModel
	rng   *rand.Rand
	frame int
	seq   uint16
	ssrc  uint32
	sizes []int
	buf   []byte
}

func newVideoGen(m videoModel, seed uint64) *videoGen {
	g := &videoGen{m: m, rng: rand.New(rand.NewPCG(seed, 0x5350574c)), ssrc: 0x5350574c, buf: make([]byte, m.MaxPacket)}
	for i := range g.buf {
		g.buf[i] = byte(i * 7)
	}
	return g
}

// next returns the packet sizes of the next frame and whether it is a keyframe.
func (g *videoGen) next() ([]int, bool) {
	key := g.frame%g.m.GOP == 0
	size := g.m.deltaBytes()
	if key {
		size *= g.m.KeyFactor
	}
	size *= 1 + g.m.Jitter*(2*g.rng.Float64()-1)
	g.sizes = g.m.packetize(int(math.Round(size)), g.sizes[:0])
	g.frame++
	return g.sizes, key
}

// packet writes the RTP packet of the given size in the current frame into
// the generator's buffer (valid until the next call) and returns it.
func (g *videoGen) packet(size int, last bool) []byte {
	b := g.buf[:size]
	b[0] = 0x80
	b[1] = 96
	if last {
		b[1] |= 0x80 // marker: end of frame
	}
	binary.BigEndian.PutUint16(b[2:], g.seq)
	binary.BigEndian.PutUint32(b[4:], uint32(g.frame-1)*uint32(90000/g.m.FPS))
	binary.BigEndian.PutUint32(b[8:], g.ssrc)
	g.seq++
	return b
}

// perViewer is what one viewer receives per second on average: packets and
// RTP bytes, measured over whole GOPs of the generator itself.
func (m videoModel) perViewer() (pps, bytesPerSec float64) {
	g := newVideoGen(m, 1)
	var pkts, bytes int
	const gops = 20
	for range gops * m.GOP {
		sizes, _ := g.next()
		pkts += len(sizes)
		for _, s := range sizes {
			bytes += s
		}
	}
	secs := float64(gops*m.GOP) / float64(m.FPS)
	return float64(pkts) / secs, float64(bytes) / secs
}
