package dataplane

import (
	"runtime"
	"sync/atomic"
	"time"
)

// NACK history without a copy per viewer: a worker keeps the last History
// published packets of each source stream it serves (retainRing, holding the
// worker's reference to the shared buffer), and each outgoing stream keeps
// only which ring slot and which output sequence number and timestamp it
// sent (histEntry). A retransmission rebuilds the same plaintext and
// encrypts it again with the same SRTP index, which yields the same
// ciphertext: the viewer accepts it exactly like the original.

// retainRing holds a worker's references to recently published packets of
// one source stream.
type retainRing struct {
	slots []*packet
	head  uint64 // position of the next push
	dead  bool   // the worker stopped serving the source; nothing is valid
}

func newRetainRing(size int) *retainRing {
	return &retainRing{slots: make([]*packet, size)}
}

// push stores p (taking over the worker's reference) and returns its position.
func (r *retainRing) push(p *packet) uint64 {
	i := r.head & uint64(len(r.slots)-1)
	if old := r.slots[i]; old != nil {
		old.release()
	}
	r.slots[i] = p
	r.head++
	return r.head - 1
}

// oldest is the position of the oldest packet still retained.
func (r *retainRing) oldest() uint64 {
	if n := uint64(len(r.slots)); r.head > n {
		return r.head - n
	}
	return 0
}

// get returns the packet at pos if it is still retained.
func (r *retainRing) get(pos uint64) *packet {
	if r.dead || pos >= r.head || r.head-pos > uint64(len(r.slots)) {
		return nil
	}
	return r.slots[pos&uint64(len(r.slots)-1)]
}

// close releases every retained packet.
func (r *retainRing) close() {
	for i, p := range r.slots {
		if p != nil {
			p.release()
			r.slots[i] = nil
		}
	}
	r.dead = true
}

// histEntry records one sent packet of an outgoing stream.
type histEntry struct {
	ring *retainRing
	pos  uint64
	ts   uint32
	seq  uint16
	used bool
}

// counters are an outgoing stream's sender-report counters. The worker is
// the only writer; any goroutine may read. LastRTPTime and LastSentAt must be
// read as a pair, so they sit behind a sequence lock made of atomics.
type counters struct {
	packets atomic.Uint32
	octets  atomic.Uint32
	gen     atomic.Uint32 // odd while the pair below is being written
	rtpTime atomic.Uint32
	sentAt  atomic.Int64 // unix nanoseconds

	// What the current batch adds, owned by the viewer's worker and
	// published once per batch: an atomic store is a locked instruction,
	// too dear to pay six times per packet per viewer.
	addPackets, addOctets, addTime uint32
	dirty                          bool
}

// add counts one packet sent in this batch.
func (c *counters) add(octets int, rtpTime uint32) {
	c.addPackets++
	c.addOctets += uint32(octets)
	c.addTime = rtpTime
	c.dirty = true
}

// publish makes what the batch added visible to the control plane; now is
// when the batch was sent.
func (c *counters) publish(now int64) {
	if !c.dirty {
		return
	}
	c.packets.Store(c.packets.Load() + c.addPackets)
	c.octets.Store(c.octets.Load() + c.addOctets)
	g := c.gen.Load()
	c.gen.Store(g + 1)
	c.rtpTime.Store(c.addTime)
	c.sentAt.Store(now)
	c.gen.Store(g + 2)
	c.addPackets, c.addOctets, c.dirty = 0, 0, false
}

// sent counts one packet and publishes it at once.
func (c *counters) sent(octets int, rtpTime uint32, now int64) {
	c.add(octets, rtpTime)
	c.publish(now)
}

func (c *counters) snapshot() StreamCounters {
	for {
		g := c.gen.Load()
		if g&1 != 0 {
			runtime.Gosched() // the worker is between two stores
			continue
		}
		sc := StreamCounters{
			Packets:     c.packets.Load(),
			Octets:      c.octets.Load(),
			LastRTPTime: c.rtpTime.Load(),
		}
		at := c.sentAt.Load()
		if c.gen.Load() == g {
			if at != 0 {
				sc.LastSentAt = time.Unix(0, at)
			}
			return sc
		}
	}
}
