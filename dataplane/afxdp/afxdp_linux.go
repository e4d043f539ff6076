//go:build linux

// Package afxdp transmits frames through an AF_XDP socket, on
// golang.org/x/sys/unix alone: the UMEM the frames live in, the TX and
// completion rings shared with the kernel, and the wake-ups the kernel asks
// for. The data plane owns one Socket per worker and NIC queue; nothing
// here locks, so a Socket belongs to one goroutine.
//
// A frame's life: Frame hands out a free one, the caller writes the frame
// into it, Queue puts its descriptor on the TX ring (not yet visible to
// the kernel), Flush publishes every queued descriptor and wakes the
// kernel if it asked to be woken, and the kernel returns the frame on the
// completion ring once sent, where Frame finds it again.
//
// Zero-copy (the NIC reads the UMEM itself) is tried first unless turned
// off; a driver without it (veth, most virtual NICs) refuses the bind,
// and copy mode (the kernel copies each frame into an skb) takes over,
// with the refusal kept for the log and the Admin API.
//
// The UDP checksum is left to the device where it can finish it: every
// copy-mode socket asks for it through TX metadata (Linux 6.11), and the
// kernel or the NIC completes it. A zero-copy socket writes it in
// software, as a driver that does not implement the metadata would send
// the pseudo-header's sum as the checksum.
package afxdp

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is one AF_XDP socket bound to one queue, with its own UMEM.
type Socket struct {
	fd        int
	cfg       Config
	where     string // interface and queue, for errors
	umem      []byte
	rings     [][]byte // mappings of the TX and completion rings
	zeroCopy  bool
	refused   error // why zero-copy was not used (auto)
	offload   bool  // checksums finished by the kernel or NIC
	frameSize uint64

	tx   txRing
	comp compRing
	free []uint64 // frames neither queued nor in the kernel

	// Counters, the owner's alone.
	Kicks, Retries, Exhausted uint64
}

type txRing struct {
	prod, cons, flags *uint32
	descs             []unix.XDPDesc
	mask              uint32
	next              uint32 // the producer index the next Queue fills
}

type compRing struct {
	prod, cons *uint32
	addrs      []uint64
	mask       uint32
}

// Open makes the socket: zero-copy first unless cfg says otherwise, then
// copy mode (auto). With ZeroCopyOn a refusal is the error.
func Open(cfg Config) (*Socket, error) {
	cfg, err := cfg.Check()
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("ifindex %d", cfg.Ifindex)
	if ifi, err := net.InterfaceByIndex(cfg.Ifindex); err == nil {
		where = ifi.Name
	}
	where = fmt.Sprintf("%s queue %d", where, cfg.Queue)
	if cfg.ZeroCopy == ZeroCopyOff {
		s, err := open(cfg, false)
		if err != nil {
			return nil, fmt.Errorf("afxdp: %s: %w", where, err)
		}
		s.where = where
		return s, nil
	}
	s, zerr := open(cfg, true)
	if zerr == nil {
		s.where = where
		return s, nil
	}
	if cfg.ZeroCopy == ZeroCopyOn {
		return nil, fmt.Errorf("afxdp: zero-copy refused on %s (afxdp/zerocopy=on; auto would fall back to copy mode): %w", where, zerr)
	}
	s, err = open(cfg, false)
	if err != nil {
		return nil, fmt.Errorf("afxdp: %s: zero-copy refused (%v), and copy mode: %w", where, zerr, err)
	}
	s.refused, s.where = zerr, where
	return s, nil
}

func open(cfg Config, zeroCopy bool) (*Socket, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_XDP): %w", err)
	}
	s := &Socket{fd: fd, cfg: cfg, frameSize: uint64(cfg.FrameSize), zeroCopy: zeroCopy}
	fail := func(what string, err error) (*Socket, error) {
		s.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	n := cfg.RingSize
	s.umem, err = unix.Mmap(-1, 0, n*cfg.FrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap UMEM", err)
	}
	// Copy mode hands the checksum to the kernel through TX metadata;
	// a kernel before 6.11 refuses the metadata flag, and the data
	// plane then writes checksums itself.
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&s.umem[0]))), Len: uint64(len(s.umem)), Size: uint32(cfg.FrameSize)}
	if !zeroCopy {
		// The length counts only with its flag (Linux 6.11 on).
		reg.Tx_metadata_len, reg.Flags = metaLen, unix.XDP_UMEM_TX_METADATA_LEN
		s.offload = true
	}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		if !s.offload || err != unix.EINVAL {
			return fail("XDP_UMEM_REG", err)
		}
		reg.Tx_metadata_len, reg.Flags, s.offload = 0, 0, false
		if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return fail("XDP_UMEM_REG", err)
		}
	}
	// The fill ring must exist for the bind, though nothing is received.
	for _, o := range []struct{ opt, n int }{{unix.XDP_UMEM_FILL_RING, MinRingSize}, {unix.XDP_UMEM_COMPLETION_RING, n}, {unix.XDP_TX_RING, n}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, o.n); err != nil {
			return fail(fmt.Sprintf("ring size (option %d)", o.opt), err)
		}
	}
	if cfg.Budget > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, cfg.Budget); err != nil {
			return fail("XDP_MAX_TX_SKB_BUDGET", err)
		}
	}
	if cfg.BusyPoll > 0 {
		for _, o := range []struct{ opt, v int }{
			{unix.SO_PREFER_BUSY_POLL, 1},
			{unix.SO_BUSY_POLL, int(cfg.BusyPoll / time.Microsecond)},
			{unix.SO_BUSY_POLL_BUDGET, min(n, 64)},
		} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.opt, o.v); err != nil {
				return fail(fmt.Sprintf("busy poll (option %d)", o.opt), err)
			}
		}
	}
	var off unix.XDPMmapOffsets
	ol := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&ol)), 0); e != 0 {
		return fail("XDP_MMAP_OFFSETS", e)
	}
	tx, err := unix.Mmap(fd, unix.XDP_PGOFF_TX_RING, int(off.Tx.Desc)+n*int(unsafe.Sizeof(unix.XDPDesc{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap TX ring", err)
	}
	s.rings = append(s.rings, tx)
	cq, err := unix.Mmap(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, int(off.Cr.Desc)+n*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("mmap completion ring", err)
	}
	s.rings = append(s.rings, cq)
	s.tx = txRing{
		prod:  (*uint32)(unsafe.Pointer(&tx[off.Tx.Producer])),
		cons:  (*uint32)(unsafe.Pointer(&tx[off.Tx.Consumer])),
		flags: (*uint32)(unsafe.Pointer(&tx[off.Tx.Flags])),
		descs: unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&tx[off.Tx.Desc])), n),
		mask:  uint32(n - 1),
	}
	s.tx.next = atomic.LoadUint32(s.tx.prod)
	s.comp = compRing{
		prod:  (*uint32)(unsafe.Pointer(&cq[off.Cr.Producer])),
		cons:  (*uint32)(unsafe.Pointer(&cq[off.Cr.Consumer])),
		addrs: unsafe.Slice((*uint64)(unsafe.Pointer(&cq[off.Cr.Desc])), n),
		mask:  uint32(n - 1),
	}
	flags := uint16(unix.XDP_USE_NEED_WAKEUP)
	if zeroCopy {
		flags |= unix.XDP_ZEROCOPY
	} else {
		flags |= unix.XDP_COPY
	}
	// A socket just closed on this queue releases it from a workqueue:
	// EBUSY can follow a close for a moment.
	for try := 0; ; try++ {
		err := unix.Bind(fd, &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(cfg.Ifindex), QueueID: uint32(cfg.Queue)})
		if err == nil {
			break
		}
		if err != unix.EBUSY || try == 50 {
			return fail(fmt.Sprintf("bind(AF_XDP, %s)", map[bool]string{true: "XDP_ZEROCOPY", false: "XDP_COPY"}[zeroCopy]), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.free = make([]uint64, 0, n)
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, uint64(i)*s.frameSize)
	}
	return s, nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ZeroCopy reports whether the NIC reads frames from the UMEM itself.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// Refused is why zero-copy is not in use, when auto fell back to copy
// mode; nil otherwise.
func (s *Socket) Refused() error { return s.refused }

// Offload reports whether the device finishes UDP checksums: the caller
// writes the pseudo-header's sum (udpframe's PutPartial) and passes the
// checksum's place to Queue.
func (s *Socket) Offload() bool { return s.offload }

// Mode is "zero-copy" or "copy".
func (s *Socket) Mode() string {
	if s.zeroCopy {
		return "zero-copy"
	}
	return "copy"
}

// QueueID is the NIC queue the socket is bound to.
func (s *Socket) QueueID() int { return s.cfg.Queue }

// Room is the most bytes a frame holds.
func (s *Socket) Room() int { return int(s.frameSize) - Headroom }

// Frame returns a free frame's data (Room bytes) and its handle for
// Queue. It reaps what the kernel has sent when none is free, and reports
// false when every frame is still queued or in flight.
func (s *Socket) Frame() ([]byte, uint64, bool) {
	if len(s.free) == 0 && s.reap() == 0 {
		s.Exhausted++
		return nil, 0, false
	}
	a := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	d := a + Headroom
	return s.umem[d : a+s.frameSize : a+s.frameSize], a, true
}

// Release returns a frame taken by Frame and not queued.
func (s *Socket) Release(frame uint64) { s.free = append(s.free, frame) }

// Queue puts frame (from Frame) on the TX ring with its first n bytes.
// csumStart, when above 0 on an Offload socket, asks the device to finish
// the checksum that covers the frame from csumStart, stored at csumStart +
// csumOffset. The kernel sees it at the next Flush.
func (s *Socket) Queue(frame uint64, n, csumStart, csumOffset int) {
	d := unix.XDPDesc{Addr: frame + Headroom, Len: uint32(n)}
	if csumStart > 0 && s.offload {
		m := s.umem[frame+Headroom-metaLen : frame+Headroom]
		*(*uint64)(unsafe.Pointer(&m[0])) = unix.XDP_TXMD_FLAGS_CHECKSUM
		*(*uint16)(unsafe.Pointer(&m[8])) = uint16(csumStart)
		*(*uint16)(unsafe.Pointer(&m[10])) = uint16(csumOffset)
		d.Options = unix.XDP_TX_METADATA
	}
	// No room check: a frame is queued once, and the ring has an entry per
	// frame.
	s.tx.descs[s.tx.next&s.tx.mask] = d
	s.tx.next++
}

// Pending is how many queued frames the kernel has not taken yet.
func (s *Socket) Pending() int { return int(s.tx.next - atomic.LoadUint32(s.tx.cons)) }

// Flush publishes the queued frames and wakes the kernel when it needs
// it. Copy mode sends in the wake-up call, at most the TX budget per call,
// so Flush calls again until the ring is empty or the kernel stops taking
// frames (a full device queue); what is left goes at the next Flush.
func (s *Socket) Flush() error {
	atomic.StoreUint32(s.tx.prod, s.tx.next)
	for tries := 0; s.Pending() > 0 && atomic.LoadUint32(s.tx.flags)&unix.XDP_RING_NEED_WAKEUP != 0; tries++ {
		if tries == maxKicks {
			break
		}
		s.Kicks++
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0, unix.EINTR:
		case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
			// The budget ran out (EAGAIN), or the device queue is full:
			// take back what was sent and go on.
			s.Retries++
			s.reap()
		default:
			return fmt.Errorf("afxdp: sendto on %s: %w", s.where, e)
		}
	}
	s.reap()
	return nil
}

// maxKicks bounds one Flush: a ring of 32768 at a budget of 32 is 1024
// calls; a device that takes nothing gets its frames at the next Flush.
const maxKicks = 2048

// reap returns the frames the kernel has sent to the free list.
func (s *Socket) reap() int {
	c := &s.comp
	prod := atomic.LoadUint32(c.prod)
	cons := *c.cons
	n := int(prod - cons)
	for ; cons != prod; cons++ {
		s.free = append(s.free, c.addrs[cons&c.mask]&^(s.frameSize-1))
	}
	atomic.StoreUint32(c.cons, cons)
	return n
}

// Stats are the kernel's counters of the socket.
func (s *Socket) Stats() (Statistics, error) {
	var st Statistics
	l := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return st, fmt.Errorf("afxdp: XDP_STATISTICS: %w", e)
	}
	return st, nil
}

// Close unmaps the rings first (a mapping keeps the socket, and its
// queue, alive), closes the socket and frees the UMEM. Idempotent.
func (s *Socket) Close() error {
	var errs []error
	for _, m := range s.rings {
		errs = append(errs, unix.Munmap(m))
	}
	s.rings = nil
	if s.fd >= 0 {
		errs = append(errs, unix.Close(s.fd))
		s.fd = -1
	}
	if s.umem != nil {
		errs = append(errs, unix.Munmap(s.umem))
		s.umem = nil
	}
	return errors.Join(errs...)
}
