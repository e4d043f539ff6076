//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"github.com/spillway-rtc/spillway/internal/netns"
	"net"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// Map slots of the counter program.
const (
	slotUDP   = 0 // IPv4 and IPv6 UDP frames: counted and dropped
	slotOther = 1 // everything else (ARP, ND, ...): counted and passed
)

// XDP return codes (include/uapi/linux/bpf.h).
const (
	xdpDrop = 1
	xdpPass = 2
)

// XDPCounter is a loaded count-and-drop XDP program with its per-CPU
// counters. It is attached to at most one interface at a time.
type XDPCounter struct {
	mu   sync.Mutex
	m    *ebpf.Map
	prog *ebpf.Program
	l    link.Link
}

// Counts are totals over every CPU since the program was loaded.
type Counts struct {
	Packets uint64 // UDP frames, dropped
	Bytes   uint64 // their length from the Ethernet header on
	Other   uint64 // non-UDP frames, passed to the stack (ARP, ND, ...)
}

type counterValue struct{ Packets, Bytes uint64 }

// NewXDPCounter loads the program and its map. It needs CAP_BPF (root).
func NewXDPCounter() (*XDPCounter, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "spw_xdpcount",
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  16,
		MaxEntries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("bpf: create per-CPU array map (needs root or CAP_BPF): %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "spw_xdpcount",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: counterProgram(m.FD()),
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("bpf: load XDP program: %w", err)
	}
	return &XDPCounter{m: m, prog: prog}, nil
}

// counterProgram classifies the frame (IPv4 or IPv6 with UDP as the next
// header, or anything else), adds it to that slot and drops UDP. Frames too
// short to classify count as other and pass.
func counterProgram(mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // ctx->data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // ctx->data_end
		asm.Mov.Reg(asm.R6, asm.R3),
		asm.Sub.Reg(asm.R6, asm.R2), // frame length, kept across the call
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "other"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half), // ethertype, read little-endian
		asm.JEq.Imm(asm.R5, 0x0008, "ipv4"),       // 0x0800
		asm.JEq.Imm(asm.R5, 0xdd86, "ipv6"),       // 0x86dd
		asm.Ja.Label("other"),

		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R4, 14+10),
		asm.JGT.Reg(asm.R4, asm.R3, "other"),
		asm.LoadMem(asm.R5, asm.R2, 14+9, asm.Byte), // protocol
		asm.JEq.Imm(asm.R5, 17, "udp"),
		asm.Ja.Label("other"),

		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R4, 14+7),
		asm.JGT.Reg(asm.R4, asm.R3, "other"),
		asm.LoadMem(asm.R5, asm.R2, 14+6, asm.Byte), // next header
		asm.JEq.Imm(asm.R5, 17, "udp"),

		asm.StoreImm(asm.RFP, -4, slotOther, asm.Word).WithSymbol("other"),
		asm.Mov.Imm(asm.R7, xdpPass),
		asm.Ja.Label("count"),

		asm.StoreImm(asm.RFP, -4, slotUDP, asm.Word).WithSymbol("udp"),
		asm.Mov.Imm(asm.R7, xdpDrop),

		asm.LoadMapPtr(asm.R1, mapFD).WithSymbol("count"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R6),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R7).WithSymbol("out"),
		asm.Return(),
	}
}

// Attach attaches the program in native (driver) mode to the interface
// with the given index, in the calling thread's network namespace. Native
// mode is what a veth needs to take the frames before the stack does.
func (c *XDPCounter) Attach(ifindex int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prog == nil {
		return errors.New("bpf: XDP counter closed")
	}
	if c.l != nil {
		return errors.New("bpf: XDP counter already attached")
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: c.prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return fmt.Errorf("bpf: attach XDP in native mode (bpf_link, Linux 5.9) to ifindex %d: %w", ifindex, err)
	}
	c.l = l
	return nil
}

// AttachInNetns attaches the program to the interface ifname of the
// network namespace ns (a name under /run/ns, or a path). The link
// belongs to the process, not to the namespace's threads, so the counter
// may be read and closed from anywhere.
func (c *XDPCounter) AttachInNetns(ns, ifname string) error {
	return netns.Run(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("bpf: interface %s in ns %s: %w", ifname, ns, err)
		}
		return c.Attach(ifi.Index)
	})
}

// Read sums the counters over every CPU.
func (c *XDPCounter) Read() (Counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		return Counts{}, errors.New("bpf: XDP counter closed")
	}
	var cs Counts
	var vals []counterValue
	if err := c.m.Lookup(uint32(slotUDP), &vals); err != nil {
		return cs, fmt.Errorf("bpf: read UDP counters: %w", err)
	}
	for _, v := range vals {
		cs.Packets += v.Packets
		cs.Bytes += v.Bytes
	}
	if err := c.m.Lookup(uint32(slotOther), &vals); err != nil {
		return cs, fmt.Errorf("bpf: read other counters: %w", err)
	}
	for _, v := range vals {
		cs.Other += v.Packets
	}
	return cs, nil
}

// Close detaches the program (closing the link) and frees it. Idempotent.
func (c *XDPCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.l != nil {
		errs = append(errs, c.l.Close())
		c.l = nil
	}
	if c.prog != nil {
		errs = append(errs, c.prog.Close())
		c.prog = nil
	}
	if c.m != nil {
		errs = append(errs, c.m.Close())
		c.m = nil
	}
	return errors.Join(errs...)
}
