package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Viewer is one subscriber's egress. Its SRTP state, history and rewrite
// state belong to one worker goroutine; every method below reaches that
// worker through its control channel, takes effect between two batches and
// returns once the worker has applied it.
type Viewer struct {
	p    *Plane
	w    *worker // owns the state below: the host, or the viewer's own goroutine in queue mode
	host *worker // the socket worker the viewer is placed on (under p.mu and mu)

	mu     sync.Mutex // serialises control calls on this viewer
	src    *Source
	closed bool

	streams []*vstream
	bySSRC  map[uint32]*vstream // immutable after AddViewer

	// Owned by the worker.
	bySrc  [][]*vstream // per source stream index: the streams it feeds
	paused bool
	sock   *wsock
	sa     sockaddr
	remote netip.AddrPort
	local  netip.AddrPort
	ws     *srcState  // the worker's state of the source it is attached to
	hop    *viewerHop // afxdp: its frame header, nil to send through sockets
	xo     *xout      // afxdp: its worker's socket on hop's interface
}

// vstream is one outgoing stream of a viewer.
type vstream struct {
	v      *Viewer
	mid    string
	ssrc   uint32
	pt     uint8
	srcIdx int

	// Owned by the worker.
	prot    protector
	enabled bool
	seen    uint64 // packets of the source stream numbered up to here were handled (rebalance)
	rw      rewriter
	hist    []histEntry

	ctr counters // atomics, read by any goroutine
}

// AddViewer builds the viewer's SRTP state (RTP only) from the handoff and
// places the viewer on the least-loaded worker, subscribed to src.
func (p *Plane) AddViewer(h Handoff, src *Source) (*Viewer, error) {
	if src == nil || src.p != p {
		return nil, errors.New("dataplane: source of another plane")
	}
	if len(h.Streams) == 0 {
		return nil, errors.New("dataplane: viewer without streams")
	}
	prot, err := newProtectors(h)
	if err != nil {
		return nil, err
	}
	v := &Viewer{p: p, src: src, bySSRC: map[uint32]*vstream{}}
	for _, st := range h.Streams {
		if st.Source < 0 || st.Source >= src.streams {
			return nil, fmt.Errorf("dataplane: stream %q feeds from source stream %d of %d", st.MID, st.Source, src.streams)
		}
		if _, dup := v.bySSRC[st.SSRC]; dup {
			return nil, fmt.Errorf("dataplane: duplicate ssrc %d", st.SSRC)
		}
		vs := &vstream{
			v: v, mid: st.MID, ssrc: st.SSRC, pt: st.PT, srcIdx: st.Source,
			prot:    prot(st.SSRC),
			enabled: true,
			rw:      rewriter{video: st.ClockRate == 90000, clock: st.ClockRate},
			hist:    make([]histEntry, p.cfg.History),
		}
		v.streams = append(v.streams, vs)
		v.bySSRC[st.SSRC] = vs
	}

	hop, hk := p.hopFor(h.Local, h.Remote)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPlaneClosed
	}
	if _, ok := p.resolveLocal(h.Local); !ok {
		p.mu.Unlock()
		return nil, fmt.Errorf("dataplane: local %s not joined", h.Local)
	}
	host := p.leastLoaded()
	p.place(v, host)
	p.notePath(v, h.Local, h.Remote, hk)
	w := host
	if p.cfg.Mode == ModeQueue {
		if w, err = p.startQueueWorker(host); err != nil {
			p.unplace(v)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()

	v.w = w
	src.attach(w)
	if _, ok := p.do(w, &op{kind: opAdd, v: v, src: src, local: h.Local, remote: h.Remote, hop: hop}); !ok {
		src.detach(w)
		p.mu.Lock()
		p.unplace(v)
		p.forgetPath(v)
		p.mu.Unlock()
		return nil, errPlaneClosed
	}
	return v, nil
}

var errPlaneClosed = errors.New("dataplane: plane closed")

// Switch moves the viewer to another source without renegotiation: output
// sequence numbers and timestamps continue, video waits for a keyframe.
func (v *Viewer) Switch(src *Source) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed || src == nil || src == v.src || src.p != v.p {
		return
	}
	for _, vs := range v.streams {
		if vs.srcIdx >= src.streams {
			v.p.cfg.Logger.Warn("dataplane: switch refused, source has too few streams",
				"source", src.name, "mid", vs.mid, "index", vs.srcIdx)
			return
		}
	}
	src.attach(v.w)
	if _, ok := v.p.do(v.w, &op{kind: opSwitch, v: v, src: src}); !ok {
		src.detach(v.w)
		return
	}
	v.src.detach(v.w)
	v.src = src
}

// SetPaused stops (true) or resumes (false) sending. On resume the streams
// continue without a jump, and video waits for a keyframe.
func (v *Viewer) SetPaused(paused bool) {
	v.control(&op{kind: opPause, on: paused})
}

// SetStreamEnabled turns sending of one media (by mid) on or off, as
// Janus's "configure" request does.
func (v *Viewer) SetStreamEnabled(mid string, on bool) {
	v.control(&op{kind: opEnable, mid: mid, on: on})
}

// SetPath follows a change of the selected candidate pair. local must have
// been joined; if not, the viewer gets nothing (counted as errors) until
// the next SetPath.
func (v *Viewer) SetPath(local, remote netip.AddrPort) {
	hop, hk := v.p.hopFor(local, remote)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.p.mu.Lock()
	v.p.notePath(v, local, remote, hk)
	v.p.mu.Unlock()
	v.p.do(v.w, &op{kind: opPath, v: v, local: local, remote: remote, hop: hop})
}

// Retransmit resends the given packets of the outgoing stream ssrc from the
// history, byte-identical to the first time. It returns how many were found.
func (v *Viewer) Retransmit(ssrc uint32, seqs []uint16) int {
	if _, ok := v.bySSRC[ssrc]; !ok || len(seqs) == 0 {
		return 0
	}
	n, _ := v.control(&op{kind: opRetransmit, ssrc: ssrc, seqs: seqs})
	return n
}

// Counters returns the sender-report counters of the outgoing stream ssrc.
// It takes no lock and may be called from any goroutine.
func (v *Viewer) Counters(ssrc uint32) (StreamCounters, bool) {
	vs, ok := v.bySSRC[ssrc]
	if !ok {
		return StreamCounters{}, false
	}
	return vs.ctr.snapshot(), true
}

// Close detaches the viewer. When it returns, no worker sends to it any more.
func (v *Viewer) Close() {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.closed = true
	if _, ok := v.p.do(v.w, &op{kind: opRemove, v: v}); ok {
		v.src.detach(v.w)
	}
	v.p.mu.Lock()
	v.p.unplace(v)
	v.p.forgetPath(v)
	if v.w.queue {
		v.p.stopQueueWorker(v.w)
	}
	v.p.mu.Unlock()
	v.mu.Unlock()
	v.p.rebalance()
}

func (v *Viewer) control(o *op) (int, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return 0, false
	}
	o.v = v
	return v.p.do(v.w, o)
}
