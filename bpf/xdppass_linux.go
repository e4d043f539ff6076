//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// XDPPass is an XDP program that returns XDP_PASS for every frame,
// attached to one interface through a bpf link. AF_XDP egress needs it on
// drivers (i40e, ice, ixgbe and others) that create the TX queues of
// zero-copy AF_XDP only while an XDP program is attached in driver mode;
// every frame still reaches the kernel stack untouched, so ICE, DTLS and
// RTCP arrive as before. The kernel detaches the link when the last file
// descriptor to it closes, which is at the latest when the process exits,
// even after a crash or SIGKILL: no program stays behind on the interface.
type XDPPass struct {
	mu       sync.Mutex
	prog     *ebpf.Program
	l        link.Link
	mode     string
	fallback error
}

// xdpPassProgram returns XDP_PASS without reading the frame.
func xdpPassProgram() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
	}
}

// AttachXDPPass loads the program and attaches it to the interface
// ifindex of the calling thread's network namespace: in driver (native)
// mode first, then in generic (skb) mode if the driver refuses, as drivers
// without XDP support do. Mode and Fallback tell which it got and why.
// Generic mode keeps the stack's traffic flowing but runs outside the
// driver, so it does not make the driver create its XDP TX queues.
//
// If another XDP program is attached to the interface, the error says so
// and wraps EBUSY or EEXIST. Needs CAP_BPF and CAP_NET_ADMIN (root) and
// Linux 5.9 (XDP bpf links).
func AttachXDPPass(ifindex int) (*XDPPass, error) {
	name := xdpIfname(ifindex)
	prog, err := loadXDPPass()
	if err != nil {
		return nil, err
	}
	attach := func(mode link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: mode})
	}
	busy := func(err error) error {
		prog.Close()
		return fmt.Errorf("bpf: xdp pass: attach to %s: another XDP program is attached to it or to a device stacked on it (see it with `ip link show dev %s`): %w", name, name, err)
	}
	l, derr := attach(link.XDPDriverMode)
	if derr == nil {
		return &XDPPass{prog: prog, l: l, mode: "driver"}, nil
	}
	if errors.Is(derr, unix.EBUSY) || errors.Is(derr, unix.EEXIST) {
		return nil, busy(derr)
	}
	l, gerr := attach(link.XDPGenericMode)
	if errors.Is(gerr, unix.EBUSY) || errors.Is(gerr, unix.EEXIST) {
		return nil, busy(gerr)
	}
	if gerr != nil {
		prog.Close()
		return nil, fmt.Errorf("bpf: xdp pass: attach to %s: driver mode: %w; generic mode: %w", name, derr, gerr)
	}
	fallback := fmt.Errorf("bpf: xdp pass: driver mode refused on %s: %w", name, derr)
	return &XDPPass{prog: prog, l: l, mode: "generic", fallback: fallback}, nil
}

// loadXDPPass loads the program declaring that it handles frames in
// several buffers (BPF_F_XDP_HAS_FRAGS, Linux 5.18), which it does since it
// reads none: a driver or veth with an MTU above a page refuses a program
// without the flag in driver mode. Older kernels reject the flag; the
// program is then loaded without it.
func loadXDPPass() (*ebpf.Program, error) {
	spec := &ebpf.ProgramSpec{
		Name:         "spw_xdppass",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: xdpPassProgram(),
		Flags:        unix.BPF_F_XDP_HAS_FRAGS,
	}
	prog, err := ebpf.NewProgram(spec)
	if err == nil {
		return prog, nil
	}
	spec.Flags = 0
	prog, err = ebpf.NewProgram(spec)
	if err != nil {
		return nil, fmt.Errorf("bpf: xdp pass: load XDP program (needs root or CAP_BPF): %w", err)
	}
	return prog, nil
}

// xdpIfname names the interface for errors, or gives its index if it has
// no name in the calling thread's namespace.
func xdpIfname(ifindex int) string {
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifi.Name
	}
	return "ifindex " + strconv.Itoa(ifindex)
}

// Mode is "driver" or "generic": where the program runs.
func (p *XDPPass) Mode() string { return p.mode }

// Fallback is why driver mode was refused; nil in driver mode.
func (p *XDPPass) Fallback() error { return p.fallback }

// Close detaches the program (closing the link) and unloads it.
// Idempotent.
func (p *XDPPass) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.l != nil {
		if err := p.l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bpf: xdp pass: detach: %w", err))
		}
		p.l = nil
	}
	if p.prog != nil {
		if err := p.prog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bpf: xdp pass: unload: %w", err))
		}
		p.prog = nil
	}
	return errors.Join(errs...)
}
