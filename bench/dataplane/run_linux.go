//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/spillway-rtc/spillway/bench/media"
	"github.com/spillway-rtc/spillway/bench/sysstat"
	"github.com/spillway-rtc/spillway/bpf"
	"github.com/spillway-rtc/spillway/dataplane"
)

// A row's life, on two CPUs:
//
//	setup     plane with one worker pinned to the worker CPU, joined on the
//	          server's veth address, 1000 viewers handed off with their own
//	          keys and addresses in the sink namespace
//	confine   the publisher (the ingest's stand-in: Publish is part of the
//	          fan-out, a copy per viewer in queue mode) is pinned to the
//	          worker CPU too; every other thread of the process moves to the
//	          housekeeping CPU, except in queue mode, whose viewer goroutines
//	          must run on the worker CPU: one core for the whole data path
//	load      the publisher plays the video model as fast as the plane takes
//	          it, keeping a bounded backlog, never dropping
//	measure   warm-up, then a window: sent (plane stats), delivered (XDP
//	          count at the sink), /proc/stat of both CPUs, other processes
//	drain     stop publishing, wait until the plane has sent everything,
//	          and compare everything sent with everything counted: the loss

// counters are cumulative send counters of a plane or the probe.
type counters struct {
	sent, errs, drops, dgrams, calls, segs, fallbacks uint64
}

func planeCounters(p *dataplane.Plane) counters {
	var c counters
	for _, w := range p.Stats().Workers {
		c.sent += w.Packets
		c.errs += w.Errors
		c.drops += w.Drops + w.Late
		c.dgrams += w.Datagrams
		c.calls += w.Sendmmsg
		c.segs += w.Segments
		c.fallbacks += w.GSOFallbacks
	}
	return c
}

type snap struct {
	at     time.Time
	c      counters
	xdp    bpf.Counts
	cpu    sysstat.CPUs
	others float64
}

type bench struct {
	opt     options
	xdp     *bpf.XDPCounter
	remotes []netip.AddrPort
	pub     *thread // the publisher's thread, on the worker CPU
	all     []int   // every CPU, as the plane must see them to pin its worker
}

// snap reads the sender's counters and the sink's back to back, then the
// slower CPU figures.
func (b *bench) snap(c counters) (snap, error) {
	s := snap{at: time.Now(), c: c}
	var err error
	if s.xdp, err = b.xdp.Read(); err != nil {
		return s, err
	}
	if s.cpu, err = sysstat.ReadCPUs(); err != nil {
		return s, err
	}
	s.others = othersCPU()
	return s, nil
}

// thread runs functions on one OS thread pinned to one CPU.
type thread struct {
	tid  int
	jobs chan func()
}

func startThread(cpu int) (*thread, error) {
	t := &thread{jobs: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		tid, err := lockTo(cpu)
		t.tid = tid
		errc <- err
		if err != nil {
			return
		}
		for f := range t.jobs {
			f()
		}
	}()
	return t, <-errc
}

// do runs f on the thread and returns a channel closed when f returns.
func (t *thread) do(f func()) <-chan struct{} {
	done := make(chan struct{})
	t.jobs <- func() { defer close(done); f() }
	return done
}

func (t *thread) stop() { close(t.jobs) }

// load is something that runs until stopped and says how far it has got.
type load struct {
	start    func(stop <-chan struct{}) <-chan struct{}
	counters func() counters
	drained  func() bool // everything handed to the sender has been sent
}

// measure runs one load: warm-up, window, drain.
func (b *bench) measure(ctx context.Context, r *result, l load) error {
	base, err := b.snap(l.counters())
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	done := l.start(stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()
	if !sleepCtx(ctx, b.opt.warmup) {
		return ctx.Err()
	}
	a, err := b.snap(l.counters())
	if err != nil {
		return err
	}
	if !sleepCtx(ctx, b.opt.window) {
		return ctx.Err()
	}
	z, err := b.snap(l.counters())
	if err != nil {
		return err
	}
	close(stop)
	<-done
	for end := time.Now().Add(3 * time.Second); !l.drained() && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // frames in flight across the veth
	fin, err := b.snap(l.counters())
	if err != nil {
		return err
	}
	r.fill(base, a, z, fin, b.opt)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fill computes a row from the snapshots: rates over the window a..z,
// loss over everything sent in the row (base..fin).
func (r *result) fill(base, a, z, fin snap, opt options) {
	dt := z.at.Sub(a.at).Seconds()
	pkts := float64(z.xdp.Packets - a.xdp.Packets)
	r.SentMpps = float64(z.c.sent-a.c.sent) / dt / 1e6
	r.Mpps = pkts / dt / 1e6
	// UDP payload (SRTP) bits: the XDP count is of frames, Ethernet on.
	r.Gbps = (float64(z.xdp.Bytes-a.xdp.Bytes) - pkts*frameOverhead) * 8 / dt / 1e9
	var steal float64
	r.CPU, r.Softirq, steal = sysstat.Util(a.cpu, z.cpu, opt.cpu)
	r.CPUOther, _, _ = sysstat.Util(a.cpu, z.cpu, opt.hk)
	r.Others = (z.others-a.others)/dt + steal
	if calls := z.c.calls - a.c.calls; calls > 0 {
		r.PktPerCall = float64(z.c.sent-a.c.sent) / float64(calls)
	}
	if dg := z.c.dgrams - a.c.dgrams; dg > 0 {
		r.PktPerDgram = float64(z.c.sent-a.c.sent) / float64(dg)
	}
	sent := fin.c.sent - base.c.sent
	got := fin.xdp.Packets - base.xdp.Packets
	if sent > 0 {
		r.Loss = 1 - float64(got)/float64(sent)
	}
	r.Errors = fin.c.errs - base.c.errs
	r.Drops = fin.c.drops - base.c.drops
	r.GSOFallbacks = fin.c.fallbacks - base.c.fallbacks
}

// frameOverhead is Ethernet + IPv4 + UDP headers.
const frameOverhead = 14 + 20 + 8

// prober is a limit probe: the socket one (probe_linux.go) or the AF_XDP
// one (xdpprobe_linux.go).
type prober interface {
	step() (int, error)
	counts() counters
	close()
}

// runProbe measures the limit probe (socket or AF_XDP) for a profile, or
// the shaped probe for a profile and rate.
func (b *bench) runProbe(ctx context.Context, r *result) error {
	var shape *media.VideoModel
	if r.Mode == modeShaped {
		m := media.DefaultVideoModel(int(r.Rate * 1e6))
		shape = &m
	}
	var p prober
	var err error
	if r.Mode == modeXDPProbe {
		p, err = newXDPProbe(r.Profile == "gcm", b.opt.local, b.remotes)
	} else {
		p, err = newProbe(r.Profile == "gcm", b.opt.local.Addr(), b.remotes, b.opt.sndbuf, shape)
	}
	if err != nil {
		return err
	}
	defer p.close()
	var perr atomic.Value
	l := load{
		counters: p.counts,
		// sendmmsg returns once the veth has the frames; a copy-mode
		// AF_XDP wake-up too (the probe flushes until the ring is empty).
		drained: func() bool { return true },
		start: func(stop <-chan struct{}) <-chan struct{} {
			done := make(chan struct{})
			ready := make(chan error, 1)
			go func() {
				defer close(done)
				_, err := lockTo(b.opt.cpu) // never unlocked: the thread ends with the probe
				if err == nil {
					err = confineThreads([]int{b.opt.hk}, map[int]bool{b.pub.tid: true}, b.opt.cpu)
				}
				ready <- err
				if err != nil {
					return
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					for range 8 {
						if _, err := p.step(); err != nil {
							perr.Store(err)
							return
						}
					}
				}
			}()
			if err := <-ready; err != nil {
				perr.Store(err)
			}
			return done
		},
	}
	if err := b.measure(ctx, r, l); err != nil {
		return err
	}
	if e, ok := perr.Load().(error); ok {
		return e
	}
	return nil
}

// planeConfig maps a bench mode to the data plane's configuration.
func (b *bench) planeConfig(mode string) (dataplane.Config, error) {
	// MaxMaxLag: the publisher keeps the worker's queue full, hundreds of
	// milliseconds deep, to measure what the plane can do; nothing may be
	// passed over as late (the drop counter includes those).
	cfg := dataplane.Config{CPUs: []int{b.opt.cpu}, SndBuf: b.opt.sndbuf, Logger: b.opt.logger, MaxLag: dataplane.MaxMaxLag}
	switch mode {
	case "socket":
	case "nogso":
		cfg.NoGSO = true
	case "nommsg":
		cfg.NoMMsg = true
	case "batch1":
		cfg.Batch = 1
	case "queue":
		cfg.Mode = dataplane.ModeQueue
	case "afxdp":
		cfg.Mode = dataplane.ModeAFXDP
	default:
		return cfg, fmt.Errorf("unknown mode %q", mode)
	}
	return cfg, nil
}

// runPlane measures one data-plane row.
func (b *bench) runPlane(ctx context.Context, r *result) error {
	cfg, err := b.planeConfig(r.Mode)
	if err != nil {
		return err
	}
	// The plane checks its CPUs against the mask of the thread that starts
	// it: give every thread all CPUs back first.
	if err := confineThreads(b.all, map[int]bool{b.pub.tid: true}, -1); err != nil {
		return err
	}
	p, err := dataplane.New(cfg)
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	ctrl, err := dataplane.ListenReusePort(b.opt.local)
	if err != nil {
		p.Close()
		return err
	}
	defer func() {
		p.Close()
		ctrl.Close()
	}()
	if err := p.Join(b.opt.local); err != nil {
		return err
	}
	src := p.NewSource("bench", 1)
	prof := profiles[r.Profile]
	for i, remote := range b.remotes {
		key := make([]byte, prof.key+prof.salt)
		rand.Read(key)
		h := dataplane.Handoff{
			Profile: prof.p, MasterKey: key[:prof.key], MasterSalt: key[prof.key:],
			Local: b.opt.local, Remote: remote,
			Streams: []dataplane.Stream{{MID: "0", SSRC: uint32(0x10000 + i), PT: 96, ClockRate: 90000}},
		}
		if _, err := p.AddViewer(h, src); err != nil {
			return fmt.Errorf("viewer %d: %w", i, err)
		}
	}
	// The worker has pinned itself by now (AddViewer waits for it).
	to, pinned := []int{b.opt.hk}, b.opt.cpu
	if r.Mode == "queue" {
		to, pinned = []int{b.opt.cpu}, -1 // its goroutines are the data plane
	}
	if err := confineThreads(to, map[int]bool{b.pub.tid: true}, pinned); err != nil {
		return err
	}

	viewers := uint64(len(b.remotes))
	dropUnit := viewers // a worker drops a published packet for all its viewers
	if r.Mode == "queue" {
		dropUnit = 1 // a viewer's queue drops its own copy
	}
	var published atomic.Uint64
	backlog := func() int64 {
		c := planeCounters(p)
		return int64(published.Load()*viewers) - int64(c.sent+c.errs+c.drops*dropUnit)
	}
	model := media.DefaultVideoModel(int(r.Rate * 1e6))
	gen, err := media.NewVideoGen(model, 1, 1)
	if err != nil {
		return err
	}
	l := load{
		counters: func() counters { return planeCounters(p) },
		drained:  func() bool { return backlog() <= 0 },
		start: func(stop <-chan struct{}) <-chan struct{} {
			return b.pub.do(func() {
				limit := int64(b.opt.backlog) * int64(viewers)
				var pace pacer
				for {
					select {
					case <-stop:
						return
					default:
					}
					if backlog() > limit {
						time.Sleep(pace.next(planeCounters(p).sent, limit))
						continue
					}
					f := gen.Next()
					for i, pk := range f.Packets {
						src.Publish(0, pk.Data, f.Key && i == 0)
					}
					published.Add(uint64(len(f.Packets)))
				}
			})
		},
	}
	if err := b.measure(ctx, r, l); err != nil {
		return err
	}
	pps, _ := model.PerViewer()
	r.ViewersPerCore = r.Mpps * 1e6 / pps
	if r.CPU > 0 {
		r.ViewersPerCore /= r.CPU
	}
	if r.Drops > 0 {
		return fmt.Errorf("%d packets dropped at the worker's queue or passed over as late: the publisher outran the plane", r.Drops)
	}
	return nil
}

// pacer chooses how long the publisher sleeps while the backlog is full:
// a quarter of the time the plane takes to send the limit's worth at its
// last measured rate. Its wake-ups preempt the worker on the same CPU, so
// they must be rare (polling every 500 µs had cost a few percent), yet
// never let the backlog run dry.
type pacer struct {
	at   time.Time
	sent uint64
	d    time.Duration
}

const (
	minPace = 500 * time.Microsecond
	maxPace = 20 * time.Millisecond
)

func (p *pacer) next(sent uint64, limit int64) time.Duration {
	now := time.Now()
	if !p.at.IsZero() && sent > p.sent {
		rate := float64(sent-p.sent) / now.Sub(p.at).Seconds()
		p.d = time.Duration(float64(limit) / 4 / rate * float64(time.Second))
	}
	p.at, p.sent = now, sent
	p.d = min(max(p.d, minPace), maxPace)
	return p.d
}

// waitQuiet waits (at most max) for a moment when other processes use
// less than maxOthers cores.
func waitQuiet(ctx context.Context, maxOthers float64, max time.Duration) {
	for end := time.Now().Add(max); time.Now().Before(end); {
		const sample = 150 * time.Millisecond
		a := othersCPU()
		if !sleepCtx(ctx, sample) {
			return
		}
		if (othersCPU()-a)/sample.Seconds() < maxOthers {
			return
		}
	}
}

// runRow measures one run of a row, again when other processes or the
// hypervisor disturbed it, keeping the quietest attempt.
func (b *bench) runRow(ctx context.Context, spec result) (result, error) {
	var best result
	for try := 1; try <= b.opt.tries; try++ {
		if time.Now().Before(b.opt.deadline) {
			waitQuiet(ctx, b.opt.maxOthers, b.opt.quietWait)
		}
		r := spec
		r.Runs = try
		var err error
		if r.Mode == modeProbe || r.Mode == modeShaped || r.Mode == modeXDPProbe {
			err = b.runProbe(ctx, &r)
		} else {
			err = b.runPlane(ctx, &r)
		}
		runtime.GC() // not during the next window
		if err != nil {
			return r, err
		}
		if try == 1 || r.Others < best.Others {
			best = r
		}
		if r.Others <= b.opt.maxOthers || time.Now().After(b.opt.deadline) {
			break
		}
		b.opt.logger.Info("noisy row, again", "row", r.label(), "others_cores", fmt.Sprintf("%.2f", r.Others))
	}
	return best, nil
}

var errNotRoot = errors.New("needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN): run it through make bench-dataplane")
