//go:build linux

package nexthop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Resolver reads the routing and neighbour tables of the network namespace
// it was made in. It is safe for concurrent use.
type Resolver struct {
	mu sync.RWMutex    // ResolveMany and Watch hold it shared, Close alone
	h  *netlink.Handle // its socket lives in the namespace; nil once closed
	ns vnetns.NsHandle // that namespace, for Watch's subscription
}

var errClosed = errors.New("nexthop: resolver closed")

// New makes a Resolver for the network namespace of the calling thread
// (lock the goroutine to a thread that entered another namespace to
// resolve there). Later calls work whichever thread runs them.
func New() (*Resolver, error) {
	runtime.LockOSThread() // both below must see the same thread's namespace
	defer runtime.UnlockOSThread()
	ns, err := vnetns.Get()
	if err != nil {
		return nil, fmt.Errorf("nexthop: this thread's network namespace: %w", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("nexthop: rtnetlink socket: %w", err)
	}
	return &Resolver{h: h, ns: ns}, nil
}

// Close releases the Resolver's socket and namespace handle. A Watch that
// runs keeps its own subscription until its context is done.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return nil
	}
	// After Close the handle would answer from a fresh socket in the
	// calling thread's namespace, whichever that is: never use it again.
	r.h.Close()
	r.h = nil
	if err := r.ns.Close(); err != nil {
		return fmt.Errorf("nexthop: close namespace handle: %w", err)
	}
	return nil
}

// usable are the neighbour states whose link-layer address the kernel
// itself would send to: confirmed, not yet reconfirmed, being reconfirmed,
// static, or needing no resolution.
const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY |
	netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

// dumpTries bounds the retries of a neighbour dump the kernel interrupted
// because the table changed under it.
const dumpTries = 3

// Resolve looks up the route from src to dst, as `ip route get dst from
// src` does, and the neighbour entry of its next hop. IPv4-mapped IPv6
// addresses count as IPv4 and zones are ignored; an invalid src lets the
// kernel choose the source. Errors wrap ErrLocal, ErrNoNeighbour or
// ErrNotEthernet when those are the cause.
func (r *Resolver) Resolve(src, dst netip.Addr) (Hop, error) {
	hops, errs := r.ResolveMany([]Pair{{src, dst}})
	return hops[0], errs[0]
}

// ResolveMany resolves every pair as Resolve would: hops[i] and errs[i]
// answer pairs[i], with the errors Resolve would return. It asks the kernel
// for one route per distinct pair, but reads each link's attributes once
// and each link's neighbour table once per family for the whole call: to
// re-resolve every flow after Watch reports a change, call it once with all
// of them rather than Resolve for each. Every Hop has MAC slices of its own.
func (r *Resolver) ResolveMany(pairs []Pair) ([]Hop, []error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var t tables // nil once closed
	if r.h != nil {
		t = r.h
	}
	return resolveMany(t, pairs)
}

// tables is what resolving reads: the Resolver's handle (a test may wrap
// it to count what is read).
type tables interface {
	RouteGetWithOptions(dst net.IP, opt *netlink.RouteGetOptions) ([]netlink.Route, error)
	LinkByIndex(index int) (netlink.Link, error)
	NeighList(linkIndex, family int) ([]netlink.Neigh, error)
}

// resolveMany is ResolveMany reading t, or answering errClosed if t is nil.
func resolveMany(t tables, pairs []Pair) ([]Hop, []error) {
	hops := make([]Hop, len(pairs))
	errs := make([]error, len(pairs))
	b := batch{t: t}
	first := make(map[Pair]int, len(pairs)) // where each distinct pair was answered
	for i, p := range pairs {
		p = Pair{p.Src.Unmap().WithZone(""), p.Dst.Unmap().WithZone("")}
		if j, ok := first[p]; ok {
			hops[i], errs[i] = hops[j].clone(), errs[j]
			continue
		}
		first[p] = i
		hop, err := b.resolve(p.Src, p.Dst)
		if err != nil {
			from := "any address"
			if p.Src.IsValid() {
				from = p.Src.String()
			}
			errs[i] = fmt.Errorf("nexthop: route to %v from %s: %w", p.Dst, from, err)
			continue
		}
		hops[i] = hop.clone()
	}
	return hops, errs
}

// clone gives h MAC slices of its own: those of a batch's links and
// neighbours are shared by every hop through them.
func (h Hop) clone() Hop {
	h.SrcMAC = slices.Clone(h.SrcMAC)
	h.DstMAC = slices.Clone(h.DstMAC)
	return h
}

// batch is one ResolveMany call: what it has read of links and neighbour
// tables, so that each is read once.
type batch struct {
	t      tables // nil once the Resolver is closed
	links  map[int]linkRead
	neighs map[neighTable]*neighRead
}

type linkRead struct {
	attrs *netlink.LinkAttrs
	err   error
}

type neighTable struct{ ifindex, family int }

// neighRead is one link's neighbour table of one family, as last listed.
type neighRead struct {
	entries map[netip.Addr]*netlink.Neigh // the first entry of each address
	tries   int                           // listings so far

	// err is the last listing's: nil; or one wrapping
	// netlink.ErrDumpInterrupted, when entries may lack some; or its
	// failure, when entries is nil.
	err error
}

// resolve answers one pair, normalised: src and dst unmapped, without zone.
func (b *batch) resolve(src, dst netip.Addr) (Hop, error) {
	if !dst.IsValid() {
		return Hop{}, errors.New("no destination address")
	}
	if src.IsValid() && src.Is4() != dst.Is4() {
		return Hop{}, errors.New("source and destination are of different IP versions")
	}
	if b.t == nil {
		return Hop{}, errClosed
	}

	opt := &netlink.RouteGetOptions{}
	if src.IsValid() {
		opt.SrcAddr = src.AsSlice()
	}
	routes, err := b.t.RouteGetWithOptions(dst.AsSlice(), opt)
	if err != nil {
		return Hop{}, err
	}
	if len(routes) == 0 {
		return Hop{}, errors.New("the kernel answered with no route")
	}
	rt := routes[0]
	switch rt.Type {
	case unix.RTN_UNICAST:
	case unix.RTN_LOCAL:
		return Hop{}, ErrLocal
	default:
		return Hop{}, fmt.Errorf("%s route: not a unicast destination", routeType(rt.Type))
	}

	la, err := b.link(rt.LinkIndex)
	if err != nil {
		return Hop{}, fmt.Errorf("link %d: %w", rt.LinkIndex, err)
	}
	if la.Flags&net.FlagLoopback != 0 {
		return Hop{}, fmt.Errorf("%w (through %s)", ErrLocal, la.Name)
	}
	if len(la.HardwareAddr) != 6 {
		return Hop{}, fmt.Errorf("%w: %s (%s) has a %d-byte hardware address",
			ErrNotEthernet, la.Name, la.EncapType, len(la.HardwareAddr))
	}

	via := dst
	if gw, ok := netip.AddrFromSlice(rt.Gw); ok {
		via = gw.Unmap()
	} else if v, ok := rt.Via.(*netlink.Via); ok { // an IPv4 route through an IPv6 gateway
		if gw, ok := netip.AddrFromSlice(v.Addr); ok {
			via = gw.Unmap()
		}
	}

	n, err := b.neighbour(rt.LinkIndex, via)
	if err != nil {
		return Hop{}, fmt.Errorf("neighbour %v on %s: %w", via, la.Name, err)
	}

	mtu := la.MTU
	if rt.MTU > 0 && rt.MTU < mtu { // a route's mtu, or a learnt path MTU
		mtu = rt.MTU
	}
	return Hop{
		Ifindex: la.Index,
		IfName:  la.Name,
		SrcMAC:  la.HardwareAddr,
		DstMAC:  n.HardwareAddr,
		Via:     via,
		MTU:     mtu,
	}, nil
}

// link returns the attributes of link ifindex, read once per batch.
func (b *batch) link(ifindex int) (*netlink.LinkAttrs, error) {
	l, ok := b.links[ifindex]
	if !ok {
		link, err := b.t.LinkByIndex(ifindex)
		if err != nil {
			l.err = err
		} else {
			l.attrs = link.Attrs()
		}
		if b.links == nil {
			b.links = make(map[int]linkRead)
		}
		b.links[ifindex] = l
	}
	return l.attrs, l.err
}

// neighbour finds the usable entry of addr on link ifindex. The kernel
// cannot be asked for one entry by this library, so the batch lists the
// link's entries of addr's family once, and again (up to dumpTries
// listings in all) only when a listing the kernel interrupted lacks addr.
func (b *batch) neighbour(ifindex int, addr netip.Addr) (*netlink.Neigh, error) {
	family := netlink.FAMILY_V6
	if addr.Is4() {
		family = netlink.FAMILY_V4
	}
	k := neighTable{ifindex, family}
	tab := b.neighs[k]
	if tab == nil {
		tab = &neighRead{}
		tab.list(b.t, ifindex, family)
		if b.neighs == nil {
			b.neighs = make(map[neighTable]*neighRead)
		}
		b.neighs[k] = tab
	}
	for {
		intr := errors.Is(tab.err, netlink.ErrDumpInterrupted)
		if tab.err != nil && !intr {
			return nil, tab.err
		}
		if n := tab.entries[addr]; n != nil {
			if n.State&usable == 0 {
				return nil, fmt.Errorf("%w (%s)", ErrNoNeighbour, stateName(n.State))
			}
			if len(n.HardwareAddr) != 6 {
				return nil, fmt.Errorf("%w (%s entry with a %d-byte link-layer address)",
					ErrNoNeighbour, stateName(n.State), len(n.HardwareAddr))
			}
			return n, nil
		}
		if !intr {
			return nil, fmt.Errorf("%w (no entry)", ErrNoNeighbour)
		}
		if tab.tries == dumpTries {
			return nil, fmt.Errorf("neighbour table changing too fast to list: %w", tab.err)
		}
		tab.list(b.t, ifindex, family)
	}
}

// list (re)reads the table.
func (tab *neighRead) list(t tables, ifindex, family int) {
	tab.tries++
	list, err := t.NeighList(ifindex, family)
	tab.err, tab.entries = err, nil
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return
	}
	tab.entries = make(map[netip.Addr]*netlink.Neigh, len(list))
	for i := range list {
		n := &list[i]
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.LinkIndex != ifindex {
			continue
		}
		if _, dup := tab.entries[ip.Unmap()]; !dup {
			tab.entries[ip.Unmap()] = n
		}
	}
}

// stateName spells a neighbour state as `ip neigh` does.
func stateName(s int) string {
	switch s {
	case netlink.NUD_NONE:
		return "NONE"
	case netlink.NUD_INCOMPLETE:
		return "INCOMPLETE"
	case netlink.NUD_REACHABLE:
		return "REACHABLE"
	case netlink.NUD_STALE:
		return "STALE"
	case netlink.NUD_DELAY:
		return "DELAY"
	case netlink.NUD_PROBE:
		return "PROBE"
	case netlink.NUD_FAILED:
		return "FAILED"
	case netlink.NUD_NOARP:
		return "NOARP"
	case netlink.NUD_PERMANENT:
		return "PERMANENT"
	}
	return fmt.Sprintf("state %#x", s)
}

// routeType spells a route type as `ip route` does.
func routeType(t int) string {
	switch t {
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_ANYCAST:
		return "anycast"
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	case unix.RTN_THROW:
		return "throw"
	case unix.RTN_NAT:
		return "nat"
	case unix.RTN_XRESOLVE:
		return "xresolve"
	}
	return fmt.Sprintf("type %d", t)
}
