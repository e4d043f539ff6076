//go:build linux

package peer

import (
	"net"
	"net/netip"

	"github.com/spillway-rtc/spillway/dataplane"
)

// listenUDP binds with SO_REUSEPORT so the data plane's send sockets can
// join the same address and port.
func listenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	return dataplane.ListenReusePort(addr)
}
