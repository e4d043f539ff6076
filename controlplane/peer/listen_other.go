//go:build !linux

package peer

import (
	"fmt"
	"net"
	"net/netip"
)

// listenUDP binds a plain socket: not Linux, so no SO_REUSEPORT data plane
// can share the port, but the control plane still works.
func listenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return c, nil
}
