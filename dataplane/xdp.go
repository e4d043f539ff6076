package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/spillway-rtc/spillway/bpf"
	"github.com/spillway-rtc/spillway/dataplane/afxdp"
	"github.com/spillway-rtc/spillway/dataplane/nexthop"
	"github.com/spillway-rtc/spillway/dataplane/udpframe"
	"github.com/spillway-rtc/spillway/internal/netns"
)

// afxdp mode (Config.Mode = ModeAFXDP). The workers batch, rewrite and
// encrypt as in socket mode, but write each packet straight into a frame
// of an AF_XDP socket's UMEM, behind the Ethernet, IP and UDP headers they
// write themselves (udpframe), and hand the frames to the NIC in one
// wake-up per flush:
//
//	Join      opens, per interface the local address can send from, one
//	          AF_XDP socket per worker on its own NIC queue (zero-copy
//	          first, per afxdp/zerocopy), and attaches the XDP program that
//	          passes every received frame to the kernel (some drivers only
//	          make the queues zero-copy needs while a program is attached)
//	viewer    its next hop comes from the kernel's routes and neighbours
//	          (nexthop), resolved by the control side when the viewer is
//	          added or its path changes, and again whenever a route, a
//	          neighbour or a link changes; the worker gets the header built
//	          for it
//	fallback  a viewer AF_XDP cannot reach (an address of this host, a next
//	          hop not resolved yet, an interface without sockets), and a
//	          packet longer than the path's MTU, go through the send
//	          sockets as in socket mode
//
// Frames leave with the source address and port of the viewer's selected
// local candidate, so the viewer sees the same 5-tuple as from a socket.

// xdpPlane is the plane's afxdp state.
type xdpPlane struct {
	nsFD   int    // the plane's network namespace, held open
	ns     string // and its path, to open sockets there from any thread
	res    *nexthop.Resolver
	ifaces map[int]*xdpIface       // under Plane.mu
	hops   map[*Viewer]hopKey      // what each viewer was last given, under Plane.mu
	paths  map[*Viewer]viewerAddrs // control-side copy of each viewer's path, under Plane.mu
	cancel context.CancelFunc
	done   chan struct{}
	quiet  atomic.Bool // a resolution failure was logged (once, then Debug)
	rehops atomic.Uint64
}

type viewerAddrs struct{ local, remote netip.AddrPort }

// hopKey is what makes two resolutions of a viewer's path the same.
type hopKey struct {
	ifindex        int
	srcMAC, dstMAC [6]byte
	mtu            int
}

// xdpIface is one interface's sockets, one per worker.
type xdpIface struct {
	name  string
	index int
	socks []*afxdp.Socket
	outs  []*xout
	pass  *bpf.XDPPass
}

// xout is a worker's socket on one interface, owned by the worker.
type xout struct {
	s       *afxdp.Socket
	ifindex int
	queued  int    // frames queued since the last flush
	bytes   uint64 // their SRTP bytes
	kicks   uint64 // s.Kicks already counted
	failed  bool   // the last Flush failed: logged once
}

// viewerHop is a viewer's frame header and where it goes out.
type viewerHop struct {
	ifindex int
	mtu     int // IP packet bytes the link carries
	hdr     *udpframe.Header
}

// xdpFlushAt queues at most this many frames on a socket before a
// flush: a copy-mode wake-up sends 32 (the TX budget) at a time anyway,
// and the frames of one flush stay in the L2 cache until the kernel
// copies them.
const xdpFlushAt = 256

func (p *Plane) startXDP() error {
	// The namespace New runs in is the plane's: sockets opened later, from
	// whatever thread (a knob set through the Admin API), open there.
	runtime.LockOSThread()
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	var res *nexthop.Resolver
	if err == nil {
		res, err = nexthop.New()
		if err != nil {
			unix.Close(fd)
		}
	}
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("dataplane: afxdp: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.xdp = &xdpPlane{
		nsFD: fd, ns: fmt.Sprintf("/proc/self/fd/%d", fd),
		res: res, ifaces: map[int]*xdpIface{}, hops: map[*Viewer]hopKey{}, paths: map[*Viewer]viewerAddrs{},
		cancel: cancel, done: make(chan struct{}),
	}
	go func() {
		defer close(p.xdp.done)
		if err := res.Watch(ctx, p.rehop); err != nil {
			p.cfg.Logger.Error("dataplane: afxdp: following routes and neighbours stopped; next hops are no longer updated", "err", err)
		}
	}()
	return nil
}

// inNetns runs f on a thread in the plane's network namespace.
func (p *Plane) inNetns(f func() error) error { return netns.Run(p.xdp.ns, f) }

// stopXDP stops following routes and neighbours; it runs after the
// workers have stopped, without p.mu (rehop takes it).
func (p *Plane) stopXDP() {
	if x := p.xdp; x != nil {
		x.cancel()
		<-x.done
	}
}

// closeXDP closes the sockets, programs and resolver, after stopXDP.
// Called with p.mu held.
func (p *Plane) closeXDP() error {
	x := p.xdp
	if x == nil {
		return nil
	}
	var errs []error
	for _, ifc := range x.ifaces {
		errs = append(errs, ifc.close())
	}
	x.ifaces = nil
	errs = append(errs, x.res.Close(), unix.Close(x.nsFD))
	return errors.Join(errs...)
}

func (ifc *xdpIface) close() error {
	var errs []error
	for _, s := range ifc.socks {
		errs = append(errs, s.Close())
	}
	if ifc.pass != nil {
		errs = append(errs, ifc.pass.Close())
	}
	return errors.Join(errs...)
}

// joinXDP opens sockets on every interface local can send from: the one
// holding its address, or, for a wildcard, every interface that is up
// and has an address of its family (not loopback: what is sent to this
// host goes through the send sockets). Called with p.mu held.
func (p *Plane) joinXDP(local netip.AddrPort) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 || len(ifi.HardwareAddr) != 6 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		match := false
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip == local.Addr() || (local.Addr().IsUnspecified() && ip.Is4() == local.Addr().Is4()) {
				match = true
			}
		}
		if match && p.xdp.ifaces[ifi.Index] == nil {
			if err := p.openXDP(ifi); err != nil {
				return err
			}
		}
	}
	return nil
}

// openXDP opens one socket per worker on ifi and hands each to its
// worker. Called with p.mu held.
func (p *Plane) openXDP(ifi net.Interface) error {
	ifc := &xdpIface{name: ifi.Name, index: ifi.Index}
	if p.zc != afxdp.ZeroCopyOff {
		pass, err := bpf.AttachXDPPass(ifi.Index)
		if err != nil {
			// Copy mode needs no program; zero-copy on some drivers does,
			// and its bind below says so if it fails.
			p.cfg.Logger.Warn("dataplane: afxdp: XDP pass program not attached", "interface", ifi.Name, "err", err)
		} else {
			ifc.pass = pass
			if err := pass.Fallback(); err != nil {
				// Generic mode runs outside the driver, which then makes no
				// zero-copy queues: copy mode is likely.
				p.cfg.Logger.Warn("dataplane: afxdp: XDP pass program in generic mode", "interface", ifi.Name, "err", err)
			}
		}
	}
	socks, err := p.openXDPSockets(ifi.Name, ifi.Index, p.zc)
	if err != nil {
		ifc.close()
		return err
	}
	ifc.socks = socks
	for i, w := range p.workers {
		o := &xout{ifindex: ifi.Index}
		ifc.outs = append(ifc.outs, o)
		if _, ok := p.do(w, &op{kind: opXDP, xo: o, xs: ifc.socks[i]}); !ok {
			ifc.close()
			return errPlaneClosed
		}
	}
	p.xdp.ifaces[ifi.Index] = ifc
	return nil
}

// openXDPSockets opens one socket per worker on the interface, each on its
// worker's queue, and logs each one's mode.
func (p *Plane) openXDPSockets(name string, ifindex int, zc afxdp.ZeroCopy) ([]*afxdp.Socket, error) {
	ac := p.cfg.AFXDP
	var socks []*afxdp.Socket
	for i := range p.workers {
		q := i
		if ac.Queues != nil {
			q = ac.Queues[i]
		}
		s, err := afxdp.Open(afxdp.Config{Ifindex: ifindex, Queue: q, ZeroCopy: zc, FrameSize: ac.FrameSize, RingSize: ac.RingSize, BusyPoll: ac.BusyPoll})
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, fmt.Errorf("dataplane: afxdp: worker %d: %w (afxdp/queues: one queue of %s per worker)", i, err, name)
		}
		socks = append(socks, s)
		attrs := []any{"interface", name, "queue", q, "worker", i, "mode", s.Mode(), "checksum_offload", s.Offload()}
		if r := s.Refused(); r != nil {
			attrs = append(attrs, "zerocopy_refused", r.Error())
		}
		p.cfg.Logger.Info("dataplane: afxdp socket", attrs...)
	}
	return socks, nil
}

// SetZeroCopy applies afxdp/zerocopy at run time: every interface's
// sockets are closed and opened again with z. A queue takes one socket at
// a time, so the workers send through the send sockets meanwhile. If z
// cannot be had (on, where the driver refuses zero-copy), the sockets are
// opened again as they were and the error says why. The sockets open in
// the plane's network namespace, whichever thread calls.
func (p *Plane) SetZeroCopy(z afxdp.ZeroCopy) error {
	if _, err := afxdp.ParseZeroCopy(string(z)); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPlaneClosed
	}
	if p.xdp == nil {
		p.zc = z // for the next start; no socket to change
		return nil
	}
	old := p.zc
	var errs []error
	for _, ifc := range p.xdp.ifaces {
		p.swapXDP(ifc, nil)
		var socks []*afxdp.Socket
		err := p.inNetns(func() (err error) {
			socks, err = p.openXDPSockets(ifc.name, ifc.index, z)
			if err != nil {
				errs = append(errs, err)
				socks, err = p.openXDPSockets(ifc.name, ifc.index, old)
			}
			return err
		})
		if err != nil {
			// Neither: the viewers stay on the send sockets.
			p.cfg.Logger.Error("dataplane: afxdp: sockets not reopened; viewers served through the send sockets", "interface", ifc.name, "err", err)
			continue
		}
		p.swapXDP(ifc, socks)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p.zc = z
	return nil
}

// swapXDP hands each worker its new socket on ifc (nil: none, send
// through the send sockets) and closes the old ones once no worker uses
// them. Called with p.mu held.
func (p *Plane) swapXDP(ifc *xdpIface, socks []*afxdp.Socket) {
	for i, w := range p.workers {
		var s *afxdp.Socket
		if socks != nil {
			s = socks[i]
		}
		p.do(w, &op{kind: opXDPSwap, xo: ifc.outs[i], xs: s})
	}
	for _, s := range ifc.socks {
		s.Close()
	}
	ifc.socks = socks
}

// hopFor resolves the frame header of a viewer's path, or nil when
// AF_XDP cannot reach it. Called without p.mu.
func (p *Plane) hopFor(local, remote netip.AddrPort) (*viewerHop, hopKey) {
	if p.xdp == nil {
		return nil, hopKey{}
	}
	hops, keys := p.hopsFor([]viewerAddrs{{local, remote}})
	return hops[0], keys[0]
}

// hopsFor resolves many paths at once: one neighbour dump per link for
// all of them.
func (p *Plane) hopsFor(paths []viewerAddrs) ([]*viewerHop, []hopKey) {
	x := p.xdp
	hops, keys := make([]*viewerHop, len(paths)), make([]hopKey, len(paths))
	pairs := make([]nexthop.Pair, len(paths))
	for i, a := range paths {
		pairs[i] = nexthop.Pair{Src: a.local.Addr().Unmap(), Dst: a.remote.Addr().Unmap()}
	}
	res, errs := x.res.ResolveMany(pairs)
	for i, a := range paths {
		local, remote := unmapPort(a.local), unmapPort(a.remote)
		err := errs[i]
		if err == nil && local.Addr().IsUnspecified() {
			err = errors.New("a frame needs the candidate's own address, not a wildcard")
		}
		if err != nil {
			log := p.cfg.Logger.Debug
			if !errors.Is(err, nexthop.ErrLocal) && !x.quiet.Swap(true) {
				log = p.cfg.Logger.Info
			}
			log("dataplane: afxdp: viewer served through the send sockets", "local", local, "remote", remote, "err", err)
			continue
		}
		h := res[i]
		hdr, err := udpframe.New(h.SrcMAC, h.DstMAC, local, remote)
		if err != nil {
			p.cfg.Logger.Warn("dataplane: afxdp: frame header", "local", local, "remote", remote, "err", err)
			continue
		}
		k := hopKey{ifindex: h.Ifindex, mtu: h.MTU}
		copy(k.srcMAC[:], h.SrcMAC)
		copy(k.dstMAC[:], h.DstMAC)
		hops[i], keys[i] = &viewerHop{ifindex: h.Ifindex, mtu: h.MTU, hdr: hdr}, k
	}
	return hops, keys
}

// notePath records v's path and hop for rehop. Called with p.mu held.
func (p *Plane) notePath(v *Viewer, local, remote netip.AddrPort, k hopKey) {
	if p.xdp == nil {
		return
	}
	p.xdp.paths[v] = viewerAddrs{local, remote}
	p.xdp.hops[v] = k
}

func (p *Plane) forgetPath(v *Viewer) {
	if p.xdp == nil {
		return
	}
	delete(p.xdp.paths, v)
	delete(p.xdp.hops, v)
}

// rehop resolves every viewer's path again after a change of routes,
// neighbours or links, and gives a new header to those whose next hop
// changed.
func (p *Plane) rehop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.xdp.rehops.Add(1)
	vs := make([]*Viewer, 0, len(p.xdp.paths))
	paths := make([]viewerAddrs, 0, len(p.xdp.paths))
	for v, a := range p.xdp.paths {
		vs, paths = append(vs, v), append(paths, a)
	}
	p.mu.Unlock()
	hops, keys := p.hopsFor(paths)
	var changed []int // viewers whose hop changed and whose path did not (SetPath)
	p.mu.Lock()
	for i, v := range vs {
		if old, ok := p.xdp.hops[v]; ok && p.xdp.paths[v] == paths[i] && old != keys[i] {
			p.xdp.hops[v] = keys[i]
			changed = append(changed, i)
		}
	}
	p.mu.Unlock()
	for _, i := range changed {
		vs[i].control(&op{kind: opHop, hop: hops[i]})
	}
	if len(changed) > 0 {
		p.cfg.Logger.Info("dataplane: afxdp: next hops changed", "viewers", len(changed))
	}
}

// setHop points v at its worker's socket for its hop's interface (or at
// none: the send sockets).
func (w *worker) setHop(v *Viewer) {
	v.xo = nil
	if v.hop != nil {
		v.xo = w.xouts[v.hop.ifindex]
	}
}

// putFrame builds the viewer's packet in a frame of its AF_XDP socket and
// queues it. It reports false when the packet could not be sent.
func (w *worker) putFrame(v *Viewer, vs *vstream, pk *packet, seq uint16, ts uint32) bool {
	x := v.xo
	if x.s == nil { // being swapped (SetZeroCopy)
		return w.putSock(v, vs, pk, seq, ts)
	}
	buf, frame, ok := x.s.Frame()
	if !ok {
		w.flushXDP(x)
		if buf, frame, ok = x.s.Frame(); !ok {
			w.st.drops.Add(1) // every frame still in the kernel
			return false
		}
	}
	h := v.hop.hdr
	hl := h.Len()
	n := 12 + 4*pk.f.cc + len(pk.body())
	out, err := w.seal(buf[hl:hl+n:len(buf)], vs, pk, seq, ts)
	if err != nil {
		x.s.Release(frame)
		w.st.errors.Add(1)
		return false
	}
	f := buf[:hl+len(out)]
	start := 0 // no checksum offload
	if x.s.Offload() {
		err, start = h.PutPartial(f), h.CsumStart()
	} else {
		err = h.Put(f)
	}
	if err != nil { // cannot happen: the frame holds the header and maxOut
		x.s.Release(frame)
		w.st.errors.Add(1)
		return false
	}
	x.s.Queue(frame, len(f), start, udpframe.CsumOffset)
	x.queued++
	x.bytes += uint64(len(out))
	if x.queued >= xdpFlushAt {
		w.flushXDP(x)
	}
	return true
}

// fitsFrame reports whether the packet, sealed, fits v's path MTU.
func fitsFrame(v *Viewer, pk *packet) bool {
	return v.hop.hdr.Len()-14+12+4*pk.f.cc+len(pk.body())+srtpOverhead <= v.hop.mtu
}

// flushXDP hands x's queued frames to the kernel.
func (w *worker) flushXDP(x *xout) {
	if x.s == nil || x.queued == 0 && x.s.Pending() == 0 {
		return
	}
	err := x.s.Flush()
	w.st.calls.Add(x.s.Kicks - x.kicks)
	x.kicks = x.s.Kicks
	if err != nil {
		w.st.errors.Add(uint64(x.queued))
		if !x.failed {
			x.failed = true
			w.p.cfg.Logger.Error("dataplane: afxdp send", "worker", w.id, "err", err)
		}
	} else {
		x.failed = false
		w.st.packets.Add(uint64(x.queued))
		w.st.datagrams.Add(uint64(x.queued))
		w.st.xdp.Add(uint64(x.queued))
		w.st.bytes.Add(x.bytes)
	}
	x.queued, x.bytes = 0, 0
}

// AFXDPSocket describes one AF_XDP socket, for the Admin API.
type AFXDPSocket struct {
	Interface   string `json:"interface"`
	Queue       int    `json:"queue"`
	Worker      int    `json:"worker"`
	Mode        string `json:"mode"` // "zero-copy" or "copy"
	Refused     string `json:"zerocopy_refused,omitempty"`
	Offload     bool   `json:"checksum_offload"`
	PassProgram string `json:"xdp_pass,omitempty"` // "driver", "generic", or "" when not attached
	TxInvalid   uint64 `json:"tx_invalid_descs"`
	TxRingEmpty uint64 `json:"tx_ring_empty_descs"`
}

// AFXDPRehops counts how often routes, neighbours, addresses or links
// changed and every viewer's next hop was resolved again; 0 outside afxdp
// mode.
func (p *Plane) AFXDPRehops() uint64 {
	if p.xdp == nil {
		return 0
	}
	return p.xdp.rehops.Load()
}

// AFXDPSockets lists the AF_XDP sockets, by interface and worker; nil
// outside afxdp mode.
func (p *Plane) AFXDPSockets() []AFXDPSocket {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.xdp == nil {
		return nil
	}
	var out []AFXDPSocket
	for _, ifc := range p.xdp.ifaces {
		for i, s := range ifc.socks {
			a := AFXDPSocket{Interface: ifc.name, Queue: s.QueueID(), Worker: i, Mode: s.Mode(), Offload: s.Offload()}
			if r := s.Refused(); r != nil {
				a.Refused = r.Error()
			}
			if ifc.pass != nil {
				a.PassProgram = ifc.pass.Mode()
			}
			if st, err := s.Stats(); err == nil {
				a.TxInvalid, a.TxRingEmpty = st.TxInvalidDescs, st.TxRingEmptyDescs
			}
			out = append(out, a)
		}
	}
	return out
}
