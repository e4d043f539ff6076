//go:build !linux

package dataplane

import (
	"errors"
	"net"
	"net/netip"
)

// The send path needs sendmmsg and SO_REUSEPORT steering: Linux only. These
// stubs keep the module building elsewhere; Join fails, so no viewer can be
// added.

var errNotLinux = errors.New("dataplane: the socket data plane needs Linux")

type sockaddr struct{}

type wsock struct {
	n  int
	v6 bool
}

func makeSockaddr(netip.AddrPort, bool) sockaddr { return sockaddr{} }

func newWsock(*net.UDPConn, netip.AddrPort) (*wsock, error) { return nil, errNotLinux }

func (s *wsock) full() bool { return true }

func (s *wsock) add([]byte, *sockaddr) {}

func (s *wsock) flush(w *worker) {
	w.errors.Add(uint64(s.n))
	s.n = 0
}

func openDataSocket(netip.AddrPort) (*net.UDPConn, error) { return nil, errNotLinux }

func steerToFirst(*net.UDPConn) error { return errNotLinux }
