package dataplane

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// Stage 1 of the fan-out: a Source copies each published packet once into a
// pooled buffer, parses its header once and hands the same buffer to every
// worker that has viewers of the source. The buffer carries one reference per
// worker; a worker keeps its reference in a retain ring (history.go) until
// NACKs can no longer ask for the packet, then releases it to the pool.
// Each packet gets a number, counted per source stream, by which a viewer
// moving between workers knows which packets its old worker sent already.
//
// In queue mode the "workers" are the viewers' own goroutines, and Publish
// copies the packet once per viewer, as Janus does.

// Source is a fan-out point, one per mountpoint. Publish may be called from
// several goroutines (one per ingest stream).
type Source struct {
	p       *Plane
	name    string
	streams int

	closed  atomic.Bool
	dropped atomic.Uint64   // invalid or oversized packets
	nums    []atomic.Uint64 // per stream: number of the last packet published

	mu      sync.Mutex
	refs    map[*worker]int           // viewers of this source per worker
	workers atomic.Pointer[[]*worker] // copy-on-write snapshot of refs' keys
}

// NewSource creates a source with the given number of streams (e.g. 2 for
// audio and video).
func (p *Plane) NewSource(name string, streams int) *Source {
	return &Source{p: p, name: name, streams: streams, refs: map[*worker]int{}, nums: make([]atomic.Uint64, max(streams, 0))}
}

// Name is the name given to NewSource.
func (s *Source) Name() string { return s.name }

// Close stops publishing. Viewers stay attached (they may Switch); they just
// get nothing from this source any more.
func (s *Source) Close() { s.closed.Store(true) }

// Publish fans one plain RTP packet out to every viewer of the source. pkt is
// copied once; the caller may reuse it when Publish returns. keyframe marks
// the first packet of a video keyframe (see IsKeyframe).
func (s *Source) Publish(stream int, pkt []byte, keyframe bool) {
	f, ok := parseRTP(pkt)
	if !ok || len(pkt) > maxPacket {
		s.dropped.Add(1)
		return
	}
	s.publish(stream, pkt, f, keyframe, int64(time.Since(s.p.epoch)))
}

// publish is Publish after parsing (the Ingest parses once for both), for
// a packet that arrived at (nanoseconds since the plane's epoch).
func (s *Source) publish(stream int, pkt []byte, f rtpFields, keyframe bool, at int64) {
	if s.closed.Load() || stream < 0 || stream >= s.streams {
		return
	}
	// Numbered before the snapshot is read: a worker attached after a
	// number was read (rebalance.go) gets every later packet.
	num := s.nums[stream].Add(1)
	ws := s.workers.Load()
	if ws == nil || len(*ws) == 0 {
		return // nobody watches: not even the copy
	}
	if s.p.cfg.Mode == ModeQueue {
		for _, w := range *ws { // a copy per viewer, as Janus does
			s.send(w, s.copyPacket(pkt, f, keyframe, stream, num, at, 1))
		}
		return
	}
	p := s.copyPacket(pkt, f, keyframe, stream, num, at, int32(len(*ws)))
	for _, w := range *ws {
		s.send(w, p)
	}
}

func (s *Source) copyPacket(pkt []byte, f rtpFields, key bool, stream int, num uint64, at int64, refs int32) *packet {
	p := getPacket()
	p.n = copy(p.buf[:], pkt)
	p.f = f
	p.key = key
	p.stream = stream
	p.num = num
	p.src = s
	p.at = at
	p.refs.Store(refs)
	return p
}

// send queues p for w, or drops w's reference when w is behind.
func (s *Source) send(w *worker, p *packet) {
	select {
	case w.in <- p:
	default:
		w.st.drops.Add(1)
		p.release()
	}
}

// published returns, per stream, the number of the last packet published.
func (s *Source) published() []uint64 {
	n := make([]uint64, len(s.nums))
	for i := range s.nums {
		n[i] = s.nums[i].Load()
	}
	return n
}

// attach and detach keep the snapshot of workers that have viewers of s.
// They run on the control path only.
func (s *Source) attach(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[w]++
	if s.refs[w] == 1 {
		s.publishWorkers()
	}
}

func (s *Source) detach(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[w]--
	if s.refs[w] <= 0 {
		delete(s.refs, w)
		s.publishWorkers()
	}
}

func (s *Source) publishWorkers() {
	ws := make([]*worker, 0, len(s.refs))
	for w := range s.refs {
		ws = append(ws, w)
	}
	s.workers.Store(&ws)
}

// packet is one published RTP packet, shared read-only by every worker.
type packet struct {
	refs   atomic.Int32
	n      int
	f      rtpFields
	key    bool
	stream int
	num    uint64 // in its source stream, from 1
	src    *Source
	at     int64 // arrival, nanoseconds since the plane's epoch (monotonic)
	buf    [maxPacket]byte
}

// freePackets recycles packet buffers. A channel rather than a sync.Pool:
// it is not emptied by every GC, and the race detector does not randomise it,
// so "no allocation per packet" holds and can be tested in both modes.
var freePackets = make(chan *packet, 8192)

func getPacket() *packet {
	select {
	case p := <-freePackets:
		return p
	default:
		return new(packet)
	}
}

func (p *packet) release() {
	if p.refs.Add(-1) == 0 {
		p.src = nil
		select {
		case freePackets <- p:
		default: // enough spare buffers: let the GC have it
		}
	}
}

// payload is the RTP payload with its padding, as it is copied to viewers.
func (p *packet) body() []byte { return p.buf[p.f.payload:p.n] }

// csrc is the CSRC list, kept as is in the output.
func (p *packet) csrc() []byte { return p.buf[12 : 12+4*p.f.cc] }

// rtpFields are the header fields the data plane reads, parsed once.
type rtpFields struct {
	ssrc    uint32
	ts      uint32
	seq     uint16
	pt      uint8
	marker  bool
	padding bool
	cc      int
	payload int // offset of the payload (after CSRCs and extensions)
	octets  int // payload length without padding (RFC 3550 octet count)
}

// parseRTP validates an RTP packet (version 2, lengths of CSRCs, extension
// and padding) and finds its payload.
func parseRTP(b []byte) (rtpFields, bool) {
	var f rtpFields
	if len(b) < 12 || b[0]>>6 != 2 {
		return f, false
	}
	f.padding = b[0]&0x20 != 0
	f.cc = int(b[0] & 0x0f)
	f.marker = b[1]&0x80 != 0
	f.pt = b[1] & 0x7f
	f.seq = binary.BigEndian.Uint16(b[2:])
	f.ts = binary.BigEndian.Uint32(b[4:])
	f.ssrc = binary.BigEndian.Uint32(b[8:])
	off := 12 + 4*f.cc
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return f, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if len(b) < off {
		return f, false
	}
	end := len(b)
	if f.padding {
		if end == off {
			return f, false
		}
		pad := int(b[end-1])
		if pad == 0 || pad > end-off {
			return f, false
		}
		end -= pad
	}
	f.payload = off
	f.octets = end - off
	return f, true
}
