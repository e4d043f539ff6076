package dataplane

import (
	"unsafe"

	"github.com/spillway-rtc/spillway/internal/prefetch"
)

// Prefetching a batch's viewers. At a thousand viewers per worker, a
// viewer's state is out of the cache by the time the next batch comes
// round, and emit used to wait on about ten cache misses per viewer, one
// pointer after another (viewer, its streams, their SRTP stream, context and
// cipher keys, the history slot): a fifth of the worker's time. A
// source's viewers are walked in a known order, so the memory of the
// viewers warmAhead places ahead is requested before the current one is
// emitted, from a list of spans made when viewers join (warmState). Only the
// history slot, which moves with every packet, is found at the time, one
// viewer ahead.

// warmAhead is how many viewers ahead the prefetch runs: one viewer's emit
// (encryption of its packets included) takes longer than a memory access,
// and the spans of two viewers still fit the core's outstanding misses.
const warmAhead = 2

// warmState lists, for each of a source's viewers on a worker, in the order
// of srcState.viewers, the memory emit touches. It is extended as viewers
// attach and rebuilt on the next batch after one detaches.
type warmState struct {
	spans []prefetch.Span
	ends  []int32 // viewer i's spans are spans[ends[i-1]:ends[i]]
	stale bool
	hist  []prefetch.Span // scratch for the history slots of one viewer
}

// added extends the list by v, appended to the viewers.
func (ws *warmState) added(v *Viewer) {
	if ws.stale {
		return
	}
	ws.spans = v.appendSpans(ws.spans)
	ws.ends = append(ws.ends, int32(len(ws.spans)))
}

// removed marks the list stale, and lets go of the viewers it points to.
func (ws *warmState) removed() {
	ws.stale = true
	clear(ws.spans)
	ws.spans, ws.ends = ws.spans[:0], ws.ends[:0]
}

// sync rebuilds a stale list for viewers.
func (ws *warmState) sync(viewers []*Viewer) {
	if !ws.stale && len(ws.ends) == len(viewers) {
		return
	}
	ws.stale = false
	clear(ws.spans)
	ws.spans, ws.ends = ws.spans[:0], ws.ends[:0]
	for _, v := range viewers {
		ws.added(v)
	}
}

// viewer prefetches the state of viewer i.
func (ws *warmState) viewer(i int) {
	start := int32(0)
	if i > 0 {
		start = ws.ends[i-1]
	}
	prefetch.Spans(ws.spans[start:ws.ends[i]])
}

// history prefetches, for v's streams fed by the source streams in the
// batch, the history slots their next packets go to.
func (ws *warmState) history(v *Viewer, streams []int) {
	ws.hist = ws.hist[:0]
	for _, s := range streams {
		if s >= len(v.bySrc) {
			continue
		}
		for _, vs := range v.bySrc[s] {
			if n := len(vs.hist); n > 0 {
				e := &vs.hist[int(vs.rw.outSeq+1)&(n-1)]
				ws.hist = append(ws.hist, prefetch.Span{P: unsafe.Pointer(e), N: 2 * prefetch.LineSize})
			}
		}
	}
	prefetch.Spans(ws.hist)
}

// appendSpans appends the memory emit touches for v, besides history
// slots: the viewer, its per-source index, its streams and their SRTP
// state, each span once.
func (v *Viewer) appendSpans(dst []prefetch.Span) []prefetch.Span {
	start := len(dst)
	dst = append(dst, prefetch.Of(v), prefetch.SliceOf(v.bySrc))
	for _, vss := range v.bySrc {
		dst = append(dst, prefetch.SliceOf(vss))
	}
	for _, vs := range v.streams {
		dst = append(dst, prefetch.Of(vs))
		if sp, ok := vs.prot.(interface {
			AppendSpans([]prefetch.Span) []prefetch.Span
		}); ok {
			dst = sp.AppendSpans(dst)
		}
	}
	// Streams of one viewer share their SRTP context and keys.
	out := dst[:start]
	for _, s := range dst[start:] {
		dup := s.P == nil
		for _, o := range out[start:] {
			dup = dup || o.P == s.P
		}
		if !dup {
			out = append(out, s)
		}
	}
	clear(dst[len(out):])
	return out
}
