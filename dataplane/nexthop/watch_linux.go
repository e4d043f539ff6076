//go:build linux

package nexthop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/internal/netns"
)

// A change's way to the caller:
//
//	subscribe    one rtnetlink socket in the Resolver's namespace, joined to
//	             the link, neighbour, address and route groups of both families
//	readEvents   its own goroutine: receive, drop neighbour updates that cannot
//	             change a Resolve, signal (never blocks: one pending signal)
//	coalesce     Watch's goroutine: the first signal arms a timer, the timer
//	             calls changed; signals meanwhile are absorbed
//
// Watch closes the socket when its context is done, which ends the reader,
// and waits for it: nothing it started outlives it.

// watchGroups are the rtnetlink multicast groups Watch joins. Links matter
// on their own: the kernel drops IPv4 routes of a link that goes down
// without announcing it. Addresses decide which sources are local.
var watchGroups = []uint{
	unix.RTNLGRP_LINK,
	unix.RTNLGRP_NEIGH,
	unix.RTNLGRP_IPV4_IFADDR,
	unix.RTNLGRP_IPV6_IFADDR,
	unix.RTNLGRP_IPV4_ROUTE,
	unix.RTNLGRP_IPV6_ROUTE,
}

// coalesceEvery is how long Watch gathers a burst of changes before it
// calls changed, and so the least time between two calls.
const coalesceEvery = 50 * time.Millisecond

// Watch calls changed when routes, neighbours, addresses or links of the
// Resolver's namespace change: once as soon as it listens (anything may
// have changed before), then once per burst of changes, at most once per
// 50 ms and always after the last change of a burst. changed runs on
// Watch's goroutine, one call at a time; on each, re-resolve every flow
// (with one ResolveMany).
//
// Watch blocks until ctx is done, then returns nil. It returns an error if
// it cannot subscribe, or if the kernel stops delivering changes; changes
// may have been missed then, so re-resolve every flow before calling it
// again.
//
// A thread in another namespace than the Resolver's subscribes from a
// thread that enters it, which needs CAP_SYS_ADMIN; in the same namespace
// no privilege is needed.
func (r *Resolver) Watch(ctx context.Context, changed func()) error {
	s, err := r.subscribe()
	if err != nil {
		return fmt.Errorf("nexthop: subscribe to route, neighbour and link changes: %w", err)
	}
	events := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() { readErr <- readEvents(s, events) }()

	err = coalesce(ctx, events, readErr, changed, coalesceEvery)
	s.Close()
	if err == nil { // the reader still runs: Close ends its Receive
		<-readErr
		return nil
	}
	return fmt.Errorf("nexthop: watch: %w", err)
}

// subscribe opens the socket in the Resolver's namespace.
func (r *Resolver) subscribe() (*nl.NetlinkSocket, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.h == nil {
		return nil, errClosed
	}
	here, s, err := subscribeHere(r.ns)
	if here {
		return s, err
	}
	// Not here: a fresh thread enters the namespace, subscribes and is
	// discarded with its goroutine, so no thread of the caller's moves.
	err = netns.Run(fmt.Sprintf("/proc/self/fd/%d", int(r.ns)), func() error {
		var err error
		s, err = nl.Subscribe(unix.NETLINK_ROUTE, watchGroups...)
		return err
	})
	return s, err
}

// subscribeHere subscribes if the calling thread is in namespace ns, and
// reports whether it was.
func subscribeHere(ns vnetns.NsHandle) (bool, *nl.NetlinkSocket, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := vnetns.Get()
	if err != nil {
		return true, nil, fmt.Errorf("this thread's network namespace: %w", err)
	}
	defer cur.Close()
	if !cur.Equal(ns) {
		return false, nil, nil
	}
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, watchGroups...)
	return true, s, err
}

// readEvents signals events for every batch of notifications that may
// change a Resolve, until s fails or is closed.
func readEvents(s *nl.NetlinkSocket, events chan<- struct{}) error {
	signal := func() {
		select {
		case events <- struct{}{}:
		default: // one is pending already
		}
	}
	seen := neighbours{}
	for {
		msgs, from, err := s.Receive()
		if errors.Is(err, unix.ENOBUFS) {
			// The socket overflowed and the kernel dropped notifications:
			// anything may have changed, and what seen knows may be stale.
			clear(seen)
			signal()
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		relevant := false
		for _, m := range msgs {
			if seen.relevant(m) {
				relevant = true
			}
		}
		if relevant {
			signal()
		}
	}
}

// coalesce calls changed once at once, then once per burst of signals on
// events, until ctx is done (nil) or the reader fails (its error).
func coalesce(ctx context.Context, events <-chan struct{}, readErr <-chan error, changed func(), every time.Duration) error {
	changed()
	t := time.NewTimer(every)
	t.Stop()
	defer t.Stop()
	var due <-chan time.Time // nil unless a call is pending
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case <-events:
			if due == nil {
				t.Reset(every)
				due = t.C
			}
		case <-due:
			due = nil
			changed()
		}
	}
}

// neighbours is what Watch last heard of each neighbour entry, to tell the
// updates that can change a Resolve (an entry's address, or whether it is
// usable) from the kernel's REACHABLE, STALE, DELAY, PROBE round of
// reconfirming each entry in use.
type neighbours map[neighKey]neighEntry

type neighKey struct {
	ifindex int
	ip      netip.Addr
}

type neighEntry struct {
	mac    string // empty unless usable
	usable bool
}

// relevant records what m says and reports whether it may change a
// Resolve: anything but a neighbour update that changes nothing Resolve
// reads.
func (seen neighbours) relevant(m syscall.NetlinkMessage) bool {
	switch m.Header.Type {
	case unix.NLMSG_NOOP, unix.NLMSG_DONE, unix.NLMSG_ERROR:
		return false
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		n, err := netlink.NeighDeserialize(m.Data)
		if err != nil {
			return true
		}
		return seen.update(m.Header.Type == unix.RTM_DELNEIGH, n)
	}
	return true
}

// update records n, added or replaced, or deleted, and reports whether
// this may change a Resolve. The first news of an entry always may.
func (seen neighbours) update(deleted bool, n *netlink.Neigh) bool {
	if n.Family != unix.AF_INET && n.Family != unix.AF_INET6 {
		return false // bridge forwarding entries and the like
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return true
	}
	k := neighKey{n.LinkIndex, ip.Unmap()}
	old, known := seen[k]
	if deleted {
		delete(seen, k)
		return !known || old.usable
	}
	e := neighEntry{usable: n.State&usable != 0}
	if e.usable {
		e.mac = string(n.HardwareAddr)
	}
	seen[k] = e
	return !known || old != e
}
