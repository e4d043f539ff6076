package dataplane

import (
	"net/netip"
	"time"
)

// Queue mode (Config.Mode = ModeQueue): the baseline every benchmark
// compares with, a deliberate copy of the path Janus takes from a
// mountpoint to its viewers:
//
//	Publish   copies the packet once per viewer into that viewer's queue
//	          (source.go), as janus_streaming relays to each session
//	goroutine one per viewer: wakes for each packet, rewrites, encrypts and
//	          sends it with one sendto(2), as each Janus handle's loop does
//
// It runs the socket workers' code (worker.go, ops.go) with a batch of one
// packet, no GSO and no sendmmsg, so the two modes differ only in the path
// and agree on every behaviour: rewriting, SRTP, history, counters, control,
// and dropping what waited longer than MaxLag (Janus discards what waited
// in a handle's queue over a second).
// Viewers are counted on a socket worker (least loaded) and send through
// that worker's sockets; they are not pinned and never rebalanced.

// queueHistory bounds the packets a queue-mode viewer keeps per stream for
// NACKs. Its copies are its own, not a worker's shared with every viewer:
// History (512) of them held 1 GB live at 500 viewers, and the garbage
// collector's work on it made queue mode's capacity vary by a quarter
// from run to run. 128 is over half a second of a 2 Mbit/s stream, as
// Janus keeps a NACK queue of 500 ms per handle.
const queueHistory = 128

// startQueueWorker starts the goroutine of a viewer placed on host. Called
// with p.mu held.
func (p *Plane) startQueueWorker(host *worker) (*worker, error) {
	w := &worker{
		p:       p,
		id:      host.id,
		queue:   true,
		stop:    make(chan struct{}),
		in:      make(chan *packet, viewerQueue),
		ctl:     make(chan *op),
		batch:   make([]*packet, 0, 1),
		bpos:    make([]uint64, 1),
		sources: map[*Source]*srcState{},
		socks:   map[netip.AddrPort]*wsock{},
		scratch: make([]byte, 4*maxOut),
		st:      host.st,
	}
	w.cpu.Store(-1)
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	for local, conns := range p.locals {
		s, err := newWsock(conns[host.id], local, 4)
		if err != nil {
			return nil, err
		}
		w.socks[local] = s
		w.socklst = append(w.socklst, s)
	}
	p.qworkers[w] = struct{}{}
	p.start(w)
	return w, nil
}

// joinQueueWorker gives a running viewer goroutine its socket on a newly
// joined local. Called with p.mu held.
func (p *Plane) joinQueueWorker(w *worker, local netip.AddrPort) error {
	s, err := newWsock(p.locals[local][w.id], local, 4)
	if err != nil {
		return err
	}
	p.do(w, &op{kind: opJoin, sock: s, local: local})
	return nil
}

// stopQueueWorker ends a closed viewer's goroutine. Called with p.mu held.
func (p *Plane) stopQueueWorker(w *worker) {
	delete(p.qworkers, w)
	close(w.stop)
}
