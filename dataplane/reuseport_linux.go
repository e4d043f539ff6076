//go:build linux

package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenReusePort binds a UDP socket at addr with SO_REUSEPORT, so the data
// plane's send sockets can join the same IP:port. The control plane binds
// its socket first with this and reads everything that arrives on the port:
// every viewer's STUN, DTLS and RTCP, so it gets DefaultRcvBuf.
func ListenReusePort(addr netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr == nil {
				serr = setRcvBuf(int(fd), DefaultRcvBuf)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen %s with SO_REUSEPORT: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}
