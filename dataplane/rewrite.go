package dataplane

// rewriter maps a source stream's sequence numbers and timestamps onto one
// outgoing stream, so the viewer sees one continuous stream across source
// restarts, SSRC changes, pauses and switches (the job of Janus's
// janus_rtp_header_update). It is owned by the viewer's worker.
//
// On a discontinuity the offsets are rebased: the next output sequence number
// is the last one + 1 and the next timestamp is the last one + the wallclock
// time elapsed since the last forwarded packet, in the stream's clock rate
// (at least 1). A video stream waits for a keyframe before it rebases.
type rewriter struct {
	video bool
	clock uint32

	started bool // something was forwarded already
	rebase  bool // next forwarded packet must rebase (switch, resume, enable)

	inSSRC uint32 // last forwarded input
	inSeq  uint16
	seqOff uint16
	tsOff  uint32
	outSeq uint16 // highest output so far, and its timestamp
	outTS  uint32
	lastAt int64 // arrival of the last forwarded packet (ns, monotonic)
}

// seqJump is how far the input sequence may move before we call it a
// restart of the source.
const seqJump = 1000

// waiting reports whether the stream would drop non-keyframe packets now.
func (r *rewriter) waiting() bool { return r.video && (!r.started || r.rebase) }

// next returns the output sequence number and timestamp for an input packet,
// or ok == false when the packet must not be sent (video waiting for a
// keyframe).
func (r *rewriter) next(ssrc uint32, seq uint16, ts uint32, at int64, key bool) (oseq uint16, ots uint32, ok bool) {
	d := int16(seq - r.inSeq)
	disc := !r.started || r.rebase || ssrc != r.inSSRC || d > seqJump || d < -seqJump
	if disc {
		if r.video && !key {
			return 0, 0, false
		}
		if r.started {
			step := uint32(1)
			if el := at - r.lastAt; el > 0 && r.clock > 0 {
				if s := uint64(el) * uint64(r.clock) / 1e9; s > 1 {
					step = uint32(s)
				}
			}
			r.seqOff = r.outSeq + 1 - seq
			r.tsOff = r.outTS + step - ts
		}
		// The very first packet keeps the input's numbers (offsets 0).
		r.started, r.rebase = true, false
		r.inSSRC, r.inSeq = ssrc, seq
		oseq, ots = seq+r.seqOff, ts+r.tsOff
		r.outSeq, r.outTS, r.lastAt = oseq, ots, at
		return oseq, ots, true
	}
	oseq, ots = seq+r.seqOff, ts+r.tsOff
	if d > 0 { // newer; a late packet keeps its place but moves nothing
		r.inSeq = seq
		r.outSeq, r.outTS = oseq, ots
		r.lastAt = at
	}
	return oseq, ots, true
}
