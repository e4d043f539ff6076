package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Plane is the egress data plane: a fixed set of workers, each owning its
// viewers and one send socket per joined local address.
type Plane struct {
	cfg   Config
	epoch time.Time

	workers []*worker
	quit    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	locals  map[netip.AddrPort][]*net.UDPConn // per local: one socket per worker
	ingests map[*Ingest]struct{}
}

// New starts the workers.
func New(cfg Config) (*Plane, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Plane{
		cfg:     cfg,
		epoch:   time.Now(),
		quit:    make(chan struct{}),
		locals:  map[netip.AddrPort][]*net.UDPConn{},
		ingests: map[*Ingest]struct{}{},
	}
	for i := 0; i < cfg.Workers; i++ {
		p.workers = append(p.workers, newWorker(p, i))
	}
	for _, w := range p.workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w.run()
		}()
	}
	return p, nil
}

// Close stops the workers, closes the ingests and the sockets. Idempotent.
func (p *Plane) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ingests := p.ingests
	p.ingests = nil
	p.mu.Unlock()

	var errs []error
	for in := range ingests {
		errs = append(errs, in.Close())
	}
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	for _, conns := range p.locals {
		for _, c := range conns {
			errs = append(errs, c.Close())
		}
	}
	p.locals = nil
	p.mu.Unlock()
	return errors.Join(errs...)
}

// Join adds one send socket per worker, bound with SO_REUSEPORT to local,
// where the control plane has bound its own socket first (ListenReusePort).
// Inbound traffic keeps reaching the control socket: on a specific IP each
// data socket is connect()ed to a dummy peer (127.0.0.1:1 or [::1]:1), which
// takes it out of the kernel's reuseport choice, and every send names its
// destination; on a wildcard address a classic BPF "ret #0" program steers
// the whole group to its first member, the control socket.
func (p *Plane) Join(local netip.AddrPort) error {
	local = unmapPort(local)
	if local.Port() == 0 {
		return errors.New("dataplane: join needs the control socket's port")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPlaneClosed
	}
	if _, ok := p.locals[local]; ok {
		return fmt.Errorf("dataplane: %s already joined", local)
	}
	conns := make([]*net.UDPConn, 0, len(p.workers))
	fail := func(err error) error {
		for _, c := range conns {
			c.Close()
		}
		return fmt.Errorf("dataplane: join %s: %w", local, err)
	}
	for range p.workers {
		c, err := openDataSocket(local)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, c)
	}
	if local.Addr().IsUnspecified() {
		if err := steerToFirst(conns[0]); err != nil {
			return fail(err)
		}
	}
	socks := make([]*wsock, len(conns))
	for i, c := range conns {
		s, err := newWsock(c, local)
		if err != nil {
			return fail(err)
		}
		socks[i] = s
	}
	for i, w := range p.workers {
		if _, ok := p.do(w, &op{kind: opJoin, sock: socks[i], local: local}); !ok {
			return fail(errPlaneClosed)
		}
	}
	p.locals[local] = conns
	p.cfg.Logger.Debug("dataplane: joined", "local", local, "sockets", len(conns))
	return nil
}

// Stats returns a snapshot of every worker's counters.
func (p *Plane) Stats() Stats {
	var st Stats
	for _, w := range p.workers {
		ws := WorkerStats{
			Viewers:  int(w.viewers.Load()),
			Packets:  w.packets.Load(),
			Bytes:    w.bytes.Load(),
			Sendmmsg: w.calls.Load(),
			Errors:   w.errors.Load(),
			Drops:    w.drops.Load(),
		}
		st.Workers = append(st.Workers, ws)
		st.Viewers += ws.Viewers
	}
	return st
}

// resolveLocal finds the joined address that serves local: local itself,
// or the wildcard of its family on the same port (a control socket bound to
// 0.0.0.0 advertises candidates with specific addresses). Called with p.mu
// held.
func (p *Plane) resolveLocal(local netip.AddrPort) (netip.AddrPort, bool) {
	local = unmapPort(local)
	if _, ok := p.locals[local]; ok {
		return local, true
	}
	w := wildcardOf(local)
	_, ok := p.locals[w]
	return w, ok
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func wildcardOf(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), a.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), a.Port())
}

// leastLoaded picks the worker with the fewest viewers. Called with p.mu held.
func (p *Plane) leastLoaded() *worker {
	best := p.workers[0]
	for _, w := range p.workers[1:] {
		if w.viewers.Load() < best.viewers.Load() {
			best = w
		}
	}
	return best
}

// do hands an operation to a worker and waits until it is applied. It
// returns false when the plane is closed.
func (p *Plane) do(w *worker, o *op) (int, bool) {
	o.done = make(chan int, 1)
	select {
	case w.ctl <- o:
	case <-p.quit:
		return 0, false
	}
	return <-o.done, true
}
