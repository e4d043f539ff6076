//go:build !linux

package dataplane

import (
	"errors"
	"log/slog"
	"net/netip"
)

// The send path needs sendmmsg, UDP GSO and SO_REUSEPORT steering: Linux
// only. These stubs keep the module building elsewhere; Join fails, so no
// viewer can be added.

var errNotLinux = errors.New("dataplane: the socket data plane needs Linux")

type sockaddr struct{}

type wsock struct {
	n     int
	v6    bool
	gsoOK bool
	mmsg  bool
	segs  []uint16
}

func makeSockaddr(netip.AddrPort, bool) sockaddr { return sockaddr{} }

// sendSock is a send socket; none can be opened here.
type sendSock struct{}

func (*sendSock) Close() error { return nil }

func newWsock(*sendSock, netip.AddrPort, int) (*wsock, error) { return nil, errNotLinux }

func (s *wsock) full() bool { return true }

func (s *wsock) room() int { return 0 }

func (s *wsock) add([]byte, *sockaddr, int, int) {}

func (s *wsock) flush(st *wstats, _ *slog.Logger) {
	st.errors.Add(uint64(s.n))
	s.n = 0
}

func openDataSocket(netip.AddrPort) (*sendSock, error) { return nil, errNotLinux }

func steerToFirst(*sendSock) error { return errNotLinux }

func sndBuf(*sendSock) (int, error) { return 0, errNotLinux }

func setSndBuf(*sendSock, int) error { return errNotLinux }

// setRcvBuf leaves the kernel's default elsewhere.
func setRcvBuf(fd, n int) error { return nil }

// Elsewhere a datagram's arrival is when the ingest reads it.
func setRxTimestamps(fd int) error { return nil }

var rxTimeSpace = 0

func rxTime([]byte) (int64, bool) { return 0, false }
