package fileloop

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Loop plays a clip forever as two RTP streams, paced in real time.
//
// Each pass of Run's loop:
//
//	pick the stream whose next frame is due first
//	-> wait for its absolute deadline (start + pass*period + offset in the clip)
//	-> packetize the frame into one reused buffer (VP8: RFC 7741, Opus: RFC 7587)
//	-> call the Publisher once per packet
//
// Deadlines are computed from one start time, never from the previous
// send, so pacing does not drift. RTP timestamps come from the position in
// the clip, so they stay continuous across passes: the next pass starts one
// period after the previous one, and sequence numbers just go on.
type Loop struct {
	clip   *Clip
	pub    Publisher
	period time.Duration
	mtu    int
	err    error // a configuration error, reported by Run
	tracks [2]track
	buf    []byte
	picID  uint16 // VP8 picture ID, 15 bits, continuous across passes

	running   atomic.Bool
	loops     atomic.Uint64
	late      atomic.Uint64
	keyframes atomic.Uint64
}

// Stream numbers given to the Publisher.
const (
	StreamVideo = 0
	StreamAudio = 1
)

// RTP clock rates of the two streams.
const (
	VideoClockRate = 90000
	AudioClockRate = 48000
)

// maxLag is how far behind its deadlines Run may fall (a stalled publisher,
// a suspended process) before it restarts its clock instead of bursting out
// everything it missed.
const maxLag = 500 * time.Millisecond

// Publisher receives each RTP packet: stream 0 is video, 1 is audio. pkt is
// a full RTP packet (12-byte header, then payload), valid only during the
// call. keyframe is true on the first packet of a VP8 key frame (where a new
// viewer can start) and on every Opus packet.
type Publisher func(stream int, pkt []byte, keyframe bool)

// Options configure a Loop; zero values mean the defaults.
type Options struct {
	VideoPT, AudioPT     uint8  // default 96, 111
	MTU                  int    // max RTP packet size, default 1200
	SSRCVideo, SSRCAudio uint32 // 0: random
}

// LoopStats counts what a Loop has published. Bytes are whole RTP packets.
type LoopStats struct {
	VideoPackets, VideoBytes uint64
	AudioPackets, AudioBytes uint64
	Loops                    uint64 // passes of the whole clip completed
	Late                     uint64 // times Run fell over 500 ms behind and restarted its clock
}

type track struct {
	frames      []Frame
	offsets     []time.Duration // start of each frame in a pass
	ticks       []uint32        // the same in RTP clock ticks
	periodTicks uint32
	pt          uint8
	ssrc        uint32
	seq         uint16
	tsBase      uint32
	marker      bool  // set on the next packet (audio: the first one, RFC 7587)
	next        int   // frame to send next
	pass        int64 // passes completed

	packets, bytes atomic.Uint64
}

// NewLoop prepares c to be played by Run; c must not change afterwards.
func NewLoop(c *Clip, o Options, pub Publisher) *Loop {
	if o.VideoPT == 0 {
		o.VideoPT = 96
	}
	if o.AudioPT == 0 {
		o.AudioPT = 111
	}
	if o.MTU == 0 {
		o.MTU = 1200
	}
	l := &Loop{clip: c, pub: pub, mtu: o.MTU, picID: uint16(rand.Uint32N(1 << 15))}
	switch {
	case c == nil || len(c.Video)+len(c.Audio) == 0:
		l.err = errors.New("fileloop: empty clip")
		return l
	case pub == nil:
		l.err = errors.New("fileloop: nil publisher")
		return l
	case o.MTU < 12+4+16 || o.MTU > 65535:
		l.err = fmt.Errorf("fileloop: MTU %d out of range", o.MTU)
		return l
	case c.Duration() <= 0:
		l.err = errors.New("fileloop: clip lasts no time")
		return l
	}
	l.period = c.Duration()
	l.tracks[StreamVideo].init(c.Video, VideoClockRate, o.VideoPT, o.SSRCVideo, l.period)
	l.tracks[StreamAudio].init(c.Audio, AudioClockRate, o.AudioPT, o.SSRCAudio, l.period)
	l.tracks[StreamAudio].marker = true

	size := o.MTU
	for _, f := range c.Audio {
		// Opus has no fragmentation: a packet above the MTU goes out whole.
		size = max(size, 12+len(f.Data))
	}
	l.buf = make([]byte, size)
	return l
}

func (t *track) init(frames []Frame, clock uint32, pt uint8, ssrc uint32, period time.Duration) {
	for ssrc == 0 {
		ssrc = rand.Uint32()
	}
	t.frames = frames
	t.offsets = make([]time.Duration, len(frames))
	t.ticks = make([]uint32, len(frames))
	t.periodTicks = toTicks(period, clock)
	t.pt = pt
	t.ssrc = ssrc
	t.seq = uint16(rand.Uint32())
	t.tsBase = rand.Uint32() // random starts, as RFC 3550 asks
	var at time.Duration
	for i, f := range frames {
		t.offsets[i] = at
		t.ticks[i] = toTicks(at, clock)
		at += f.Duration
	}
}

// toTicks rounds d to the nearest clock tick without overflowing for long d.
func toTicks(d time.Duration, clock uint32) uint32 {
	s, frac := d/time.Second, d%time.Second
	return uint32(int64(s)*int64(clock) + (int64(frac)*int64(clock)+int64(time.Second)/2)/int64(time.Second))
}

// SSRC returns the SSRC of stream 0 (video) or 1 (audio).
func (l *Loop) SSRC(stream int) uint32 { return l.tracks[stream].ssrc }

// RequestKeyframe records that a viewer asked for a key frame (PLI/FIR).
// A file cannot make one on demand: the clip has a key frame every 30
// frames, so the viewer gets one within a second anyway. The count is for
// stats and tests.
func (l *Loop) RequestKeyframe() { l.keyframes.Add(1) }

// KeyframeRequests counts RequestKeyframe calls.
func (l *Loop) KeyframeRequests() uint64 { return l.keyframes.Load() }

// Stats returns the counters; safe to call while Run runs.
func (l *Loop) Stats() LoopStats {
	v, a := &l.tracks[StreamVideo], &l.tracks[StreamAudio]
	return LoopStats{
		VideoPackets: v.packets.Load(), VideoBytes: v.bytes.Load(),
		AudioPackets: a.packets.Load(), AudioBytes: a.bytes.Load(),
		Loops: l.loops.Load(),
		Late:  l.late.Load(),
	}
}

// Run publishes the clip in real time until ctx ends, then returns
// ctx.Err(). It calls the Publisher from its own goroutine only. After Run
// returns, another Run resumes where it stopped (same SSRCs, continuous
// sequence numbers and timestamps); two at once is an error.
func (l *Loop) Run(ctx context.Context) error {
	if l.err != nil {
		return l.err
	}
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("fileloop: Run is already running")
	}
	defer l.running.Store(false)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// The clock starts so that the next frame is due now.
	t := l.nextDue()
	start := time.Now().Add(-l.due(t))
	for {
		t = l.nextDue()
		wait := time.Until(start.Add(l.due(t)))
		switch {
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		case wait < -maxLag:
			start = start.Add(-wait)
			l.late.Add(1)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		l.send(t)
	}
}

// nextDue returns the stream whose next frame is due first (video on a tie).
func (l *Loop) nextDue() int {
	v, a := &l.tracks[StreamVideo], &l.tracks[StreamAudio]
	switch {
	case len(v.frames) == 0:
		return StreamAudio
	case len(a.frames) == 0:
		return StreamVideo
	case l.due(StreamAudio) < l.due(StreamVideo):
		return StreamAudio
	}
	return StreamVideo
}

// due is when stream s's next frame goes out, from the start of the clock.
func (l *Loop) due(s int) time.Duration {
	t := &l.tracks[s]
	return time.Duration(t.pass)*l.period + t.offsets[t.next]
}

// send packetizes and publishes the next frame of stream s.
func (l *Loop) send(s int) {
	t := &l.tracks[s]
	f := t.frames[t.next]
	ts := t.tsBase + uint32(t.pass)*t.periodTicks + t.ticks[t.next]
	if s == StreamVideo {
		l.sendVP8(t, f, ts)
	} else {
		pkt := l.buf[:12+len(f.Data)]
		t.header(pkt, ts, t.marker)
		t.marker = false
		copy(pkt[12:], f.Data)
		l.publish(s, t, pkt, true)
	}

	t.next++
	if t.next == len(t.frames) {
		t.next = 0
		t.pass++
		done := t.pass
		if o := &l.tracks[1-s]; len(o.frames) > 0 {
			done = min(done, o.pass)
		}
		l.loops.Store(uint64(done))
	}
}

// sendVP8 splits one frame into packets of at most the MTU, each with a
// 4-byte VP8 payload descriptor (RFC 7741 4.2): X=1, S=1 on the first
// packet (partition 0 start), I=1 with a 15-bit picture ID. The marker bit
// is set on the frame's last packet.
func (l *Loop) sendVP8(t *track, f Frame, ts uint32) {
	const desc = 4
	room := l.mtu - 12 - desc
	data := f.Data
	for first := true; len(data) > 0; first = false {
		n := min(len(data), room)
		pkt := l.buf[:12+desc+n]
		t.header(pkt, ts, n == len(data))
		pkt[12] = 0x80 // X: extension byte follows
		if first {
			pkt[12] |= 0x10 // S: start of partition 0
		}
		pkt[13] = 0x80                                       // I: picture ID present
		binary.BigEndian.PutUint16(pkt[14:], 0x8000|l.picID) // M: 15-bit ID
		copy(pkt[12+desc:], data[:n])
		data = data[n:]
		l.publish(StreamVideo, t, pkt, first && f.Keyframe)
	}
	l.picID = (l.picID + 1) & 0x7fff
}

// header writes a 12-byte RTP header (version 2, no CSRC, no extension)
// and consumes one sequence number.
func (t *track) header(pkt []byte, ts uint32, marker bool) {
	pkt[0] = 0x80
	pkt[1] = t.pt & 0x7f
	if marker {
		pkt[1] |= 0x80
	}
	binary.BigEndian.PutUint16(pkt[2:], t.seq)
	binary.BigEndian.PutUint32(pkt[4:], ts)
	binary.BigEndian.PutUint32(pkt[8:], t.ssrc)
	t.seq++
}

func (l *Loop) publish(s int, t *track, pkt []byte, keyframe bool) {
	t.packets.Add(1)
	t.bytes.Add(uint64(len(pkt)))
	l.pub(s, pkt, keyframe)
}
