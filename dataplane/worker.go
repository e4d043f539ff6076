package dataplane

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/spillway-rtc/spillway/affinity"
)

// Stage 2 of the fan-out, one goroutine per worker, pinned to its CPU:
//
//	collect  take published packets from w.in, up to Batch of them or until
//	         FlushInterval has passed since the first one; past Batch, the
//	         packets already queued up to the end of a frame, so that a
//	         frame's run is not cut in two datagrams
//	stage    once per packet: keep it in its source stream's retain ring
//	         (history.go) and note it under its source
//	emit     per viewer of each source in the batch, its packets in order:
//	         rewrite the header (rewrite.go), encrypt in place in the
//	         worker's scratch space (protect.go), lay runs of equal-size
//	         packets into GSO datagrams (pack.go), note the history and the
//	         sender-report counters
//	send     sendmmsg every queued datagram (sock_linux.go), many viewers per
//	         call; flush early, between viewers, when the call's bytes
//	         (CallBytes) or a socket's message array would overflow
//	control  between batches, apply control operations (ops.go), one at a
//	         time
//
// Nothing on the per-packet, per-viewer path allocates, locks or looks up a
// map: a source's viewers and a viewer's streams per source stream are
// resolved into slices when a viewer is added, switched or moved.
//
// In queue mode (queue.go) the same code runs as one goroutine per viewer,
// one packet at a time, one sendto per packet.

type worker struct {
	p     *Plane
	id    int
	queue bool          // a queue-mode viewer's goroutine
	stop  chan struct{} // queue mode: closed when the viewer closes
	cpu   atomic.Int32  // pinned CPU, -1 when not pinned
	in    chan *packet
	ctl   chan *op
	timer *time.Timer

	batch   []*packet
	bpos    []uint64    // per batch packet: its position in the retain ring
	touched []*srcState // sources with packets in the batch
	sources map[*Source]*srcState
	socks   map[netip.AddrPort]*wsock
	socklst []*wsock
	xouts   map[int]*xout // afxdp mode: per interface index, this worker's socket
	xlst    []*xout
	scratch []byte
	off     int   // used bytes of scratch
	now     int64 // wallclock of the current batch, unix ns
	gso     bool  // settings read once per batch
	callEnd int   // scratch bytes one send call may carry
	mmsg    bool

	cur   gsoRun // the datagram being built for the current viewer
	rsock *wsock
	rsa   *sockaddr

	st      *wstats              // shared with the host worker in queue mode
	viewers atomic.Int64         // viewers placed on this worker (socket workers)
	vset    map[*Viewer]struct{} // the same viewers, under p.mu, for rebalancing
}

// wstats are a worker's counters, read by Stats from any goroutine.
type wstats struct {
	packets, bytes, calls, errors, drops, late, datagrams, segments, fallbacks, xdp atomic.Uint64
}

// sendCounts accumulate during one flush; the worker adds them to its
// atomics once.
type sendCounts struct {
	packets, bytes, calls, errors, datagrams, segments, fallbacks uint64
}

func (s *wstats) add(c *sendCounts) {
	s.packets.Add(c.packets)
	s.bytes.Add(c.bytes)
	s.calls.Add(c.calls)
	s.errors.Add(c.errors)
	s.datagrams.Add(c.datagrams)
	s.segments.Add(c.segments)
	s.fallbacks.Add(c.fallbacks)
}

// srcState is a worker's view of one source: its viewers, the packets it
// retains for NACKs, and this batch's packets of the source.
type srcState struct {
	src     *Source
	viewers []*Viewer
	rings   []*retainRing
	last    []uint64 // per source stream: number of the last packet staged
	idx     []int32  // indices in the batch of the source's packets
	streams []int    // source streams with packets in the batch
	inBatch []bool   // per source stream: listed in streams
	refs    int      // viewers, plus viewers on their way in (rebalance)
	warm    warmState
}

// newWorker builds a socket-mode worker; newQueueWorker (queue.go) the
// per-viewer kind.
func newWorker(p *Plane, id, cpu int) *worker {
	w := &worker{
		p:       p,
		id:      id,
		in:      make(chan *packet, inQueue),
		ctl:     make(chan *op),
		batch:   make([]*packet, 0, maxBatch),
		bpos:    make([]uint64, maxBatch),
		sources: map[*Source]*srcState{},
		socks:   map[netip.AddrPort]*wsock{},
		scratch: make([]byte, maxMsgs*maxOut),
		st:      &wstats{},
		vset:    map[*Viewer]struct{}{},
	}
	w.cpu.Store(int32(cpu))
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	return w
}

func (w *worker) run() {
	if cpu := int(w.cpu.Load()); cpu >= 0 {
		if err := affinity.Pin(cpu); err != nil {
			w.p.cfg.Logger.Warn("dataplane: worker not pinned", "worker", w.id, "cpu", cpu, "err", err)
			w.cpu.Store(-1)
		} else {
			defer func() {
				if err := affinity.Unpin(); err != nil {
					w.p.cfg.Logger.Warn("dataplane: worker unpin", "worker", w.id, "err", err)
				}
			}()
		}
	}
	defer w.shutdown()
	for {
		select {
		case <-w.p.quit:
			return
		case <-w.stop: // nil, so never, for a socket worker
			return
		case o := <-w.ctl:
			o.done <- w.apply(o)
			continue
		case pk := <-w.in:
			w.batch = append(w.batch[:0], pk)
		}
		w.collect()
		w.process()
		w.controls()
	}
}

// controls applies every control operation already waiting, between two
// batches. With media always queued, the select above would take one
// operation per batch, at random, and at thousands of viewers a batch
// takes tens of milliseconds: a thousand hangups took seconds to leave,
// sent media all the while, and joins waited as long.
func (w *worker) controls() {
	for {
		select {
		case o := <-w.ctl:
			o.done <- w.apply(o)
		default:
			return
		}
	}
}

// collect fills the batch up to Batch packets, waiting at most FlushInterval
// after the first one.
func (w *worker) collect() {
	max := min(int(w.p.batch.Load()), cap(w.batch))
queued:
	for len(w.batch) < max {
		select {
		case pk := <-w.in:
			w.batch = append(w.batch, pk)
		default:
			break queued
		}
	}
	if len(w.batch) >= max {
		w.finishFrame(max)
		return
	}
	w.timer.Reset(time.Duration(w.p.flush.Load()))
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

// finishFrame takes, past a full batch, the packets already queued up to
// the next end of a frame (RTP marker), at most another max: a frame cut
// at the batch's end would leave in two datagrams per viewer. It never
// waits. Batch 1 is no batching at all, and stays so.
func (w *worker) finishFrame(max int) {
	if max < 2 {
		return
	}
	limit := min(2*max, cap(w.batch))
	for len(w.batch) < limit && !w.batch[len(w.batch)-1].f.marker {
		select {
		case pk := <-w.in:
			w.batch = append(w.batch, pk)
		default:
			return
		}
	}
}

// process sends the batch to every viewer and empties it.
func (w *worker) process() {
	w.now = time.Now().UnixNano()
	w.gso = !w.queue && w.p.gso.Load()
	w.mmsg = !w.queue && w.p.mmsg.Load()
	w.callEnd = min(int(w.p.call.Load()), len(w.scratch))
	warm := !w.queue && w.p.prefetch.Load()
	w.stage()
	for _, st := range w.touched {
		vs := st.viewers
		if warm {
			st.warm.sync(vs)
			for i := range min(warmAhead, len(vs)) {
				st.warm.viewer(i)
			}
		}
		for i, v := range vs {
			if warm {
				if j := i + warmAhead; j < len(vs) {
					st.warm.viewer(j)
				}
				if i+1 < len(vs) {
					st.warm.history(vs[i+1], st.streams)
				}
			}
			w.emit(v, st)
		}
		st.idx = st.idx[:0]
		for _, s := range st.streams {
			st.inBatch[s] = false
		}
		st.streams = st.streams[:0]
	}
	w.flush()
	clear(w.touched)
	w.touched = w.touched[:0]
	clear(w.batch)
	w.batch = w.batch[:0]
}

// stage retains each packet once for the worker and groups the batch by
// source. A worker drops what waited longer than the plane's MaxLag past
// its flush interval: behind its source, it sends what is fresh rather
// than work through seconds of queue (the viewers see the loss, and video
// recovers at a keyframe or with a NACK of a packet sent). Queue mode
// too, as Janus discards what waited in a handle's queue over a second.
func (w *worker) stage() {
	limit := int64(time.Since(w.p.epoch)) - w.p.maxLag.Load() - w.p.flush.Load()
	late := uint64(0)
	for i, pk := range w.batch {
		st := w.sources[pk.src]
		if st == nil {
			pk.release() // the last viewer left after Publish took its snapshot
			continue
		}
		if pk.at < limit {
			st.last[pk.stream] = pk.num // passed over, as if sent: a rebalance must not send it either
			late++
			pk.release()
			continue
		}
		w.bpos[i] = st.rings[pk.stream].push(pk)
		st.last[pk.stream] = pk.num
		if len(st.idx) == 0 {
			w.touched = append(w.touched, st)
		}
		st.idx = append(st.idx, int32(i))
		if !st.inBatch[pk.stream] {
			st.inBatch[pk.stream] = true
			st.streams = append(st.streams, pk.stream)
		}
	}
	if late > 0 {
		w.st.late.Add(late)
	}
}

// emit sends v its packets of this batch from st, in order.
func (w *worker) emit(v *Viewer, st *srcState) {
	if v.paused {
		return
	}
	// Flush between viewers rather than within one's run, when its packets
	// might not fit in the call (put still checks each packet).
	if s := v.sock; s != nil && w.off > 0 && (w.off+len(st.idx)*maxOut > w.callEnd || s.room() < len(st.idx)+1) {
		w.flush()
	}
	// Counters are published per source stream the batch had, not for
	// every stream of the viewer: at a thousand viewers an untouched
	// stream's counters are a cache miss each.
	cur := -1
	for _, i := range st.idx {
		pk := w.batch[i]
		if pk.stream != cur {
			if cur >= 0 {
				publish(v.bySrc[cur], w.now)
			}
			cur = pk.stream
		}
		for _, vs := range v.bySrc[pk.stream] {
			if !vs.enabled || pk.num <= vs.seen {
				continue
			}
			seq, ts, ok := vs.rw.next(pk.f.ssrc, pk.f.seq, pk.f.ts, pk.at, pk.key)
			if !ok {
				continue
			}
			if w.put(v, vs, pk, seq, ts) {
				vs.hist[seq&uint16(len(vs.hist)-1)] = histEntry{ring: st.rings[pk.stream], pos: w.bpos[i], seq: seq, ts: ts, used: true}
				vs.ctr.add(pk.f.octets, ts)
			}
		}
	}
	w.endRun()
	if cur >= 0 {
		publish(v.bySrc[cur], w.now)
	}
}

func publish(vss []*vstream, now int64) {
	for _, vs := range vss {
		vs.ctr.publish(now)
	}
}

// put builds the viewer's packet, encrypted, and queues it: in a frame of
// the viewer's AF_XDP socket (afxdp mode, xdp.go), or in the scratch
// space, added to the viewer's open datagram or starting a new one. It
// reports whether the packet will be sent.
func (w *worker) put(v *Viewer, vs *vstream, pk *packet, seq uint16, ts uint32) bool {
	if v.xo != nil && fitsFrame(v, pk) {
		return w.putFrame(v, vs, pk, seq, ts)
	}
	return w.putSock(v, vs, pk, seq, ts)
}

// putSock is put through the viewer's send socket.
func (w *worker) putSock(v *Viewer, vs *vstream, pk *packet, seq uint16, ts uint32) bool {
	s := v.sock
	if s == nil {
		w.st.errors.Add(1)
		return false
	}
	// Room for this packet, and for two messages: the run it may end and
	// the one it starts.
	if w.off+maxOut > w.callEnd || s.room() < 2 {
		w.flush()
	}
	n := 12 + 4*pk.f.cc + len(pk.body())
	out, err := w.seal(w.scratch[w.off:w.off+n:w.off+maxOut], vs, pk, seq, ts)
	if err != nil {
		w.st.errors.Add(1)
		return false
	}
	size := len(out)
	if !w.gso || !s.gsoOK || w.rsock != s || w.rsa != &v.sa || !w.cur.extend(w.off, size) {
		w.endRun()
		w.cur.start(w.off, size)
		w.rsock, w.rsa = s, &v.sa
	}
	w.off += size
	return true
}

// seal writes the viewer's RTP header into buf (as long as the packet,
// with room for the SRTP tag up to its capacity) and the payload
// encrypted behind it, in place.
func (w *worker) seal(buf []byte, vs *vstream, pk *packet, seq uint16, ts uint32) ([]byte, error) {
	body := pk.body()
	hl := 12 + 4*pk.f.cc
	n := len(buf)
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
	var out []byte
	var err error
	if w.queue {
		// The baseline copies the payload before encrypting it in place, as
		// Janus copies each packet again for libsrtp.
		copy(buf[hl:], body)
		out, err = vs.prot.Protect(buf, n)
	} else {
		// The cipher reads the payload from the shared source packet and
		// writes the ciphertext behind the rewritten header: no copy.
		out, err = vs.prot.ProtectFrom(buf, hl, body)
	}
	if err != nil || len(out) == 0 || &out[0] != &buf[0] {
		return nil, errSeal
	}
	return out, nil
}

var errSeal = errors.New("dataplane: SRTP protect failed or moved the packet")

// endRun queues the open datagram on its socket.
func (w *worker) endRun() {
	if !w.cur.open() {
		return
	}
	r := &w.cur
	w.rsock.add(w.scratch[r.off:r.off+r.bytes], w.rsa, r.gsoSize(), r.segs)
	r.segs = 0
	w.rsock, w.rsa = nil, nil
}

// flush sends everything queued on every socket.
func (w *worker) flush() {
	w.endRun()
	for _, s := range w.socklst {
		if s.n > 0 {
			s.mmsg = w.mmsg
			s.flush(w.st, w.p.cfg.Logger)
		}
	}
	w.off = 0
	for _, x := range w.xlst {
		w.flushXDP(x)
	}
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
