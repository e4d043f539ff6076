package dataplane

import (
	"net/netip"
	"time"

	"github.com/spillway-rtc/spillway/affinity"
	"github.com/spillway-rtc/spillway/dataplane/afxdp"
)

// Control operations: the only way anything but the worker touches a
// viewer's SRTP state, history, rewrite state or path. They are applied by
// the worker between two batches, when nothing is queued for sending.

type opKind int

const (
	opJoin opKind = iota
	opAdd
	opRemove
	opSwitch
	opPause
	opEnable
	opPath
	opRetransmit
	opPrepare // rebalance: keep packets of src from now on, for a viewer coming
	opMoveOut // rebalance: send v everything up to upto, then let it go
	opMoveIn  // rebalance: take v over, sending what it has not had yet
	opWhere   // nothing but report the CPU the worker runs on
	opXDP     // afxdp: the worker's socket on another interface
	opHop     // afxdp: the viewer's next hop changed
	opXDPSwap // afxdp: the worker's socket on an interface is replaced
)

type op struct {
	kind   opKind
	v      *Viewer
	src    *Source
	sock   *wsock
	local  netip.AddrPort
	remote netip.AddrPort
	on     bool
	mid    string
	ssrc   uint32
	seqs   []uint16
	upto   []uint64
	xo     *xout
	xs     *afxdp.Socket
	hop    *viewerHop
	done   chan int
}

func (w *worker) apply(o *op) int {
	v := o.v
	switch o.kind {
	case opJoin:
		w.socks[o.local] = o.sock
		w.socklst = append(w.socklst, o.sock)
	case opAdd:
		v.hop = o.hop
		w.setPath(v, o.local, o.remote)
		w.attach(v, o.src, false)
	case opRemove:
		w.detach(v)
	case opSwitch:
		w.detach(v)
		w.attach(v, o.src, false)
	case opPause:
		if v.paused && !o.on {
			for _, vs := range v.streams {
				vs.rw.rebase = true
			}
		}
		v.paused = o.on
	case opEnable:
		for _, vs := range v.streams {
			if vs.mid != o.mid {
				continue
			}
			if o.on && !vs.enabled {
				vs.rw.rebase = true
			}
			vs.enabled = o.on
		}
	case opPath:
		v.hop = o.hop
		w.setPath(v, o.local, o.remote)
	case opHop:
		v.hop = o.hop
		w.setHop(v)
	case opXDP:
		if w.xouts == nil {
			w.xouts = map[int]*xout{}
		}
		o.xo.s = o.xs
		w.xouts[o.xo.ifindex] = o.xo
		w.xlst = append(w.xlst, o.xo)
	case opXDPSwap:
		w.flushXDP(o.xo)
		o.xo.s, o.xo.kicks, o.xo.queued, o.xo.bytes = o.xs, 0, 0, 0
	case opRetransmit:
		return w.retransmit(v, v.bySSRC[o.ssrc], o.seqs)
	case opPrepare:
		w.state(o.src).refs++
	case opMoveOut:
		w.moveOut(v, o.upto)
	case opMoveIn:
		w.moveIn(v)
	case opWhere:
		return affinity.CurrentCPU()
	}
	return 0
}

func (w *worker) setPath(v *Viewer, local, remote netip.AddrPort) {
	local = unmapPort(local)
	v.local, v.remote = local, remote
	w.setHop(v)
	v.sock = w.socks[local]
	if v.sock == nil {
		v.sock = w.socks[wildcardOf(local)] // see Plane.resolveLocal
	}
	if v.sock == nil {
		w.p.cfg.Logger.Warn("dataplane: viewer path on a local address that is not joined",
			"local", local, "remote", remote)
		return
	}
	v.sa = makeSockaddr(remote, v.sock.v6)
}

// state returns the worker's state of src, created empty if needed.
func (w *worker) state(src *Source) *srcState {
	st := w.sources[src]
	if st == nil {
		st = &srcState{
			src:     src,
			rings:   make([]*retainRing, src.streams),
			last:    make([]uint64, src.streams),
			idx:     make([]int32, 0, cap(w.batch)),
			inBatch: make([]bool, src.streams),
		}
		size := w.p.cfg.History
		if w.queue {
			size = min(size, queueHistory)
		}
		for i := range st.rings {
			st.rings[i] = newRetainRing(size)
		}
		w.sources[src] = st
	}
	return st
}

// attach subscribes v to src. Unless v is moving in (its slot is reserved
// and its streams continue as they were), each stream rebases (and video
// waits for a keyframe) on its next packet.
func (w *worker) attach(v *Viewer, src *Source, moving bool) {
	st := w.state(src)
	if !moving {
		st.refs++
		for _, vs := range v.streams {
			vs.rw.rebase = true
			vs.seen = 0 // numbers count per source
		}
	}
	if len(v.bySrc) != src.streams {
		v.bySrc = make([][]*vstream, src.streams)
		for _, vs := range v.streams {
			v.bySrc[vs.srcIdx] = append(v.bySrc[vs.srcIdx], vs)
		}
	}
	st.viewers = append(st.viewers, v)
	st.warm.added(v)
	v.ws = st
}

// detach removes v from its source; the last viewer to leave releases the
// packets the worker retained for that source.
func (w *worker) detach(v *Viewer) {
	st := v.ws
	if st == nil {
		return
	}
	v.ws = nil
	for i, x := range st.viewers {
		if x == v {
			copy(st.viewers[i:], st.viewers[i+1:])
			st.viewers[len(st.viewers)-1] = nil
			st.viewers = st.viewers[:len(st.viewers)-1]
			st.warm.removed()
			break
		}
	}
	w.unref(st)
}

func (w *worker) unref(st *srcState) {
	st.refs--
	if st.refs == 0 {
		for _, r := range st.rings {
			r.close()
		}
		delete(w.sources, st.src)
	}
}

// retransmit resends packets of vs from its history.
func (w *worker) retransmit(v *Viewer, vs *vstream, seqs []uint16) int {
	if vs == nil {
		return 0
	}
	n := 0
	mask := uint16(len(vs.hist) - 1)
	for _, seq := range seqs {
		e := &vs.hist[seq&mask]
		if !e.used || e.seq != seq {
			continue
		}
		pk := e.ring.get(e.pos)
		if pk == nil {
			continue
		}
		if w.put(v, vs, pk, e.seq, e.ts) {
			n++
		}
	}
	w.flush()
	return n
}

// moveWait bounds how long a worker giving a viewer away waits for packets
// published before the new worker joined the source; one that never comes
// (dropped on a full queue) would otherwise stall it.
const moveWait = 100 * time.Millisecond

// moveOut sends v every packet numbered up to upto (per source stream) that
// this worker will ever see for it, notes per stream the last one it
// handled, and lets v go. Its history points into this worker's rings,
// which the next worker cannot read: it is forgotten.
func (w *worker) moveOut(v *Viewer, upto []uint64) {
	st := v.ws
	if st == nil {
		return
	}
	behind := func() bool {
		for _, vs := range v.streams {
			if st.last[vs.srcIdx] < upto[vs.srcIdx] {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(moveWait)
	for behind() && time.Now().Before(deadline) {
		w.drain(deadline)
	}
	for _, vs := range v.streams {
		vs.seen = st.last[vs.srcIdx]
		clear(vs.hist)
	}
	w.detach(v)
}

// drain processes one batch of what is queued, waiting until deadline for
// the first packet.
func (w *worker) drain(deadline time.Time) {
	w.timer.Reset(time.Until(deadline))
	select {
	case pk := <-w.in:
		w.timer.Stop()
		w.batch = append(w.batch[:0], pk)
	case <-w.timer.C:
		return
	}
	max := min(int(w.p.batch.Load()), cap(w.batch))
	for len(w.batch) < max {
		select {
		case pk := <-w.in:
			w.batch = append(w.batch, pk)
			continue
		default:
		}
		break
	}
	w.process()
}

// moveIn takes v over: it sends v what this worker retained of v's source
// and v's old worker had not sent, then v gets every batch from here on.
// Its SRTP state and rewriter came with it, so sequence numbers, rollover
// counters and keystream continue where they were.
func (w *worker) moveIn(v *Viewer) {
	w.setPath(v, v.local, v.remote)
	st := w.sources[v.src]
	if st == nil { // not prepared: cannot happen, but never send blind
		w.attach(v, v.src, false)
		return
	}
	w.now = time.Now().UnixNano()
	w.gso, w.mmsg = w.p.gso.Load(), w.p.mmsg.Load()
	for _, vs := range v.streams {
		if v.paused || !vs.enabled {
			continue
		}
		r := st.rings[vs.srcIdx]
		for pos := r.oldest(); pos < r.head; pos++ {
			pk := r.get(pos)
			if pk == nil || pk.num <= vs.seen {
				continue
			}
			seq, ts, ok := vs.rw.next(pk.f.ssrc, pk.f.seq, pk.f.ts, pk.at, pk.key)
			if !ok {
				continue
			}
			if w.put(v, vs, pk, seq, ts) {
				vs.hist[seq&uint16(len(vs.hist)-1)] = histEntry{ring: r, pos: pos, seq: seq, ts: ts, used: true}
				vs.ctr.sent(pk.f.octets, ts, w.now)
			}
			vs.seen = pk.num
		}
		w.endRun()
	}
	w.flush()
	w.attach(v, v.src, true)
}
