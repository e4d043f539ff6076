package dataplane

import "net/netip"

// Control operations: the only way anything but the worker touches a
// viewer's SRTP context, history, rewrite state or path. They are applied by
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
	done   chan int
}

func (w *worker) apply(o *op) int {
	v := o.v
	switch o.kind {
	case opJoin:
		w.socks[o.local] = o.sock
		w.socklst = append(w.socklst, o.sock)
	case opAdd:
		w.setPath(v, o.local, o.remote)
		w.attach(v, o.src)
	case opRemove:
		w.detach(v)
	case opSwitch:
		w.detach(v)
		w.attach(v, o.src)
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
		w.setPath(v, o.local, o.remote)
	case opRetransmit:
		return w.retransmit(v, v.bySSRC[o.ssrc], o.seqs)
	}
	return 0
}

func (w *worker) setPath(v *Viewer, local, remote netip.AddrPort) {
	local = unmapPort(local)
	v.local, v.remote = local, remote
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

// attach subscribes every stream of v to its source stream of src. Each
// stream rebases (and video waits for a keyframe) on its next packet.
func (w *worker) attach(v *Viewer, src *Source) {
	st := w.sources[src]
	if st == nil {
		st = &srcState{src: src, subs: make([][]*vstream, src.streams), rings: make([]*retainRing, src.streams)}
		for i := range st.rings {
			st.rings[i] = newRetainRing(w.p.cfg.History)
		}
		w.sources[src] = st
	}
	for _, vs := range v.streams {
		st.subs[vs.srcIdx] = append(st.subs[vs.srcIdx], vs)
		vs.rw.rebase = true
	}
	st.viewers++
	v.ws = st
}

// detach removes v's streams from its source; the last viewer to leave
// releases the packets the worker retained for that source.
func (w *worker) detach(v *Viewer) {
	st := v.ws
	if st == nil {
		return
	}
	v.ws = nil
	for _, vs := range v.streams {
		subs := st.subs[vs.srcIdx]
		for i, x := range subs {
			if x == vs {
				copy(subs[i:], subs[i+1:])
				subs[len(subs)-1] = nil
				st.subs[vs.srcIdx] = subs[:len(subs)-1]
				break
			}
		}
	}
	st.viewers--
	if st.viewers == 0 {
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
		if w.send(v, vs, pk, e.seq, e.ts) {
			n++
		}
	}
	w.flush()
	return n
}
