package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spillway-rtc/spillway/dataplane/afxdp"
)

// Plane is the egress data plane: a fixed set of workers, one per chosen
// CPU, each owning its viewers and one send socket per joined local address.
type Plane struct {
	cfg   Config // as started; the live settings below override it
	epoch time.Time

	// Live settings, read by the workers once per batch.
	batch    atomic.Int64 // packets
	flush    atomic.Int64 // time.Duration
	maxLag   atomic.Int64 // time.Duration
	call     atomic.Int64 // bytes of datagrams per send call
	gso      atomic.Bool
	prefetch atomic.Bool
	mmsg     atomic.Bool

	workers []*worker
	quit    chan struct{}
	wg      sync.WaitGroup
	rebal   sync.Mutex // one rebalance at a time

	mu       sync.Mutex
	closed   bool
	sndbuf   int                            // live SndBuf
	defSnd   int                            // the kernel's default SO_SNDBUF, as read (doubled)
	locals   map[netip.AddrPort][]*sendSock // per local: one socket per worker
	ingests  map[*Ingest]struct{}
	qworkers map[*worker]struct{} // queue mode: the viewers' goroutines
	xdp      *xdpPlane            // afxdp mode (xdp.go); set in New
	zc       afxdp.ZeroCopy       // live afxdp/zerocopy
}

// New starts the workers: one per CPU of cfg.CPUs, or chosen from the
// process's CPUs, each pinned to its CPU unless cfg.NoPin.
func New(cfg Config) (*Plane, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cpus, err := workerCPUs(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Workers, cfg.CPUs = len(cpus), cpus
	if q := cfg.AFXDP.Queues; cfg.Mode == ModeAFXDP && q != nil && len(q) != len(cpus) {
		return nil, fmt.Errorf("dataplane: afxdp queues %v for %d workers: one queue per worker", q, len(cpus))
	}
	p := &Plane{
		cfg:      cfg,
		epoch:    time.Now(),
		quit:     make(chan struct{}),
		sndbuf:   cfg.SndBuf,
		locals:   map[netip.AddrPort][]*sendSock{},
		ingests:  map[*Ingest]struct{}{},
		qworkers: map[*worker]struct{}{},
		zc:       cfg.AFXDP.ZeroCopy,
	}
	p.batch.Store(int64(cfg.Batch))
	p.flush.Store(int64(cfg.FlushInterval))
	p.maxLag.Store(int64(cfg.MaxLag))
	p.call.Store(int64(cfg.CallBytes))
	p.gso.Store(!cfg.NoGSO)
	p.prefetch.Store(!cfg.NoPrefetch)
	p.mmsg.Store(!cfg.NoMMsg)
	for i, cpu := range cpus {
		if cfg.NoPin || cfg.Mode == ModeQueue { // queue mode: the viewers' goroutines do the work, unpinned
			cpu = -1
		}
		p.workers = append(p.workers, newWorker(p, i, cpu))
	}
	if cfg.Mode == ModeAFXDP {
		if err := p.startXDP(); err != nil {
			return nil, err
		}
	}
	for _, w := range p.workers {
		p.start(w)
	}
	return p, nil
}

func (p *Plane) start(w *worker) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		w.run()
	}()
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
	p.stopXDP()
	p.mu.Lock()
	errs = append(errs, p.closeXDP())
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
	conns := make([]*sendSock, 0, len(p.workers))
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
		if p.defSnd == 0 {
			if p.defSnd, err = sndBuf(c); err != nil {
				return fail(err)
			}
		}
		if p.sndbuf != 0 {
			if err := setSndBuf(c, p.sndbuf); err != nil {
				return fail(err)
			}
		}
	}
	if local.Addr().IsUnspecified() {
		if err := steerToFirst(conns[0]); err != nil {
			return fail(err)
		}
	}
	socks := make([]*wsock, len(conns))
	for i, c := range conns {
		s, err := newWsock(c, local, maxMsgs)
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
	if p.xdp != nil {
		if err := p.inNetns(func() error { return p.joinXDP(local) }); err != nil {
			return err // the sockets stay joined: a viewer there is served through them
		}
	}
	for qw := range p.qworkers {
		if err := p.joinQueueWorker(qw, local); err != nil {
			return err
		}
	}
	p.cfg.Logger.Debug("dataplane: joined", "local", local, "sockets", len(conns), "gso", socks[0].gsoOK)
	return nil
}

// Stats returns a snapshot of every worker's counters.
func (p *Plane) Stats() Stats {
	var st Stats
	for _, w := range p.workers {
		ws := WorkerStats{
			Viewers:      int(w.viewers.Load()),
			Packets:      w.st.packets.Load(),
			Bytes:        w.st.bytes.Load(),
			Sendmmsg:     w.st.calls.Load(),
			Errors:       w.st.errors.Load(),
			Drops:        w.st.drops.Load(),
			Late:         w.st.late.Load(),
			Datagrams:    w.st.datagrams.Load(),
			Segments:     w.st.segments.Load(),
			GSOFallbacks: w.st.fallbacks.Load(),
			XDPFrames:    w.st.xdp.Load(),
			CPU:          int(w.cpu.Load()),
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

// place and unplace count v on a worker. Called with p.mu held.
func (p *Plane) place(v *Viewer, w *worker) {
	v.host = w
	w.vset[v] = struct{}{}
	w.viewers.Add(1)
}

func (p *Plane) unplace(v *Viewer) {
	if _, ok := v.host.vset[v]; ok {
		delete(v.host.vset, v)
		v.host.viewers.Add(-1)
	}
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
