//go:build linux

package nexthop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/internal/netns"
	"github.com/spillway-rtc/spillway/internal/netns/netnstest"
)

// Documentation addresses only: the veth's two ends, and prefixes behind
// RX that TX reaches through it.
var (
	tx4 = netip.MustParseAddr("192.0.2.1")
	rx4 = netip.MustParseAddr("192.0.2.2")
)

func run(t *testing.T, args ...string) {
	t.Helper()
	if err := netnstest.IP(args...); err != nil {
		t.Fatal(err)
	}
}

// newResolver makes a Resolver inside namespace ns; the test's cleanup
// closes it.
func newResolver(t *testing.T, ns string) *Resolver {
	t.Helper()
	var r *Resolver
	if err := netns.Run(ns, func() error {
		var err error
		r, err = New()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func TestResolve(t *testing.T) {
	netnstest.LeakCheck(t)
	p := netnstest.New(t, "r", tx4, rx4, netnstest.Options{})
	txIf := netnstest.Link(t, p.TX, p.TXIf)
	rxMAC := netnstest.Link(t, p.RX, p.RXIf).HardwareAddr
	tun := "nhtun" // a device without a MAC, in TX only
	for _, c := range [][]string{
		{"-n", p.TX, "neigh", "replace", p.RX4.String(), "lladdr", rxMAC.String(), "dev", p.TXIf, "nud", "reachable"},
		{"-n", p.TX, "neigh", "replace", p.RX6.String(), "lladdr", rxMAC.String(), "dev", p.TXIf, "nud", "reachable"},
		{"-n", p.TX, "neigh", "replace", "192.0.2.97", "dev", p.TXIf, "nud", "incomplete"},
		{"-n", p.TX, "neigh", "replace", "192.0.2.98", "dev", p.TXIf, "nud", "failed"},
		{"-n", p.TX, "route", "add", "198.51.100.0/25", "via", p.RX4.String()},
		{"-n", p.TX, "route", "add", "198.51.100.128/25", "via", p.RX4.String(), "mtu", "1400"},
		{"-n", p.TX, "route", "add", "2001:db8:1::/64", "via", p.RX6.String()},
		{"-n", p.TX, "tuntap", "add", "dev", tun, "mode", "tun"},
		{"-n", p.TX, "link", "set", tun, "up"},
		{"-n", p.TX, "route", "add", "203.0.113.128/25", "dev", tun},
	} {
		run(t, c...)
	}
	r := newResolver(t, p.TX)

	direct := func(via netip.Addr, mtu int) Hop {
		return Hop{Ifindex: txIf.Index, IfName: txIf.Name, SrcMAC: txIf.HardwareAddr, DstMAC: rxMAC, Via: via, MTU: mtu}
	}
	mapped := func(a netip.Addr) netip.Addr { return netip.AddrFrom16(a.As16()) }
	a := netip.MustParseAddr
	for _, tt := range []struct {
		name     string
		src, dst netip.Addr
		want     Hop
		err      error  // errors.Is, or any error if errText is set
		errText  string // in the message
	}{
		{name: "direct IPv4", src: p.TX4, dst: p.RX4, want: direct(p.RX4, 1500)},
		{name: "direct IPv6", src: p.TX6, dst: p.RX6, want: direct(p.RX6, 1500)},
		{name: "IPv4-mapped", src: mapped(p.TX4), dst: mapped(p.RX4), want: direct(p.RX4, 1500)},
		{name: "IPv4-mapped destination", src: p.TX4, dst: mapped(p.RX4), want: direct(p.RX4, 1500)},
		{name: "any source", dst: p.RX4, want: direct(p.RX4, 1500)},
		{name: "gateway IPv4", src: p.TX4, dst: a("198.51.100.7"), want: direct(p.RX4, 1500)},
		{name: "gateway IPv4, route MTU", src: p.TX4, dst: a("198.51.100.200"), want: direct(p.RX4, 1400)},
		{name: "gateway IPv6", src: p.TX6, dst: a("2001:db8:1::7"), want: direct(p.RX6, 1500)},
		{name: "no neighbour IPv4", src: p.TX4, dst: a("192.0.2.99"), err: ErrNoNeighbour,
			errText: "neighbour 192.0.2.99 on " + p.TXIf},
		{name: "no neighbour IPv6", src: p.TX6, dst: a("2001:db8::99"), err: ErrNoNeighbour},
		{name: "incomplete neighbour", src: p.TX4, dst: a("192.0.2.97"), err: ErrNoNeighbour, errText: "INCOMPLETE"},
		{name: "failed neighbour", src: p.TX4, dst: a("192.0.2.98"), err: ErrNoNeighbour, errText: "FAILED"},
		{name: "unreachable IPv4", src: p.TX4, dst: a("203.0.113.1"), errText: "route to 203.0.113.1 from 192.0.2.1"},
		{name: "unreachable IPv6", src: p.TX6, dst: a("2001:db8:ffff::1"), errText: "route to 2001:db8:ffff::1"},
		{name: "local IPv4", src: p.TX4, dst: p.TX4, err: ErrLocal},
		{name: "loopback IPv4", src: p.TX4, dst: a("127.0.0.1"), err: ErrLocal},
		{name: "local IPv6", src: p.TX6, dst: p.TX6, err: ErrLocal},
		{name: "loopback IPv6", src: p.TX6, dst: a("::1"), err: ErrLocal},
		{name: "broadcast", src: p.TX4, dst: a("192.0.2.255"), errText: "broadcast"},
		{name: "no MAC", src: p.TX4, dst: a("203.0.113.200"), err: ErrNotEthernet, errText: tun},
		{name: "mixed families", src: p.TX4, dst: p.RX6, errText: "different IP versions"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(tt.src, tt.dst)
			if tt.err == nil && tt.errText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !equal(got, tt.want) {
					t.Fatalf("got  %+v\nwant %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, want an error", got)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("got %v, want %v", err, tt.err)
			}
			if !strings.HasPrefix(err.Error(), "nexthop: route to ") || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("got %q, want it to name what failed (%q)", err, tt.errText)
			}
			if tt.err == nil && (errors.Is(err, ErrNoNeighbour) || errors.Is(err, ErrLocal) || errors.Is(err, ErrNotEthernet)) {
				t.Errorf("got %v, a wrong cause", err)
			}
			if !equal(got, Hop{}) {
				t.Errorf("got %+v with the error", got)
			}
		})
	}
}

func equal(a, b Hop) bool {
	return a.Ifindex == b.Ifindex && a.IfName == b.IfName && bytes.Equal(a.SrcMAC, b.SrcMAC) &&
		bytes.Equal(a.DstMAC, b.DstMAC) && a.Via == b.Via && a.MTU == b.MTU
}

// A closed Resolver answers nothing, least of all from the namespace of
// whichever thread asks.
func TestClosed(t *testing.T) {
	netnstest.LeakCheck(t)
	p := netnstest.New(t, "c", tx4, rx4, netnstest.Options{})
	r := newResolver(t, p.TX)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Resolve(p.TX4, p.RX4); !errors.Is(err, errClosed) {
		t.Errorf("Resolve after Close: %v, want %v", err, errClosed)
	}
	if err := r.Watch(context.Background(), func() {}); !errors.Is(err, errClosed) {
		t.Errorf("Watch after Close: %v, want %v", err, errClosed)
	}
}

func TestWatch(t *testing.T) {
	netnstest.LeakCheck(t)
	p := netnstest.New(t, "w", tx4, rx4, netnstest.Options{})
	rxMAC := netnstest.Link(t, p.RX, p.RXIf).HardwareAddr
	run(t, "-n", p.TX, "neigh", "replace", p.RX4.String(), "lladdr", rxMAC.String(), "dev", p.TXIf, "nud", "reachable")
	r := newResolver(t, p.TX)

	for _, tt := range []struct {
		name  string
		watch func(context.Context, func()) error
		mac   string
		route string
	}{
		// The test's thread is in the root namespace: Watch enters TX.
		{"from another namespace", r.Watch, "02:00:00:00:00:42", "198.51.100.0/25"},
		// A thread in TX, as the data plane's would be: no setns.
		{"from the same namespace", func(ctx context.Context, f func()) error {
			return netns.Run(p.TX, func() error { return r.Watch(ctx, f) })
		}, "02:00:00:00:00:43", "198.51.100.128/25"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, fds := runtime.NumGoroutine(), netnstest.FDs(t)
			calls := make(chan struct{}, 64)
			changed := func() {
				select {
				case calls <- struct{}{}:
				default:
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tt.watch(ctx, changed) }()

			wait := func(what string) {
				t.Helper()
				select {
				case <-calls:
				case err := <-errc:
					t.Fatalf("Watch returned %v before %s", err, what)
				case <-time.After(2 * time.Second):
					t.Fatalf("changed not called within 2 s of %s", what)
				}
			}
			wait("Watch starting") // the first call: it listens now
			quiet(t, calls)

			mac, _ := net.ParseMAC(tt.mac)
			run(t, "-n", p.TX, "neigh", "replace", p.RX4.String(), "lladdr", tt.mac, "dev", p.TXIf, "nud", "reachable")
			for deadline := time.After(2 * time.Second); ; {
				select {
				case <-calls:
				case <-deadline:
					t.Fatal("changed not called within 2 s of the neighbour's new MAC")
				}
				if hop, err := r.Resolve(p.TX4, p.RX4); err == nil && bytes.Equal(hop.DstMAC, mac) {
					break
				}
			}
			quiet(t, calls)

			run(t, "-n", p.TX, "route", "add", tt.route, "via", p.RX4.String())
			wait("a route added")

			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("Watch: %v", err)
				}
			case <-time.After(time.Second):
				t.Fatal("Watch did not return within 1 s of its context's end")
			}
			netnstest.Settle(t, "after Watch returned", g, fds)
		})
	}
}

// quiet waits until changed has not been called for a while, so that the
// next call answers the next change.
func quiet(t *testing.T, calls <-chan struct{}) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		select {
		case <-calls:
		case <-time.After(3 * coalesceEvery):
			return
		}
	}
	t.Fatal("changed still called 2 s after the last change")
}

// Bursts of signals become one call per interval, and always one after the
// last signal; a failing reader ends the loop with its error.
func TestCoalesce(t *testing.T) {
	netnstest.LeakCheck(t)
	const every = 20 * time.Millisecond
	events := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	calls := make(chan time.Time, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- coalesce(ctx, events, readErr, func() { calls <- time.Now() }, every)
	}()

	var last time.Time
	for start := time.Now(); time.Since(start) < 10*every; time.Sleep(time.Millisecond) {
		last = time.Now()
		select { // as readEvents signals
		case events <- struct{}{}:
		default:
		}
	}
	var got []time.Time // until calls stop
	for deadline := time.After(time.Second); ; {
		select {
		case c := <-calls:
			got = append(got, c)
			continue
		case <-time.After(5 * every):
		case <-deadline:
			t.Fatal("calls go on 1 s after the last signal")
		}
		break
	}
	after := 0
	for _, c := range got {
		if c.After(last) {
			after++
		}
	}
	// One, or two if the timer fired as the last signal came in.
	if after < 1 || after > 2 {
		t.Errorf("%d calls after the last signal, want 1 (or 2)", after)
	}
	failed := errors.New("receive: socket gone")
	readErr <- failed
	if err := <-done; err != failed {
		t.Fatalf("coalesce returned %v, want the reader's error", err)
	}

	if len(got) < 3 || len(got) > 13 {
		t.Errorf("%d calls for a burst of 10 intervals, want about 11", len(got))
	}
	for i := 2; i < len(got); i++ { // the first call is at once, the second after a signal
		if gap := got[i].Sub(got[i-1]); gap < every {
			t.Errorf("calls %d and %d %v apart, want at least %v", i-1, i, gap, every)
		}
	}

	// Ending the context ends it with nil.
	cancel()
	if err := coalesce(ctx, events, readErr, func() {}, every); err != nil {
		t.Errorf("coalesce after the end of its context: %v", err)
	}
}

// Only neighbour updates that change an entry's MAC or usability count;
// the kernel's reconfirmation round does not, nor do bridge entries.
func TestNeighbourFilter(t *testing.T) {
	netnstest.LeakCheck(t)
	macA, _ := net.ParseMAC("02:00:00:00:00:0a")
	macB, _ := net.ParseMAC("02:00:00:00:00:0b")
	n := func(ifindex int, ip string, state int, mac net.HardwareAddr) *netlink.Neigh {
		family := unix.AF_INET
		if strings.Contains(ip, ":") {
			family = unix.AF_INET6
		}
		return &netlink.Neigh{LinkIndex: ifindex, Family: family, IP: net.ParseIP(ip), State: state, HardwareAddr: mac}
	}
	seen := neighbours{}
	for i, st := range []struct {
		deleted bool
		n       *netlink.Neigh
		want    bool
	}{
		{false, n(2, "192.0.2.2", netlink.NUD_REACHABLE, macA), true}, // first news
		{false, n(2, "192.0.2.2", netlink.NUD_STALE, macA), false},
		{false, n(2, "192.0.2.2", netlink.NUD_DELAY, macA), false},
		{false, n(2, "192.0.2.2", netlink.NUD_PROBE, macA), false},
		{false, n(2, "192.0.2.2", netlink.NUD_REACHABLE, macA), false},
		{false, n(2, "192.0.2.2", netlink.NUD_REACHABLE, macB), true}, // new MAC
		{false, n(3, "192.0.2.2", netlink.NUD_REACHABLE, macB), true}, // another link
		{false, n(2, "192.0.2.2", netlink.NUD_FAILED, nil), true},     // no longer usable
		{false, n(2, "192.0.2.2", netlink.NUD_INCOMPLETE, nil), false},
		{true, n(2, "192.0.2.2", netlink.NUD_INCOMPLETE, nil), false}, // an unusable one gone
		{true, n(3, "192.0.2.2", netlink.NUD_STALE, macB), true},      // a usable one gone
		{true, n(2, "2001:db8::2", netlink.NUD_STALE, macA), true},    // never heard of
		{false, n(2, "2001:db8::2", netlink.NUD_PERMANENT, macA), true},
		{false, &netlink.Neigh{LinkIndex: 2, Family: unix.AF_BRIDGE, HardwareAddr: macA}, false},
	} {
		if got := seen.update(st.deleted, st.n); got != st.want {
			t.Errorf("step %d (deleted %v, %v %s): relevant %v, want %v", i, st.deleted, st.n, stateName(st.n.State), got, st.want)
		}
	}
	for _, typ := range []uint16{unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR} {
		if !seen.relevant(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typ}}) {
			t.Errorf("message type %d not relevant", typ)
		}
	}
	if seen.relevant(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.NLMSG_DONE}}) {
		t.Error("NLMSG_DONE relevant")
	}
}

// counting counts what a batch reads of the tables.
type counting struct {
	tables
	routes int
	links  map[int]int
	neighs map[neighTable]int
}

func (c *counting) RouteGetWithOptions(dst net.IP, opt *netlink.RouteGetOptions) ([]netlink.Route, error) {
	c.routes++
	return c.tables.RouteGetWithOptions(dst, opt)
}

func (c *counting) LinkByIndex(index int) (netlink.Link, error) {
	c.links[index]++
	return c.tables.LinkByIndex(index)
}

func (c *counting) NeighList(linkIndex, family int) ([]netlink.Neigh, error) {
	c.neighs[neighTable{linkIndex, family}]++
	return c.tables.NeighList(linkIndex, family)
}

// ResolveMany answers each pair as Resolve does, reading each link and
// neighbour table once and each distinct pair's route once.
func TestResolveMany(t *testing.T) {
	netnstest.LeakCheck(t)
	p := netnstest.New(t, "m", tx4, rx4, netnstest.Options{})
	txIf := netnstest.Link(t, p.TX, p.TXIf)
	rxMAC := netnstest.Link(t, p.RX, p.RXIf).HardwareAddr
	tun := "nhtunm"
	for _, c := range [][]string{
		{"-n", p.TX, "neigh", "replace", p.RX4.String(), "lladdr", rxMAC.String(), "dev", p.TXIf, "nud", "permanent"},
		{"-n", p.TX, "neigh", "replace", p.RX6.String(), "lladdr", rxMAC.String(), "dev", p.TXIf, "nud", "permanent"},
		{"-n", p.TX, "neigh", "replace", "192.0.2.50", "lladdr", "02:00:00:00:00:50", "dev", p.TXIf, "nud", "permanent"},
		{"-n", p.TX, "neigh", "replace", "2001:db8::50", "lladdr", "02:00:00:00:00:51", "dev", p.TXIf, "nud", "permanent"},
		{"-n", p.TX, "route", "add", "198.51.100.0/25", "via", p.RX4.String()},
		{"-n", p.TX, "route", "add", "198.51.100.128/25", "via", p.RX4.String(), "mtu", "1400"},
		{"-n", p.TX, "route", "add", "2001:db8:1::/64", "via", p.RX6.String()},
		{"-n", p.TX, "tuntap", "add", "dev", tun, "mode", "tun"},
		{"-n", p.TX, "link", "set", tun, "up"},
		{"-n", p.TX, "route", "add", "203.0.113.128/25", "dev", tun},
	} {
		run(t, c...)
	}
	r := newResolver(t, p.TX)

	a := netip.MustParseAddr
	mapped := func(a netip.Addr) netip.Addr { return netip.AddrFrom16(a.As16()) }
	other := errors.New("another error") // no sentinel
	cases := []struct {
		Pair
		cause error // nil: a hop
	}{
		// Directly connected, with neighbour entries.
		{Pair{p.TX4, p.RX4}, nil},
		{Pair{p.TX6, p.RX6}, nil},
		{Pair{p.TX4, a("192.0.2.50")}, nil},
		{Pair{p.TX6, a("2001:db8::50")}, nil},
		{Pair{netip.Addr{}, p.RX4}, nil}, // any source
		// Through a gateway.
		{Pair{p.TX4, a("198.51.100.7")}, nil},
		{Pair{p.TX4, a("198.51.100.8")}, nil},
		{Pair{p.TX4, a("198.51.100.200")}, nil}, // the route's MTU
		{Pair{p.TX6, a("2001:db8:1::7")}, nil},
		// Errors.
		{Pair{p.TX4, a("192.0.2.99")}, ErrNoNeighbour},
		{Pair{p.TX6, a("2001:db8::99")}, ErrNoNeighbour},
		{Pair{p.TX4, p.TX4}, ErrLocal},
		{Pair{p.TX6, p.TX6}, ErrLocal},
		{Pair{p.TX4, a("127.0.0.1")}, ErrLocal},
		{Pair{p.TX4, a("203.0.113.200")}, ErrNotEthernet},
		{Pair{p.TX4, a("203.0.113.1")}, other}, // unreachable
		{Pair{p.TX4, a("192.0.2.255")}, other}, // broadcast
		{Pair{p.TX4, p.RX6}, other},            // mixed families
		{Pair{p.TX4, netip.Addr{}}, other},     // no destination
		// Duplicates, some only once normalised.
		{Pair{p.TX4, p.RX4}, nil},
		{Pair{mapped(p.TX4), mapped(p.RX4)}, nil},
		{Pair{p.TX6, a("2001:db8::2%" + p.TXIf)}, nil},
		{Pair{p.TX4, a("198.51.100.7")}, nil},
		{Pair{p.TX4, a("192.0.2.99")}, ErrNoNeighbour},
		{Pair{p.TX6, a("2001:db8::99")}, ErrNoNeighbour},
		{Pair{p.TX4, p.TX4}, ErrLocal},
		{Pair{mapped(p.TX4), a("203.0.113.200")}, ErrNotEthernet},
		{Pair{p.TX4, p.RX6}, other},
		{Pair{netip.Addr{}, mapped(p.RX4)}, nil},
	}
	pairs := make([]Pair, len(cases))
	for i, c := range cases {
		pairs[i] = c.Pair
	}
	hops, errs := r.ResolveMany(pairs)
	if len(hops) != len(pairs) || len(errs) != len(pairs) {
		t.Fatalf("%d hops and %d errors for %d pairs", len(hops), len(errs), len(pairs))
	}
	sentinels := []error{ErrLocal, ErrNoNeighbour, ErrNotEthernet, errClosed}
	direct := Hop{Ifindex: txIf.Index, IfName: txIf.Name, SrcMAC: txIf.HardwareAddr, DstMAC: rxMAC, Via: p.RX4, MTU: 1500}
	if !equal(hops[0], direct) || errs[0] != nil {
		t.Errorf("directly connected: got %+v, %v; want %+v", hops[0], errs[0], direct)
	}
	for i, c := range cases {
		switch {
		case c.cause == nil && errs[i] != nil:
			t.Errorf("pair %d (%v to %v): %v, want a hop", i, c.Src, c.Dst, errs[i])
		case c.cause == other && (errs[i] == nil || errors.Is(errs[i], ErrLocal) || errors.Is(errs[i], ErrNoNeighbour) || errors.Is(errs[i], ErrNotEthernet)):
			t.Errorf("pair %d (%v to %v): %v, want an error of no sentinel", i, c.Src, c.Dst, errs[i])
		case c.cause != nil && c.cause != other && !errors.Is(errs[i], c.cause):
			t.Errorf("pair %d (%v to %v): %v, want %v", i, c.Src, c.Dst, errs[i], c.cause)
		}

		want, wantErr := r.Resolve(c.Src, c.Dst)
		if !equal(hops[i], want) {
			t.Errorf("pair %d (%v to %v): got %+v, Resolve %+v", i, c.Src, c.Dst, hops[i], want)
		}
		if (errs[i] == nil) != (wantErr == nil) || errs[i] != nil && errs[i].Error() != wantErr.Error() {
			t.Errorf("pair %d (%v to %v): got error %v, Resolve %v", i, c.Src, c.Dst, errs[i], wantErr)
		}
		for _, s := range sentinels {
			if errors.Is(errs[i], s) != errors.Is(wantErr, s) {
				t.Errorf("pair %d (%v to %v): got %v, Resolve %v: not the same cause", i, c.Src, c.Dst, errs[i], wantErr)
			}
		}
		if errs[i] != nil && !equal(hops[i], Hop{}) {
			t.Errorf("pair %d: got %+v with the error", i, hops[i])
		}
		for j := range i { // no two hops share a MAC's memory
			for _, m := range []net.HardwareAddr{hops[j].SrcMAC, hops[j].DstMAC} {
				for _, n := range []net.HardwareAddr{hops[i].SrcMAC, hops[i].DstMAC} {
					if len(m) > 0 && len(n) > 0 && &m[0] == &n[0] {
						t.Errorf("hops %d and %d share a MAC slice", j, i)
					}
				}
			}
		}
	}
	if t.Failed() {
		return
	}

	// What it reads: each distinct (valid) pair's route, each link and
	// neighbour table once.
	c := &counting{tables: r.h, links: map[int]int{}, neighs: map[neighTable]int{}}
	hops2, errs2 := resolveMany(c, pairs)
	distinct := map[Pair]bool{}
	for _, pr := range pairs {
		pr = Pair{pr.Src.Unmap().WithZone(""), pr.Dst.Unmap().WithZone("")}
		if pr.Dst.IsValid() && (!pr.Src.IsValid() || pr.Src.Is4() == pr.Dst.Is4()) {
			distinct[pr] = true
		}
	}
	if c.routes != len(distinct) {
		t.Errorf("%d route lookups for %d distinct pairs", c.routes, len(distinct))
	}
	for ifindex, n := range c.links {
		if n != 1 {
			t.Errorf("link %d read %d times", ifindex, n)
		}
	}
	if len(c.neighs) != 2 {
		t.Errorf("neighbour tables listed: %v, want %s's IPv4 and IPv6", c.neighs, p.TXIf)
	}
	for k, n := range c.neighs {
		if k.ifindex != txIf.Index || n != 1 {
			t.Errorf("neighbour table %+v listed %d times, want %s's once", k, n, p.TXIf)
		}
	}
	for i := range pairs {
		if !equal(hops2[i], hops[i]) || (errs2[i] == nil) != (errs[i] == nil) || errs[i] != nil && errs2[i].Error() != errs[i].Error() {
			t.Errorf("pair %d: %+v, %v the second time, %+v, %v the first", i, hops2[i], errs2[i], hops[i], errs[i])
		}
	}

	if hops, errs := r.ResolveMany(nil); len(hops) != 0 || len(errs) != 0 {
		t.Errorf("no pairs: got %v, %v", hops, errs)
	}
	// Closed: every pair's error as Resolve's.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, errs = r.ResolveMany(pairs[:3])
	for i, err := range errs {
		if _, want := r.Resolve(pairs[i].Src, pairs[i].Dst); !errors.Is(err, errClosed) || err.Error() != want.Error() {
			t.Errorf("pair %d after Close: %v, want %v", i, err, want)
		}
	}
}

// fakeTables answers one unicast route on link 2 and lists its neighbour
// table from a script: each listing's entries and error.
type fakeTables struct {
	listings [][]netlink.Neigh
	errs     []error
	lists    int
}

func (f *fakeTables) RouteGetWithOptions(dst net.IP, _ *netlink.RouteGetOptions) ([]netlink.Route, error) {
	return []netlink.Route{{LinkIndex: 2, Type: unix.RTN_UNICAST, Dst: &net.IPNet{IP: dst, Mask: net.CIDRMask(32, 32)}}}, nil
}

func (f *fakeTables) LinkByIndex(index int) (netlink.Link, error) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index, Name: "fake0", MTU: 1500, HardwareAddr: mac}}, nil
}

func (f *fakeTables) NeighList(linkIndex, family int) ([]netlink.Neigh, error) {
	i := min(f.lists, len(f.listings)-1)
	f.lists++
	return f.listings[i], f.errs[i]
}

// A listing the kernel interrupted serves the addresses it has; one it
// lacks lists the table again, up to dumpTries listings per call.
func TestResolveManyInterrupted(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:02")
	n := func(ip string) netlink.Neigh {
		return netlink.Neigh{LinkIndex: 2, Family: unix.AF_INET, IP: net.ParseIP(ip), State: netlink.NUD_REACHABLE, HardwareAddr: mac}
	}
	intr := fmt.Errorf("dump: %w", netlink.ErrDumpInterrupted)
	a := netip.MustParseAddr
	src := a("192.0.2.1")
	for _, tt := range []struct {
		name     string
		listings [][]netlink.Neigh
		errs     []error
		dsts     []string
		found    []bool
		lists    int
		errText  string
	}{
		{"found in an interrupted listing", [][]netlink.Neigh{{n("192.0.2.2"), n("192.0.2.3")}}, []error{intr},
			[]string{"192.0.2.2", "192.0.2.3"}, []bool{true, true}, 1, ""},
		{"found in the second listing", [][]netlink.Neigh{{n("192.0.2.2")}, {n("192.0.2.2"), n("192.0.2.3")}}, []error{intr, nil},
			[]string{"192.0.2.2", "192.0.2.3", "192.0.2.4"}, []bool{true, true, false}, 2, "(no entry)"},
		{"always interrupted", [][]netlink.Neigh{{n("192.0.2.2")}}, []error{intr},
			[]string{"192.0.2.3", "192.0.2.2", "192.0.2.4"}, []bool{false, true, false}, dumpTries, "changing too fast"},
		{"failed", [][]netlink.Neigh{nil}, []error{unix.ENOBUFS},
			[]string{"192.0.2.2", "192.0.2.3"}, []bool{false, false}, 1, unix.ENOBUFS.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTables{listings: tt.listings, errs: tt.errs}
			var pairs []Pair
			for _, d := range tt.dsts {
				pairs = append(pairs, Pair{src, a(d)})
			}
			hops, errs := resolveMany(f, pairs)
			for i := range pairs {
				if tt.found[i] != (errs[i] == nil) {
					t.Errorf("%s: %+v, %v; want found %v", tt.dsts[i], hops[i], errs[i], tt.found[i])
				}
				if errs[i] != nil && !strings.Contains(errs[i].Error(), tt.errText) {
					t.Errorf("%s: %v, want it to say %q", tt.dsts[i], errs[i], tt.errText)
				}
				if errs[i] == nil && !bytes.Equal(hops[i].DstMAC, mac) {
					t.Errorf("%s: MAC %v, want %v", tt.dsts[i], hops[i].DstMAC, mac)
				}
			}
			if f.lists != tt.lists {
				t.Errorf("%d listings, want %d", f.lists, tt.lists)
			}
		})
	}
}

// Thousands of viewers on one subnet: one ResolveMany answers them all
// with one neighbour listing. It logs how long that takes, and how long
// resolving each by itself does.
func TestResolveManyScale(t *testing.T) {
	netnstest.LeakCheck(t)
	const viewers = 2000
	p := netnstest.New(t, "s", tx4, rx4, netnstest.Options{})
	txIf := netnstest.Link(t, p.TX, p.TXIf)
	// The benchmarking range (RFC 2544): 198.18.0.1 is TX, the viewers
	// 198.18.0.2 onwards, each with a permanent entry.
	run(t, "-n", p.TX, "addr", "add", "198.18.0.1/16", "dev", p.TXIf)
	src := netip.MustParseAddr("198.18.0.1")
	pairs := make([]Pair, viewers)
	macs := make([]net.HardwareAddr, viewers)
	var batch strings.Builder
	for i := range pairs {
		k := i + 2
		pairs[i] = Pair{src, netip.AddrFrom4([4]byte{198, 18, byte(k >> 8), byte(k)})}
		macs[i] = net.HardwareAddr{2, 0, 0, 0, byte(k >> 8), byte(k)}
		fmt.Fprintf(&batch, "neigh replace %v lladdr %v dev %s nud permanent\n", pairs[i].Dst, macs[i], p.TXIf)
	}
	cmd := exec.Command("ip", "-n", p.TX, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	r := newResolver(t, p.TX)

	check := func(how string, i int, hop Hop, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s, viewer %d: %v", how, i, err)
		}
		if hop.Ifindex != txIf.Index || hop.Via != pairs[i].Dst || !bytes.Equal(hop.DstMAC, macs[i]) || !bytes.Equal(hop.SrcMAC, txIf.HardwareAddr) {
			t.Fatalf("%s, viewer %d (%v): got %+v, want MAC %v", how, i, pairs[i].Dst, hop, macs[i])
		}
	}

	start := time.Now()
	hops, errs := r.ResolveMany(pairs)
	many := time.Since(start)
	if len(hops) != viewers || len(errs) != viewers {
		t.Fatalf("%d hops and %d errors for %d pairs", len(hops), len(errs), viewers)
	}
	for i := range pairs {
		check("ResolveMany", i, hops[i], errs[i])
	}

	c := &counting{tables: r.h, links: map[int]int{}, neighs: map[neighTable]int{}}
	resolveMany(c, pairs)
	if c.routes != viewers || len(c.links) != 1 || len(c.neighs) != 1 || c.neighs[neighTable{txIf.Index, netlink.FAMILY_V4}] != 1 {
		t.Errorf("read %d routes, links %v, neighbour tables %v; want %d routes, link %d and its IPv4 table once",
			c.routes, c.links, c.neighs, viewers, txIf.Index)
	}

	// For comparison, a tenth of the pairs resolved one by one (each lists
	// the whole table), scaled up.
	start = time.Now()
	for i, pr := range pairs[:viewers/10] {
		hop, err := r.Resolve(pr.Src, pr.Dst)
		check("Resolve", i, hop, err)
	}
	each := 10 * time.Since(start)
	t.Logf("%d viewers with neighbour entries: one ResolveMany %v, %d Resolve calls about %v (%.0fx)",
		viewers, many.Round(time.Microsecond), viewers, each.Round(time.Millisecond), float64(each)/float64(many))
}
