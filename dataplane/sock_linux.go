//go:build linux

package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/spillway-rtc/spillway/bpf"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stage 3b of the fan-out: a worker's send socket on one local address. The
// worker queues messages for many viewers, each with its own destination and,
// for a GSO run (pack.go), its own UDP_SEGMENT control message; flush hands
// them to sendmmsg(2) in as few calls as the kernel allows:
//
//   - the socket is blocking and outside Go's netpoller (sendSock): a full
//     send buffer blocks the worker's thread in the kernel until there is
//     room, at most sendTimeout, then the flush goes on trying until the
//     socket is closed: no spinning, and no netpoller wake-up for every
//     packet the device frees (which cost a quarter of a worker's CPU);
//   - a partial send continues from the first message not sent;
//   - EIO or EINVAL on a GSO message means the kernel or the device refuses
//     segmentation, or the destination is refused: that message's packets
//     are resent one per message, and if the first of them goes out, GSO
//     was to blame and is turned off for this socket only (counted in
//     GSOFallbacks);
//     EMSGSIZE on a GSO message (a segment larger than the path MTU) resends
//     its packets one per message but keeps GSO;
//   - any other error belongs to the first message not sent (sendmmsg
//     reports an error only when it sent nothing): its packets are counted
//     as errors and skipped, the rest go on.
//
// Without mmsg (ablation), the same messages go out one sendmsg each (sendto
// when there is no control message).

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

// cmsgSpace is the room of one UDP_SEGMENT control message.
var cmsgSpace = unix.CmsgSpace(2)

// sendFunc is sendmmsg(2) on fd for n messages at hdrs; tests replace it to
// make the kernel refuse GSO.
type sendFunc func(fd uintptr, hdrs *unix.Mmsghdr, n int) (int, syscall.Errno)

func sysSendmmsg(fd uintptr, hdrs *unix.Mmsghdr, n int) (int, syscall.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(n), 0, 0, 0)
	return int(r), e
}

// testSendmmsg, when set before Join, replaces sendmmsg on the sockets
// opened afterwards.
var testSendmmsg sendFunc

// sendTimeout bounds how long one send call may block on a full buffer
// (SO_SNDTIMEO), so a closing plane is noticed.
const sendTimeout = 100 * time.Millisecond

// sendSock is a data-plane send socket, opened with socket(2) rather than
// package net: a socket in Go's netpoller is woken for every packet the
// device frees. It is blocking, with SO_SNDTIMEO.
type sendSock struct {
	fd     int
	closed atomic.Bool
}

// Close closes the socket once; the plane closes it after its workers stop.
func (c *sendSock) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return unix.Close(c.fd)
}

type wsock struct {
	sock  *sendSock
	local netip.AddrPort
	v6    bool
	gsoOK bool // the kernel takes UDP_SEGMENT here (probed at open, off after a fallback)
	mmsg  bool // sendmmsg, or one call per message (set by the worker before flush)

	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	oob  []byte   // one UDP_SEGMENT cmsg per message
	gso  []uint16 // per message: its gso_size, 0 for a plain datagram
	segs []uint16 // per message: its packets
	n    int      // queued messages

	// A GSO message being resent one packet per message.
	split     [maxGSOSegs]unix.Mmsghdr
	splitIovs [maxGSOSegs]unix.Iovec
	splitSegs [maxGSOSegs]uint16
	splitN    int
	splitPos  int
	suspect   bool // the split follows EIO/EINVAL: is GSO to blame?

	// State of the flush in progress.
	pos     int
	acc     sendCounts
	lastErr syscall.Errno
	sys     sendFunc
}

// newWsock wraps c for a worker that queues at most msgs messages.
func newWsock(c *sendSock, local netip.AddrPort, msgs int) (*wsock, error) {
	s := &wsock{
		sock:  c,
		local: local,
		v6:    local.Addr().Is6(),
		mmsg:  true,
		gsoOK: probeGSO(c),
		sys:   sysSendmmsg,
	}
	if testSendmmsg != nil {
		s.sys = testSendmmsg
	}
	s.init(msgs)
	return s, nil
}

// init allocates the message arrays and writes every control message's
// header once.
func (s *wsock) init(msgs int) {
	s.hdrs = make([]unix.Mmsghdr, msgs)
	s.iovs = make([]unix.Iovec, msgs)
	s.oob = make([]byte, msgs*cmsgSpace)
	s.gso = make([]uint16, msgs)
	s.segs = make([]uint16, msgs)
	for i := 0; i < msgs; i++ {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&s.oob[i*cmsgSpace]))
		h.Level = unix.SOL_UDP
		h.Type = unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
	}
	for i := range s.split {
		s.split[i].Hdr.Iov = &s.splitIovs[i]
		s.split[i].Hdr.SetIovlen(1)
		s.splitSegs[i] = 1
	}
}

// probeGSO reports whether the kernel knows UDP_SEGMENT on c (Linux 4.18).
func probeGSO(c *sendSock) bool {
	_, err := unix.GetsockoptInt(c.fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return err == nil
}

func (s *wsock) full() bool { return s.n == len(s.hdrs) }

// room is how many more messages fit.
func (s *wsock) room() int { return len(s.hdrs) - s.n }

// add queues b for sa as one message of segs packets; gsoSize > 0 makes it a
// GSO datagram cut into gsoSize-byte segments. b and sa must stay untouched
// until the next flush.
func (s *wsock) add(b []byte, sa *sockaddr, gsoSize, segs int) {
	i := s.n
	iov := &s.iovs[i]
	iov.Base = &b[0]
	iov.SetLen(len(b))
	h := &s.hdrs[i].Hdr
	h.Name = (*byte)(unsafe.Pointer(&sa.raw))
	h.Namelen = sa.n
	h.Iov = iov
	h.SetIovlen(1)
	if gsoSize > 0 {
		c := s.oob[i*cmsgSpace : (i+1)*cmsgSpace]
		binary.NativeEndian.PutUint16(c[unix.CmsgLen(0):], uint16(gsoSize))
		h.Control = &c[0]
		h.SetControllen(cmsgSpace)
	} else {
		h.Control = nil
		h.SetControllen(0)
	}
	s.gso[i] = uint16(gsoSize)
	s.segs[i] = uint16(segs)
	s.n++
}

// flush sends every queued message and adds the counts to st.
func (s *wsock) flush(st *wstats, log *slog.Logger) {
	s.pos, s.acc, s.lastErr, s.suspect = 0, sendCounts{}, 0, false
	for s.pos < s.n || s.splitPos < s.splitN {
		if s.send(uintptr(s.sock.fd)) {
			break
		}
		// The buffer stayed full for sendTimeout: try again, unless the
		// socket is closing.
		if s.sock.closed.Load() {
			// Nothing left can be sent.
			for i := s.pos; i < s.n; i++ {
				s.acc.errors += uint64(s.segs[i])
			}
			s.acc.errors += uint64(s.splitN - s.splitPos)
			s.pos, s.splitPos, s.splitN = s.n, 0, 0
			break
		}
	}
	st.add(&s.acc)
	if s.acc.fallbacks != 0 {
		log.Warn("dataplane: kernel refused UDP GSO; off for this socket", "local", s.local)
	}
	if s.lastErr != 0 {
		log.Debug("dataplane: kernel rejected datagrams", "local", s.local,
			"errors", s.acc.errors, "last", s.lastErr.Error())
	}
	s.n = 0
}

// send sends what is queued; false means the buffer stayed full for
// sendTimeout (EAGAIN): call again.
func (s *wsock) send(fd uintptr) bool {
	for {
		if s.splitPos < s.splitN {
			k, e := s.call(fd, s.split[s.splitPos:s.splitN])
			switch {
			case e == unix.EAGAIN:
				return false
			case e == unix.EINTR:
				continue
			case e != 0:
				s.acc.errors++
				s.lastErr = e
				s.splitPos++
			default:
				s.sent(s.split[s.splitPos:s.splitPos+k], s.splitSegs[s.splitPos:])
				s.splitPos += k
				if s.suspect && s.gsoOK {
					// The same bytes went out without UDP_SEGMENT: GSO was
					// the problem, not the destination.
					s.gsoOK = false
					s.acc.fallbacks++
				}
			}
			s.suspect = false
			continue
		}
		s.splitPos, s.splitN = 0, 0
		if s.pos >= s.n {
			return true
		}
		if !s.gsoOK && s.gso[s.pos] > 0 {
			// Queued before GSO went off in this flush: do not ask again.
			s.splitMessage(s.pos)
			s.pos++
			continue
		}
		k, e := s.call(fd, s.hdrs[s.pos:s.n])
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
		case e == 0:
			s.sent(s.hdrs[s.pos:s.pos+k], s.segs[s.pos:])
			s.pos += k
		case s.gso[s.pos] > 0 && (e == unix.EIO || e == unix.EINVAL):
			// GSO refused, or a destination the kernel refuses anyway
			// (port 0 gives EINVAL too): the first packet resent alone
			// tells which.
			s.splitMessage(s.pos)
			s.suspect = true
			s.pos++
		case s.gso[s.pos] > 0 && e == unix.EMSGSIZE:
			s.splitMessage(s.pos)
			s.pos++
		default:
			s.acc.errors += uint64(s.segs[s.pos])
			s.lastErr = e
			s.pos++
		}
	}
}

// call sends hdrs (at least one): all it can with sendmmsg, or the first one
// alone without mmsg. It returns how many messages went out.
func (s *wsock) call(fd uintptr, hdrs []unix.Mmsghdr) (int, syscall.Errno) {
	s.acc.calls++
	if s.mmsg {
		return s.sys(fd, &hdrs[0], len(hdrs))
	}
	h := &hdrs[0].Hdr
	var r uintptr
	var e syscall.Errno
	if h.Controllen == 0 {
		r, _, e = unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(h.Iov.Base)), uintptr(h.Iov.Len),
			0, uintptr(unsafe.Pointer(h.Name)), uintptr(h.Namelen))
	} else {
		r, _, e = unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(h)), 0)
	}
	if e != 0 {
		return 0, e
	}
	hdrs[0].Len = uint32(r)
	return 1, 0
}

// sent counts messages the kernel accepted; segs holds their packet counts.
func (s *wsock) sent(hdrs []unix.Mmsghdr, segs []uint16) {
	for i := range hdrs {
		n := uint64(segs[i])
		s.acc.datagrams++
		s.acc.packets += n
		if n > 1 {
			s.acc.segments += n
		}
		s.acc.bytes += uint64(hdrs[i].Len)
	}
}

// splitMessage prepares message i's packets as separate messages.
func (s *wsock) splitMessage(i int) {
	h := &s.hdrs[i].Hdr
	base := unsafe.Slice(h.Iov.Base, h.Iov.Len)
	size := int(s.gso[i])
	n := 0
	for off := 0; off < len(base); off += size {
		end := min(off+size, len(base))
		iov := &s.splitIovs[n]
		iov.Base = &base[off]
		iov.SetLen(end - off)
		m := &s.split[n].Hdr
		m.Name, m.Namelen = h.Name, h.Namelen
		m.Control = nil
		m.SetControllen(0)
		n++
	}
	s.splitN, s.splitPos = n, 0
}

// openDataSocket binds a send socket into local's reuseport group (the
// control plane bound its socket there first). On a specific address it is
// connect()ed to a dummy peer, so the kernel never picks it for inbound
// datagrams (a connected member only matches its peer).
func openDataSocket(local netip.AddrPort) (*sendSock, error) {
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(local.Port()), Addr: local.Addr().As16()}
	var dummy unix.Sockaddr = &unix.SockaddrInet6{Port: 1, Addr: netip.IPv6Loopback().As16()}
	if a := local.Addr().Unmap(); a.Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: int(local.Port()), Addr: a.As4()}
		dummy = &unix.SockaddrInet4{Port: 1, Addr: [4]byte{127, 0, 0, 1}}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	c := &sendSock{fd: fd}
	fail := func(what string, err error) (*sendSock, error) {
		c.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	if family == unix.AF_INET6 {
		// As package net binds the control socket ("udp6"): IPv6 only.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("IPV6_V6ONLY", err)
		}
	}
	tv := unix.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fail("SO_SNDTIMEO", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(fmt.Sprintf("bind %s", local), err)
	}
	if local.Addr().IsUnspecified() {
		return c, nil
	}
	if err := unix.Connect(fd, dummy); err != nil {
		return fail("connect to dummy peer", err)
	}
	return c, nil
}

// steerToFirst keeps inbound traffic on the group's first member, the
// control socket (bpf.SteerToFirst).
func steerToFirst(c *sendSock) error { return bpf.SteerToFirst(c.fd) }

// sndBuf reads c's SO_SNDBUF (the kernel reports twice the value set).
func sndBuf(c *sendSock) (int, error) {
	return unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
}

// setSndBuf sets c's send buffer to n bytes: SO_SNDBUFFORCE when the
// process may (CAP_NET_ADMIN, beyond net.core.wmem_max), else SO_SNDBUF.
func setSndBuf(c *sendSock, n int) error {
	err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
	if errors.Is(err, unix.EPERM) {
		err = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n)
	}
	if err != nil {
		return fmt.Errorf("SO_SNDBUF %d: %w", n, err)
	}
	return nil
}

// setRxTimestamps asks the kernel to stamp each datagram fd receives with
// its arrival time (SO_TIMESTAMPNS, CLOCK_REALTIME).
func setRxTimestamps(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	return nil
}

// rxTimeSpace is the control-message room a received datagram's time takes.
var rxTimeSpace = unix.CmsgSpace(16)

// rxTime finds the arrival time in a datagram's control messages, in
// nanoseconds of CLOCK_REALTIME, without allocating.
func rxTime(oob []byte) (int64, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && n >= unix.CmsgLen(16) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return ts.Nano(), true
		}
		oob = oob[min(len(oob), unix.CmsgSpace(n-unix.CmsgLen(0))):]
	}
	return 0, false
}

// setRcvBuf sets fd's receive buffer to n bytes: SO_RCVBUFFORCE when the
// process may (CAP_NET_ADMIN, beyond net.core.rmem_max), else SO_RCVBUF,
// which the kernel caps at rmem_max.
func setRcvBuf(fd, n int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	if errors.Is(err, unix.EPERM) {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
	if err != nil {
		return fmt.Errorf("SO_RCVBUF %d: %w", n, err)
	}
	return nil
}
