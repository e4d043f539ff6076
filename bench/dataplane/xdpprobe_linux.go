//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/spillway-rtc/spillway/dataplane/afxdp"
	"github.com/spillway-rtc/spillway/dataplane/nexthop"
	"github.com/spillway-rtc/spillway/dataplane/udpframe"
)

// The AF_XDP limit probe: what one core can encrypt and send through one
// AF_XDP socket (copy mode on the veth) to the same viewers, with no data
// plane around it. The same bare cipher and packets as the limit probe (16
// packets of 1200 bytes per viewer in turn, 32 viewers per round), each
// sealed straight into a UMEM frame behind its Ethernet, IPv4 and UDP
// header (the checksum left to the kernel, as the data plane leaves it),
// one wake-up per round. The afxdp rows' × limit is over this probe.

type xdpProbe struct {
	sealer
	s       *afxdp.Socket
	viewers []probeViewer
	hdrs    []*udpframe.Header
	next    int
	seq     uint16

	sent, calls atomic.Uint64
}

func newXDPProbe(gcm bool, local netip.AddrPort, remotes []netip.AddrPort) (*xdpProbe, error) {
	p := &xdpProbe{sealer: newSealer(gcm, probeSize)}
	var err error
	if p.viewers, err = probeViewers(gcm, remotes); err != nil {
		return nil, err
	}
	res, err := nexthop.New()
	if err != nil {
		return nil, err
	}
	defer res.Close()
	pairs := make([]nexthop.Pair, len(remotes))
	for i, r := range remotes {
		pairs[i] = nexthop.Pair{Src: local.Addr(), Dst: r.Addr()}
	}
	hops, errs := res.ResolveMany(pairs)
	for i, r := range remotes {
		if errs[i] != nil {
			return nil, fmt.Errorf("afxdp probe: %w", errs[i])
		}
		h, err := udpframe.New(hops[i].SrcMAC, hops[i].DstMAC, local, r)
		if err != nil {
			return nil, err
		}
		p.hdrs = append(p.hdrs, h)
	}
	if p.s, err = afxdp.Open(afxdp.Config{Ifindex: hops[0].Ifindex}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *xdpProbe) close() { p.s.Close() }

func (p *xdpProbe) counts() counters {
	n := p.sent.Load()
	return counters{sent: n, dgrams: n, calls: p.calls.Load()}
}

// step seals and queues 16 packets for each of the next 32 viewers and
// hands them to the kernel.
func (p *xdpProbe) step() (int, error) {
	segLen := probeSize + p.tag
	n := 0
	for range probeBatch {
		v, h := &p.viewers[p.next], p.hdrs[p.next]
		hl := h.Len()
		for k := range probeSegs {
			buf, f, ok := p.s.Frame()
			if !ok {
				if err := p.flush(&n); err != nil {
					return n, err
				}
				if buf, f, ok = p.s.Frame(); !ok {
					return n, fmt.Errorf("afxdp probe: no frame free after a flush")
				}
			}
			frame := buf[:hl+segLen]
			p.seal(v, frame[hl:], probeSize, p.seq+uint16(k))
			if p.s.Offload() {
				h.PutPartial(frame)
				p.s.Queue(f, len(frame), h.CsumStart(), udpframe.CsumOffset)
			} else {
				h.Put(frame)
				p.s.Queue(f, len(frame), 0, 0)
			}
			n++
		}
		p.next++
		if p.next == len(p.viewers) {
			p.next = 0
			p.seq += probeSegs
		}
	}
	total := n
	return total, p.flush(&n)
}

// flush hands the queued frames to the kernel and counts them (*n is
// reset).
func (p *xdpProbe) flush(n *int) error {
	k := p.s.Kicks
	err := p.s.Flush()
	p.calls.Add(p.s.Kicks - k)
	p.sent.Add(uint64(*n))
	*n = 0
	return err
}
