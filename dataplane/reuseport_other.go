//go:build !linux

package dataplane

import (
	"net"
	"net/netip"
)

// ListenReusePort is Linux only (SO_REUSEPORT groups with steering).
func ListenReusePort(netip.AddrPort) (*net.UDPConn, error) { return nil, errNotLinux }
