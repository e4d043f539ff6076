package dataplane

// Rebalancing: viewers are placed on the least-loaded worker, but leave in
// any order, so workers drift apart. When one has more than 1.5 times the
// mean and at least 8 viewers more than the lightest, viewers move from the
// heaviest to the lightest, one at a time, until neither holds.
//
// A move must neither reuse keystream nor break the viewer's streams. Its
// SRTP state (rollover counters), rewriter and counters travel with it, and
// only one worker owns it at any time. The packets are cut exactly, with
// the per-stream numbers Publish gives (source.go):
//
//  1. the new worker B reserves a state for the source (opPrepare), so it
//     retains every packet of the source it gets from now on;
//  2. the source starts handing packets to B; the numbers published so far
//     are read: every later packet reaches B;
//  3. the old worker A processes its queue until it has handled those
//     numbers, notes per stream the last number handled, and lets the
//     viewer go (opMoveOut);
//  4. B sends the viewer what it retained past those numbers, then the
//     viewer is B's (opMoveIn).
//
// The history of NACKable packets stays with A's retain rings, which B
// cannot read: retransmissions of packets sent before the move are lost.

const (
	rebalanceRatio = 1.5
	rebalanceGap   = 8
)

// rebalance moves viewers until the workers are no longer skewed, and
// returns how many it moved.
func (p *Plane) rebalance() int {
	if p.cfg.Mode == ModeQueue || len(p.workers) < 2 {
		return 0
	}
	p.rebal.Lock()
	defer p.rebal.Unlock()
	moved := 0
	for {
		v, from, to := p.pickMove()
		if v == nil || !p.move(v, from, to) {
			return moved
		}
		moved++
	}
}

// pickMove chooses a viewer of the heaviest worker for the lightest one, or
// nil when the workers are balanced enough.
func (p *Plane) pickMove() (v *Viewer, from, to *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, nil
	}
	from, to = p.workers[0], p.workers[0]
	total := 0
	for _, w := range p.workers {
		n := len(w.vset)
		total += n
		if n > len(from.vset) {
			from = w
		}
		if n < len(to.vset) {
			to = w
		}
	}
	heavy, light := len(from.vset), len(to.vset)
	mean := float64(total) / float64(len(p.workers))
	if float64(heavy) <= rebalanceRatio*mean || heavy-light < rebalanceGap {
		return nil, nil, nil
	}
	for v = range from.vset {
		return v, from, to
	}
	return nil, nil, nil
}

// move hands v from one worker to another (see the steps above). It
// reports false when v could not move (closed meanwhile, or the plane is).
func (p *Plane) move(v *Viewer, from, to *worker) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed || v.w != from {
		return false
	}
	src := v.src
	if _, ok := p.do(to, &op{kind: opPrepare, src: src}); !ok {
		return false
	}
	src.attach(to)
	upto := src.published()
	if _, ok := p.do(from, &op{kind: opMoveOut, v: v, upto: upto}); !ok {
		return false
	}
	src.detach(from)
	p.mu.Lock()
	p.unplace(v)
	p.place(v, to)
	p.mu.Unlock()
	v.w = to
	if _, ok := p.do(to, &op{kind: opMoveIn, v: v}); !ok {
		return false
	}
	p.cfg.Logger.Debug("dataplane: viewer moved", "from", from.id, "to", to.id)
	return true
}
