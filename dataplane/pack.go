package dataplane

// Stage 3a of the fan-out: GSO packing. A worker encrypts one viewer's
// packets back to back in its scratch space, so a run of them is one
// contiguous buffer; the kernel cuts such a buffer into UDP datagrams of
// gso_size bytes (UDP_SEGMENT), the last one possibly shorter. A run is
// therefore:
//
//   - consecutive packets of ONE viewer, never reordered;
//   - all of the same size, except the last, which may be shorter and then
//     ends the run; a longer packet ends it too;
//   - at most maxGSOSegs packets and maxGSOBytes bytes.
//
// This file is pure logic (no socket), table-tested in pack_test.go.

const (
	// maxGSOSegs is the most segments we put in one datagram (the kernel's
	// UDP_MAX_SEGMENTS is 64 on older kernels, 128 on newer).
	maxGSOSegs = 64
	// maxGSOBytes is the largest UDP payload one send may carry on either
	// family: 65535 minus an IPv6 header (40) and the UDP header (8). IPv4
	// would allow 20 bytes more; one limit keeps the rule simple.
	maxGSOBytes = 65535 - 40 - 8
)

// gsoRun is one datagram being built: segs packets starting at off, every
// one size bytes except possibly the last.
type gsoRun struct {
	off   int // offset of the first packet in the scratch space
	size  int // segment size: the first packet's length
	segs  int
	bytes int
}

// start begins a run with one packet of n bytes at off.
func (r *gsoRun) start(off, n int) { *r = gsoRun{off: off, size: n, segs: 1, bytes: n} }

// open reports whether the run holds any packet.
func (r *gsoRun) open() bool { return r.segs > 0 }

// extend adds a packet of n bytes at off if it may continue the run: it is
// contiguous, not longer than the segment size, the run has not ended with a
// short segment, and both limits hold. It reports whether it did.
func (r *gsoRun) extend(off, n int) bool {
	switch {
	case r.segs == 0,
		off != r.off+r.bytes,     // not contiguous (a flush came between)
		n > r.size,               // longer than a segment
		r.bytes != r.segs*r.size, // a short segment already ended the run
		r.segs >= maxGSOSegs,     // segment limit
		r.bytes+n > maxGSOBytes:  // size limit
		return false
	}
	r.segs++
	r.bytes += n
	return true
}

// gsoSize is the UDP_SEGMENT value of the run, 0 when it needs none (one
// packet: a plain datagram).
func (r *gsoRun) gsoSize() int {
	if r.segs < 2 {
		return 0
	}
	return r.size
}

// packRuns lays packets of the given sizes, contiguous from offset 0, into
// runs; with gso false every packet is its own datagram. The worker does the
// same thing one packet at a time (worker.put); this is its reference.
func packRuns(sizes []int, gso bool) []gsoRun {
	var runs []gsoRun
	var r gsoRun
	off := 0
	for _, n := range sizes {
		if !gso || !r.extend(off, n) {
			if r.open() {
				runs = append(runs, r)
			}
			r.start(off, n)
		}
		off += n
	}
	if r.open() {
		runs = append(runs, r)
	}
	return runs
}
