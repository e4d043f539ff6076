// Package nexthop tells the data plane where the frames of one UDP flow
// leave the host and to whom they are addressed: the outgoing interface, its
// MAC, the next hop's MAC and the MTU.
//
// Frames sent through AF_XDP carry their own Ethernet header (see
// dataplane/udpframe): no kernel stack routes them or resolves their next
// hop, so the data plane must do both before it writes the first frame of a
// flow. It does not keep its own routing table or ARP/ND cache. The kernel's
// routing and neighbour tables are the source of truth and the data plane
// follows them: it calls Resolve when a flow starts, and again for every flow
// (all of them in one ResolveMany, which reads each neighbour table once)
// when Watch reports that routes, neighbours, addresses or links changed.
// Nothing here sends a probe or writes a table.
//
// ErrNoNeighbour means the kernel has not (yet) learnt the next hop's MAC.
// The data plane then sends that flow through its kernel socket, whose
// traffic makes the kernel resolve the next hop; Watch reports the new entry
// and the flow moves to AF_XDP on its next Resolve. Frames sent through
// AF_XDP never confirm an entry to the kernel, so it ages to STALE, which is
// still usable; if the kernel later drops it, Watch reports that and the
// flow goes back through the kernel socket until the entry is relearnt.
//
// Hop.Ifindex is the route's device. AF_XDP binds to a queue of a physical
// device, so the data plane must itself map a route through a VLAN, bond or
// bridge device to one, or keep such a flow on the kernel path.
package nexthop

import (
	"errors"
	"net"
	"net/netip"
)

// Pair is one flow's addresses: its source (invalid to let the kernel
// choose) and its destination.
type Pair struct{ Src, Dst netip.Addr }

// Hop is where frames of one flow leave and whom they are addressed to.
type Hop struct {
	Ifindex int
	IfName  string
	SrcMAC  net.HardwareAddr // the outgoing interface's
	DstMAC  net.HardwareAddr // the next hop's
	Via     netip.Addr       // the gateway, or dst itself when directly connected
	MTU     int              // the interface's, or the route's when lower
}

var (
	// ErrNoNeighbour: the next hop has no usable (resolved) neighbour entry
	// yet. Send through the kernel, which will resolve it.
	ErrNoNeighbour = errors.New("next hop has no resolved neighbour entry")

	// ErrLocal: the destination is this host (a local route, or one
	// through loopback), which no frame sent through a NIC can reach.
	ErrLocal = errors.New("destination is local to this host")

	// ErrNotEthernet: the route leaves through an interface without a
	// 6-byte MAC (a tun or IP tunnel device), for which no Ethernet header
	// can be written.
	ErrNotEthernet = errors.New("outgoing interface has no Ethernet address")
)
