// Package media is the benchmark's media source: synthetic but well-formed
// VP8 video and Opus-like audio RTP, each packet carrying a stamp (magic,
// send time, per-stream counter) that sample viewers read back after SRTP
// decryption to measure loss, jitter and latency.
//
// The flow, top to bottom:
//
//	model.go   how big frames and audio packets are, and the rates that follow
//	gen.go     VideoGen / AudioGen: RTP packets frame by frame, stamp slot reserved
//	vp8.go     RFC 7741 payload descriptor and VP8 frame header bytes
//	stamp.go   the stamp's layout, written at send time, parsed by viewers
//	source.go  Source: both streams over UDP on an absolute real-time schedule
//	sched_*.go how the schedule waits (nanosleep on Linux) and its real-time option
package media

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// RTP constants of the generated streams.
const (
	VideoPT    = 96    // VP8
	VideoClock = 90000 // Hz
	AudioPT    = 111   // Opus
	AudioClock = 48000 // Hz

	// DefaultBitrate is the video bitrate of a zero VideoModel.
	DefaultBitrate = 2_000_000

	// Width and Height are what keyframe headers announce.
	Width  = 640
	Height = 360

	rtpHeader = 12
)

// VideoModel describes the synthetic video: frames at FPS, a keyframe every
// GOP frames that is KeyFactor times a delta frame, sizes varying uniformly by
// ± Jitter, each frame sent as full MaxPacket-byte packets and a shorter last
// one. It is bench/dataplane's model, with VP8 headers and stamps inside.
type VideoModel struct {
	Bitrate   int     // bits per second of RTP payload
	FPS       int     // frames per second
	GOP       int     // frames from one keyframe to the next
	KeyFactor float64 // keyframe size / delta frame size
	Jitter    float64 // frame sizes vary uniformly by ± this fraction
	MaxPacket int     // full RTP packet, header included
}

// DefaultVideoModel is the model bench/dataplane uses, at the given bitrate.
func DefaultVideoModel(bitrate int) VideoModel {
	return VideoModel{Bitrate: bitrate, FPS: 30, GOP: 60, KeyFactor: 6, Jitter: 0.2, MaxPacket: 1200}
}

// minMaxPacket leaves room in a full packet for the RTP header, the
// descriptor, a keyframe header and the stamp, with payload to spare.
const minMaxPacket = 64

// Validate reports the first field that makes no sense.
func (m VideoModel) Validate() error {
	switch {
	case m.Bitrate <= 0:
		return fmt.Errorf("media: video bitrate %d: must be positive", m.Bitrate)
	case m.FPS <= 0 || m.FPS > 1000:
		return fmt.Errorf("media: video fps %d: must be 1-1000", m.FPS)
	case m.GOP <= 0:
		return fmt.Errorf("media: video gop %d: must be positive", m.GOP)
	case m.KeyFactor < 1 || math.IsInf(m.KeyFactor, 0):
		return fmt.Errorf("media: video key factor %g: must be at least 1", m.KeyFactor)
	case m.Jitter < 0 || m.Jitter >= 1 || math.IsNaN(m.Jitter):
		return fmt.Errorf("media: video jitter %g: must be in [0, 1)", m.Jitter)
	case m.MaxPacket < minMaxPacket || m.MaxPacket > 65507:
		return fmt.Errorf("media: video max packet %d: must be %d-65507", m.MaxPacket, minMaxPacket)
	}
	return nil
}

// deltaBytes is the mean payload of a delta frame: a GOP's worth of bits
// shared among GOP-1 delta frames and one keyframe KeyFactor times larger.
func (m VideoModel) deltaBytes() float64 {
	gopBytes := float64(m.Bitrate) / 8 * float64(m.GOP) / float64(m.FPS)
	return gopBytes / (float64(m.GOP-1) + m.KeyFactor)
}

// packetize splits a frame's payload into RTP packet sizes: full packets,
// then the remainder, which is at least big enough for its headers and the
// stamp (the first packet's more, since it carries the frame header).
func (m VideoModel) packetize(payload int, key bool, sizes []int) []int {
	full := m.MaxPacket - rtpHeader
	for payload > full {
		sizes = append(sizes, m.MaxPacket)
		payload -= full
	}
	least := vp8DescriptorLen + StampSize
	if len(sizes) == 0 {
		least += frameHeaderLen(key)
	}
	return append(sizes, rtpHeader+max(payload, least))
}

// frameTime is when frame n is due, counted from the stream's start; exact
// for any n, so a schedule built on it never drifts.
func (m VideoModel) frameTime(n int64) time.Duration {
	return time.Duration(n * int64(time.Second) / int64(m.FPS))
}

// frameTicks is frame n's RTP timestamp offset, exact for any n.
func (m VideoModel) frameTicks(n int64) uint32 {
	return uint32(n * VideoClock / int64(m.FPS))
}

// sizer draws frame sizes; PerViewer and VideoGen share it, so a seed gives
// the same frame sizes as bench/dataplane's generator (whose rng it copies),
// except where a tiny last packet is padded to hold its headers.
type sizer struct {
	m     VideoModel
	rng   *rand.Rand
	frame int64
	sizes []int
}

func newSizer(m VideoModel, seed uint64) *sizer {
	return &sizer{m: m, rng: rand.New(rand.NewPCG(seed, 0x5350574c))}
}

// next returns the packet sizes of the next frame (valid until the next
// call) and whether it is a keyframe.
func (s *sizer) next() ([]int, bool) {
	key := s.frame%int64(s.m.GOP) == 0
	size := s.m.deltaBytes()
	if key {
		size *= s.m.KeyFactor
	}
	size *= 1 + s.m.Jitter*(2*s.rng.Float64()-1)
	s.sizes = s.m.packetize(int(math.Round(size)), key, s.sizes[:0])
	s.frame++
	return s.sizes, key
}

// PerViewer is what one viewer receives per second on average: packets and
// RTP bytes (headers included), measured over whole GOPs of the generator
// itself. It returns zeros for a model that does not validate.
func (m VideoModel) PerViewer() (pps, bytesPerSec float64) {
	if m.Validate() != nil {
		return 0, 0
	}
	s := newSizer(m, 1)
	var pkts, bytes int
	const gops = 20
	for range gops * m.GOP {
		sizes, _ := s.next()
		pkts += len(sizes)
		for _, n := range sizes {
			bytes += n
		}
	}
	secs := float64(gops*m.GOP) / float64(m.FPS)
	return float64(pkts) / secs, float64(bytes) / secs
}

// AudioModel describes the Opus-like audio: one packet every Ptime, its
// payload uniformly between MinPayload and MaxPayload bytes, no marker.
type AudioModel struct {
	Ptime      time.Duration
	MinPayload int
	MaxPayload int
}

// DefaultAudioModel is 20 ms packets of 80-160 bytes (about 48 kbit/s).
func DefaultAudioModel() AudioModel {
	return AudioModel{Ptime: 20 * time.Millisecond, MinPayload: 80, MaxPayload: 160}
}

// Validate reports the first field that makes no sense.
func (m AudioModel) Validate() error {
	switch {
	case m.Ptime < time.Millisecond || m.Ptime > time.Second || m.Ptime*AudioClock%time.Second != 0:
		return fmt.Errorf("media: audio ptime %v: must be 1 ms-1 s, whole clock ticks", m.Ptime)
	case m.MinPayload < StampSize:
		return fmt.Errorf("media: audio min payload %d: must hold the %d-byte stamp", m.MinPayload, StampSize)
	case m.MaxPayload < m.MinPayload || m.MaxPayload > 1500:
		return errors.New("media: audio max payload must be between min payload and 1500")
	}
	return nil
}

// ticks is the RTP timestamp step of one packet.
func (m AudioModel) ticks() uint32 {
	return uint32(m.Ptime * AudioClock / time.Second)
}

// PerViewer is what one viewer receives per second on average: packets and
// RTP bytes, headers included.
func (m AudioModel) PerViewer() (pps, bytesPerSec float64) {
	if m.Validate() != nil {
		return 0, 0
	}
	pps = float64(time.Second) / float64(m.Ptime)
	return pps, pps * (rtpHeader + float64(m.MinPayload+m.MaxPayload)/2)
}
