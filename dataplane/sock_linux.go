//go:build linux

package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stage 3 of the fan-out: a worker's send socket on one local address. The
// worker queues (buffer, destination) messages for many viewers, then flush
// hands them all to sendmmsg(2), as few calls as the kernel allows:
//
//   - a partial send continues from the first message not sent;
//   - EAGAIN (send buffer full) returns to Go's poller, which waits until
//     the socket is writable and calls us again: no spinning;
//   - any other error belongs to the first message not sent (sendmmsg
//     reports an error only when it sent nothing): that message is counted
//     and skipped, the rest go on.

// sockaddr is a viewer's destination in the kernel's format, built once per
// path change so the send path never converts addresses.
type sockaddr struct {
	raw unix.RawSockaddrInet6 // large enough for an IPv4 address too
	n   uint32
}

// badFamily makes the kernel reject a message (EAFNOSUPPORT or EINVAL)
// instead of treating an unusable address as "unspecified".
const badFamily = unix.AF_UNIX

func makeSockaddr(remote netip.AddrPort, v6 bool) sockaddr {
	var sa sockaddr
	a := remote.Addr()
	port := (*[2]byte)(unsafe.Pointer(&sa.raw.Port))
	port[0], port[1] = byte(remote.Port()>>8), byte(remote.Port())
	switch {
	case !a.IsValid() || (!v6 && !a.Unmap().Is4()):
		sa.raw.Family = badFamily
		sa.n = unix.SizeofSockaddrInet6
	case !v6:
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		in4.Family = unix.AF_INET
		in4.Addr = a.Unmap().As4()
		sa.n = unix.SizeofSockaddrInet4
	default:
		sa.raw.Family = unix.AF_INET6
		sa.raw.Addr = a.As16() // an IPv4 address becomes v4-mapped
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.raw.Scope_id = uint32(ifi.Index)
			} else if n, err := strconv.ParseUint(z, 10, 32); err == nil {
				sa.raw.Scope_id = uint32(n)
			}
		}
		sa.n = unix.SizeofSockaddrInet6
	}
	return sa
}

type wsock struct {
	conn  *net.UDPConn
	rc    syscall.RawConn
	local netip.AddrPort
	v6    bool

	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	n    int // queued messages

	// State of the flush in progress, for write (called by the poller).
	pos     int
	w       *worker
	lastErr syscall.Errno
	write   func(fd uintptr) bool // bound once: passing it does not allocate
}

func newWsock(c *net.UDPConn, local netip.AddrPort) (*wsock, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw conn: %w", err)
	}
	s := &wsock{
		conn:  c,
		rc:    rc,
		local: local,
		v6:    local.Addr().Is6(),
		hdrs:  make([]unix.Mmsghdr, maxMsgs),
		iovs:  make([]unix.Iovec, maxMsgs),
	}
	s.write = s.sendmmsg
	return s, nil
}

func (s *wsock) full() bool { return s.n == len(s.hdrs) }

// add queues b for sa. Both must stay untouched until the next flush.
func (s *wsock) add(b []byte, sa *sockaddr) {
	iov := &s.iovs[s.n]
	iov.Base = &b[0]
	iov.SetLen(len(b))
	h := &s.hdrs[s.n].Hdr
	h.Name = (*byte)(unsafe.Pointer(&sa.raw))
	h.Namelen = sa.n
	h.Iov = iov
	h.SetIovlen(1)
	s.n++
}

func (s *wsock) flush(w *worker) {
	s.pos, s.w, s.lastErr = 0, w, 0
	errs := w.errors.Load()
	for s.pos < s.n {
		if err := s.rc.Write(s.write); err != nil {
			// The socket is closed: nothing left can be sent.
			w.errors.Add(uint64(s.n - s.pos))
			break
		}
	}
	if s.lastErr != 0 {
		w.p.cfg.Logger.Debug("dataplane: kernel rejected datagrams",
			"local", s.local, "errors", w.errors.Load()-errs, "last", s.lastErr.Error())
	}
	s.n, s.w = 0, nil
}

// sendmmsg runs under the poller's write lock; false means "wait until
// writable and call again".
func (s *wsock) sendmmsg(fd uintptr) bool {
	var sent, bytes, calls, errs uint64
	defer func() {
		s.w.packets.Add(sent)
		s.w.bytes.Add(bytes)
		s.w.calls.Add(calls)
		s.w.errors.Add(errs)
	}()
	for s.pos < s.n {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&s.hdrs[s.pos])), uintptr(s.n-s.pos), 0, 0, 0)
		calls++
		switch e {
		case 0:
			k := int(r)
			for i := s.pos; i < s.pos+k; i++ {
				bytes += uint64(s.hdrs[i].Len)
			}
			sent += uint64(k)
			s.pos += k
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			errs++
			s.lastErr = e
			s.pos++
		}
	}
	return true
}

// openDataSocket binds a send socket into local's reuseport group. On a
// specific address it is connect()ed to a dummy peer, so the kernel never
// picks it for inbound datagrams (a connected member only matches its peer).
func openDataSocket(local netip.AddrPort) (*net.UDPConn, error) {
	c, err := ListenReusePort(local)
	if err != nil {
		return nil, err
	}
	if local.Addr().IsUnspecified() {
		return c, nil
	}
	var dummy unix.Sockaddr = &unix.SockaddrInet4{Port: 1, Addr: [4]byte{127, 0, 0, 1}}
	if local.Addr().Is6() {
		dummy = &unix.SockaddrInet6{Port: 1, Addr: netip.IPv6Loopback().As16()}
	}
	if err := control(c, func(fd int) error { return unix.Connect(fd, dummy) }); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to dummy peer: %w", err)
	}
	return c, nil
}

// steerToFirst attaches "ret #0" to c's reuseport group: every inbound
// datagram goes to the member bound first, the control plane's socket.
// Members keep their index while the control socket stays open.
func steerToFirst(c *net.UDPConn) error {
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	err := control(c, func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	})
	if err != nil {
		return fmt.Errorf("attach reuseport cBPF: %w", err)
	}
	return nil
}

func control(c *net.UDPConn, f func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
