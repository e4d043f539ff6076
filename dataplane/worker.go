package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Stage 2 of the fan-out, one goroutine per worker:
//
//	collect  take published packets from w.in, up to Batch of them or until
//	         FlushInterval has passed since the first one
//	fan out  for each packet, for each of this worker's viewers of its source
//	         stream: rewrite the header (SSRC, PT, sequence and timestamp
//	         offsets), encrypt into the worker's scratch space, note it in the
//	         stream's history, queue a message on the viewer's socket
//	send     sendmmsg every queued message (sock_linux.go), many viewers per
//	         call; flush early when the scratch space or a socket's message
//	         array is full
//	control  between batches, apply control operations (add, remove, switch,
//	         pause, enable, path, retransmit, join), one at a time
//
// Nothing on the per-packet, per-viewer path allocates, locks or looks up a
// map: a source stream's subscribers are resolved into a slice when a viewer
// is added or switched.

type worker struct {
	p     *Plane
	id    int
	in    chan *packet
	ctl   chan *op
	timer *time.Timer

	batch   []*packet
	sources map[*Source]*srcState
	socks   map[netip.AddrPort]*wsock
	socklst []*wsock
	scratch []byte
	off     int   // used bytes of scratch
	now     int64 // wallclock of the current batch, unix ns
	hdr     rtp.Header

	viewers atomic.Int64
	packets atomic.Uint64
	bytes   atomic.Uint64
	calls   atomic.Uint64
	errors  atomic.Uint64
	drops   atomic.Uint64
}

// srcState is a worker's view of one source: the outgoing streams fed by each
// source stream, and the packets it retains for NACKs.
type srcState struct {
	src     *Source
	subs    [][]*vstream
	rings   []*retainRing
	viewers int
}

func newWorker(p *Plane, id int) *worker {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &worker{
		p:       p,
		id:      id,
		in:      make(chan *packet, inQueue),
		ctl:     make(chan *op),
		timer:   t,
		batch:   make([]*packet, 0, p.cfg.Batch),
		sources: map[*Source]*srcState{},
		socks:   map[netip.AddrPort]*wsock{},
		scratch: make([]byte, maxMsgs*maxOut),
		hdr:     rtp.Header{CSRC: make([]uint32, 0, 15)},
	}
}

func (w *worker) run() {
	defer w.shutdown()
	for {
		select {
		case <-w.p.quit:
			return
		case o := <-w.ctl:
			o.done <- w.apply(o)
			continue
		case pk := <-w.in:
			w.batch = append(w.batch[:0], pk)
		}
		w.collect()
		w.now = time.Now().UnixNano()
		for i, pk := range w.batch {
			w.fanout(pk)
			w.batch[i] = nil
		}
		w.flush()
	}
}

// collect fills the batch up to Batch packets, waiting at most FlushInterval
// after the first one.
func (w *worker) collect() {
	max := cap(w.batch)
queued:
	for len(w.batch) < max {
		select {
		case pk := <-w.in:
			w.batch = append(w.batch, pk)
		default:
			break queued
		}
	}
	if len(w.batch) == max {
		return
	}
	w.timer.Reset(w.p.cfg.FlushInterval)
	defer w.timer.Stop()
	for len(w.batch) < max {
		select {
		case pk := <-w.in:
			w.batch = append(w.batch, pk)
		case <-w.timer.C:
			return
		case <-w.p.quit:
			return
		}
	}
}

// fanout sends one packet to every viewer of its source stream on this worker.
func (w *worker) fanout(pk *packet) {
	st := w.sources[pk.src]
	if st == nil {
		pk.release() // the last viewer left after Publish took its snapshot
		return
	}
	ring := st.rings[pk.stream]
	pos := ring.push(pk)
	for _, vs := range st.subs[pk.stream] {
		v := vs.v
		if v.paused || !vs.enabled {
			continue
		}
		seq, ts, ok := vs.rw.next(pk.f.ssrc, pk.f.seq, pk.f.ts, pk.at, pk.key)
		if !ok {
			continue
		}
		if !w.send(v, vs, pk, seq, ts) {
			continue
		}
		vs.hist[seq&uint16(len(vs.hist)-1)] = histEntry{ring: ring, pos: pos, seq: seq, ts: ts, used: true}
		vs.ctr.sent(pk.f.octets, ts, w.now)
	}
}

// send builds the viewer's packet in the scratch space, encrypts it in place
// and queues it on the viewer's socket. It reports whether it was queued.
func (w *worker) send(v *Viewer, vs *vstream, pk *packet, seq uint16, ts uint32) bool {
	s := v.sock
	if s == nil {
		w.errors.Add(1)
		return false
	}
	if w.off+maxOut > len(w.scratch) || s.full() {
		w.flush()
	}
	body := pk.body()
	hl := 12 + 4*pk.f.cc
	buf := w.scratch[w.off : w.off+hl+len(body) : w.off+maxOut]
	b0 := byte(0x80) | byte(pk.f.cc)
	if pk.f.padding {
		b0 |= 0x20
	}
	buf[0] = b0 // X bit off: header extensions are stripped
	buf[1] = vs.pt
	if pk.f.marker {
		buf[1] |= 0x80
	}
	binary.BigEndian.PutUint16(buf[2:], seq)
	binary.BigEndian.PutUint32(buf[4:], ts)
	binary.BigEndian.PutUint32(buf[8:], vs.ssrc)
	copy(buf[12:hl], pk.csrc())
	copy(buf[hl:], body)
	out, err := v.ctx.EncryptRTP(buf[:0], buf, &w.hdr)
	if err != nil {
		w.errors.Add(1)
		return false
	}
	w.off += len(out)
	s.add(out, &v.sa)
	return true
}

// flush sends everything queued on every socket.
func (w *worker) flush() {
	for _, s := range w.socklst {
		if s.n > 0 {
			s.flush(w)
		}
	}
	w.off = 0
}

// shutdown releases every packet the worker still holds.
func (w *worker) shutdown() {
	for {
		select {
		case pk := <-w.in:
			pk.release()
		default:
			for _, st := range w.sources {
				for _, r := range st.rings {
					r.close()
				}
			}
			w.sources = nil
			return
		}
	}
}
