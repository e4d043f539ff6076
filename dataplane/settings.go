package dataplane

import (
	"errors"
	"fmt"
	"time"
)

// Live settings: the knobs written at runtime. Each takes effect at the
// workers' next batch; an invalid value returns an error and the old value
// stays.

// SetGSO turns UDP GSO on or off for every worker. On, it applies to the
// sockets whose kernel takes it (probed at Join, off for good after a
// fallback).
func (p *Plane) SetGSO(on bool) { p.gso.Store(on) }

// SetPrefetch turns on or off the prefetch of the next viewers' state
// while one is served (warm.go).
func (p *Plane) SetPrefetch(on bool) { p.prefetch.Store(on) }

// SetMMsg chooses sendmmsg (on) or one send call per datagram (off).
func (p *Plane) SetMMsg(on bool) { p.mmsg.Store(on) }

// SetBatch sets the most packets a worker takes before it sends, in [1, 1024].
func (p *Plane) SetBatch(n int) error {
	if err := checkBatch(n); err != nil {
		return err
	}
	p.batch.Store(int64(n))
	return nil
}

// SetFlushInterval sets the longest a worker holds a packet to fill a
// batch, in (0, 1s].
func (p *Plane) SetFlushInterval(d time.Duration) error {
	if err := checkFlushInterval(d); err != nil {
		return err
	}
	p.flush.Store(int64(d))
	return nil
}

// SetMaxLag sets the oldest a packet may be, past the flush interval, when
// a socket worker takes it, in [1ms, 1m]: older packets are dropped and
// counted in Late. Queue mode, the Janus-like baseline, queues as Janus does.
func (p *Plane) SetMaxLag(d time.Duration) error {
	if err := checkMaxLag(d); err != nil {
		return err
	}
	p.maxLag.Store(int64(d))
	return nil
}

// SetCallBytes sets the most bytes of datagrams a worker hands the kernel
// in one send call, in [64 KiB, 1632 KiB]. Smaller keeps them in the
// core's L2 cache until the kernel copies them; larger makes fewer calls.
func (p *Plane) SetCallBytes(n int) error {
	if err := checkCallBytes(n); err != nil {
		return err
	}
	p.call.Store(int64(n))
	return nil
}

// SetSndBuf sets SO_SNDBUF on every send socket, now and on later Joins;
// 0 restores the kernel's default.
func (p *Plane) SetSndBuf(n int) error {
	if err := checkSockBuf("sndbuf", n); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPlaneClosed
	}
	v := n
	if v == 0 {
		v = p.defSnd / 2 // the kernel reports twice what it was given
	}
	var errs []error
	if v > 0 {
		for _, conns := range p.locals {
			for _, c := range conns {
				if err := setSndBuf(c, v); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Some sockets may have the new size: put the old one back.
		if old := p.sndbuf; old != 0 || p.defSnd > 0 {
			if old == 0 {
				old = p.defSnd / 2
			}
			for _, conns := range p.locals {
				for _, c := range conns {
					_ = setSndBuf(c, old)
				}
			}
		}
		return fmt.Errorf("dataplane: sndbuf %d: %w", n, err)
	}
	p.sndbuf = n
	return nil
}

// Config returns the configuration in effect: as started, with the live
// settings' current values.
func (p *Plane) Config() Config {
	c := p.cfg
	c.CPUs = append([]int(nil), c.CPUs...)
	c.Batch = int(p.batch.Load())
	c.FlushInterval = time.Duration(p.flush.Load())
	c.MaxLag = time.Duration(p.maxLag.Load())
	c.NoGSO = !p.gso.Load()
	c.NoMMsg = !p.mmsg.Load()
	c.NoPrefetch = !p.prefetch.Load()
	c.CallBytes = int(p.call.Load())
	c.AFXDP.Queues = append([]int(nil), c.AFXDP.Queues...)
	p.mu.Lock()
	c.SndBuf = p.sndbuf
	c.AFXDP.ZeroCopy = p.zc
	p.mu.Unlock()
	return c
}
