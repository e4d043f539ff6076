//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/spillway-rtc/spillway/internal/netns"
	"net"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Counter slots of the media sink programs.
const (
	mediaSlotRTP     = 0 // RTP to a destination outside the sample set: dropped
	mediaSlotSampled = 1 // RTP to a sample destination: passed
	mediaSlotOther   = 2 // UDP that is not RTP (STUN, DTLS, RTCP, ...): passed
	mediaSlotNotUDP  = 3 // not IPv4/IPv6 UDP with a readable header: passed
	mediaSlotRTCP    = 4 // RTCP to a destination outside the sample set: dropped
	mediaSlots       = 5
)

// tc return codes (include/uapi/linux/pkt_cls.h); tcx reads them alike.
const (
	tcActOK   = 0
	tcActShot = 2
)

// __sk_buff field offsets (include/uapi/linux/bpf.h).
const (
	skbLen     = 0
	skbGSOSegs = 164
	skbGSOSize = 176
)

// mediaSampleKeySize is the sample map's key: a 16-byte address (IPv4 in
// its v4-mapped form, ::ffff:a.b.c.d), the UDP port in network byte order
// and two zero bytes of padding.
const mediaSampleKeySize = 20

// MediaSampleMax is how many sample destinations a MediaSink holds.
const MediaSampleMax = 1024

// mediaFlowKeySize is the flow map's key: the sample key, then the RTP
// SSRC as it is on the wire.
const mediaFlowKeySize = mediaSampleKeySize + 4

// MediaFlowMax is how many RTP streams (destination and SSRC) a MediaSink
// follows beyond its port table; past that the least recently seen are
// forgotten.
const MediaFlowMax = 1 << 16

// The port table: the usual stream is followed through two array
// accesses instead of a hash lookup's chain (the sink runs on the
// server's core, which a NIC would not charge it). An array indexed by the
// destination port (its two bytes as on the wire, read little-endian)
// gives the port's entry in a second array, taken in the order ports first
// appear, so the entries of a benchmark's viewers lie together in a few
// pages instead of one page each. An entry belongs to the first address
// seen on its port and holds two streams, audio and video; a stream that
// finds its port taken by another address, both places taken or no entry
// left goes to the LRU hash. Entry 0 is not a port's: its first 8 bytes
// count the entries taken. Two CPUs that meet a new port at once may both
// take an entry; the one not kept holds the packets of that moment, and
// Flows adds them up.
const (
	portEntrySize = 64 // address 16, port index u32, 12 spare, two {packets u64, highest u32, SSRC u32}
	portIndex     = 16
	portStream0   = 32
	portStream1   = 48
	portEntries   = 1 << 16
)

// MediaSink counts and drops RTP and RTCP on their way to viewers, so a
// benchmark's client side pays nothing for media except to a few sample
// viewers, while ICE (STUN), DTLS and anything that is not UDP pass
// untouched. Dropping the server's RTCP (sender reports) matters as much as
// the media's: on a veth the receiver's stack runs on the sender's core,
// which a NIC would not charge it. It
// loads two programs over one set of maps: a tcx egress program for the
// server's interface (a NIC with UDP segmentation offload: a GSO skb counts
// as all its segments) and an XDP program for the client's (a NIC without
// it: the sender segments, and each frame is counted here).
//
// A MediaSink is attached at one place at a time, through AttachTC or
// AttachXDP; a second attachment fails. Both programs share the counters
// and the sample set, so one sink on both paths would count every passed
// packet twice: a bench that wants both uses two MediaSinks.
type MediaSink struct {
	mu       sync.Mutex
	counters *ebpf.Map // per-CPU array of mediaSlots {packets, bytes}
	samples  *ebpf.Map // hash: sample key -> 1
	flows    *ebpf.Map // LRU hash: flow key -> {packets u64, highest sequence number u32, 0}
	ports    *ebpf.Map // array: port index -> entry number (0: none)
	entries  *ebpf.Map // mmapable array of port entries
	tc, xdp  *ebpf.Program
	l        link.Link
}

// MediaCounts are totals over every CPU since the sink was loaded.
// Packets are packets on the wire: a GSO skb seen by the tc program counts
// as its gso_segs segments. Bytes are UDP payload bytes, that is the
// packet's length from the Ethernet header on minus the Ethernet, IP and UDP
// headers, which for a GSO skb (one set of headers) is the payload of all
// its segments; for an RTP packet that is the RTP header, payload and SRTP
// tag, everything after the UDP header.
type MediaCounts struct {
	Packets      uint64 // RTP to non-sample destinations: dropped
	Bytes        uint64 // their UDP payload bytes
	Sampled      uint64 // RTP to sample destinations: passed
	SampledBytes uint64 // their UDP payload bytes
	RTCP         uint64 // RTCP to non-sample destinations: dropped
	Other        uint64 // packets passed that are not RTP, NotUDP included
	NotUDP       uint64 // the part of Other that is not IPv4/IPv6 UDP (ARP, ND, ICMP, fragments, IPv6 extension headers)
}

// mediaKind selects what differs between the tc and XDP programs.
type mediaKind struct {
	load       asm.BuiltinFunc // bpf_skb_load_bytes or bpf_xdp_load_bytes: same arguments
	pass, drop int32
	tc         bool // skb: length and gso_segs from __sk_buff
}

var (
	mediaTC  = mediaKind{load: asm.FnSkbLoadBytes, pass: tcActOK, drop: tcActShot, tc: true}
	mediaXDP = mediaKind{load: asm.FnXdpLoadBytes, pass: xdpPass, drop: xdpDrop}
)

// NewMediaSink creates the maps and loads both programs. It needs CAP_BPF
// (root); the tc program needs tcx (Linux 6.6) only when attached.
func NewMediaSink() (*MediaSink, error) {
	s := &MediaSink{}
	var err error
	s.counters, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "spw_ms_counts",
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  16,
		MaxEntries: mediaSlots,
	})
	if err != nil {
		return nil, fmt.Errorf("bpf: media sink: create per-CPU array map (needs root or CAP_BPF): %w", err)
	}
	s.samples, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "spw_ms_samples",
		Type:       ebpf.Hash,
		KeySize:    mediaSampleKeySize,
		ValueSize:  4,
		MaxEntries: MediaSampleMax,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("bpf: media sink: create sample hash map: %w", err)
	}
	s.flows, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "spw_ms_flows",
		Type:       ebpf.LRUHash,
		KeySize:    mediaFlowKeySize,
		ValueSize:  16,
		MaxEntries: MediaFlowMax,
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("bpf: media sink: create flow map: %w", err)
	}
	s.ports, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "spw_ms_ports",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: portEntries,
	})
	if err == nil {
		s.entries, err = ebpf.NewMap(&ebpf.MapSpec{
			Name:       "spw_ms_entries",
			Type:       ebpf.Array,
			KeySize:    4,
			ValueSize:  portEntrySize,
			MaxEntries: portEntries,
			Flags:      unix.BPF_F_MMAPABLE,
		})
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("bpf: media sink: create port table: %w", err)
	}
	maps := mediaMaps{counters: s.counters.FD(), samples: s.samples.FD(), flows: s.flows.FD(), ports: s.ports.FD(), entries: s.entries.FD()}
	s.tc, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "spw_ms_tc",
		Type:         ebpf.SchedCLS,
		License:      "Dual MIT/GPL",
		Instructions: mediaProgram(mediaTC, maps),
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("bpf: media sink: load tc program: %w", err)
	}
	s.xdp, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "spw_ms_xdp",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: mediaProgram(mediaXDP, maps),
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("bpf: media sink: load XDP program (bpf_xdp_load_bytes, Linux 5.18): %w", err)
	}
	return s, nil
}

// Stack layout of the program (offsets from the frame pointer).
const (
	fpEther = -8   // 2 bytes: ethertype
	fpHdr   = -16  // u64: bytes of Ethernet, IP and UDP headers (0 until known)
	fpBytes = -24  // u64: bytes to add to the slot
	fpSlot  = -32  // u32: counter slot, the counter map's key
	fpKey   = -56  // 24 bytes: sample key (address 16, port 2, pad 2), then the SSRC: the flow key
	fpIP    = -96  // 40 bytes: IPv4 header (20 of them) or IPv6 header
	fpUDP   = -112 // 10 bytes: UDP header and the first two payload bytes
	fpRTP   = -128 // 12 bytes: the first segment's RTP header
	fpLast  = -144 // 12 bytes: the last segment's RTP header
	fpVal   = -160 // 16 bytes: a new flow's value
	fpSeq   = -168 // u64: sequence number to record in the flow
	fpN     = -176 // u64: packets to add to the flow
	fpPort  = -184 // u32: the port table's key
	fpEntry = -188 // u32: the entry table's key
	fpPtr   = -200 // the port's value in the port table, while an entry is taken
)

// fetchAdd is *(u64 *)dst += src, src getting the old value. cilium/ebpf
// v0.22 encodes asm.FetchAdd without BPF_FETCH in the immediate (it takes
// the immediate from Constant before it derives Constant from the op), so
// the kernel would run a plain add and leave src as it was: Constant says
// it here.
func fetchAdd(dst, src asm.Register) asm.Instruction {
	ins := asm.FetchAdd.Mem(dst, src, asm.DWord, 0)
	ins.Constant = int64(asm.FetchAdd >> 8)
	return ins
}

// mediaMaps are the file descriptors of a MediaSink's maps.
type mediaMaps struct{ counters, samples, flows, ports, entries int }

// mediaProgram classifies a frame by RFC 7983's first payload byte and
// RFC 5761's RTCP rule, counts it and decides: RTP (first byte 128-191,
// second byte not 192-223) and RTCP (second byte 192-223) to a destination
// outside the sample set are dropped, everything else passes. Reads go through the load-bytes helper,
// which also reaches payload in a GSO skb's page fragments. Registers kept
// across calls: R6 ctx, R7 verdict, R8 slot, R9 packets. Header constants
// are compared as read on a little-endian host, as in counterProgram.
func mediaProgram(k mediaKind, maps mediaMaps) asm.Instructions {
	// loadOr copies n bytes at the packet offset in R2 to the stack at fp,
	// and goes to fail when the packet is too short.
	loadOr := func(fp int16, n int32, fail string) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, int32(fp)),
			asm.Mov.Imm(asm.R4, n),
			k.load.Call(),
			asm.JNE.Imm(asm.R0, 0, fail),
		}
	}
	load := func(fp int16, n int32) asm.Instructions { return loadOr(fp, n, "count") }
	var p asm.Instructions
	add := func(ins ...asm.Instruction) { p = append(p, ins...) }
	addAll := func(is asm.Instructions) { p = append(p, is...) }

	add(
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R7, k.pass),
		asm.Mov.Imm(asm.R8, mediaSlotNotUDP),
		asm.Mov.Imm(asm.R9, 1),
	)
	if k.tc {
		// A GSO skb leaves as gso_segs packets; 0 means not GSO.
		add(
			asm.LoadMem(asm.R9, asm.R6, skbGSOSegs, asm.Word),
			asm.JNE.Imm(asm.R9, 0, "segs"),
			asm.Mov.Imm(asm.R9, 1),
		)
	}
	add(
		asm.Mov.Imm(asm.R1, 0).WithSymbol("segs"),
		asm.StoreMem(asm.RFP, fpHdr, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R2, 12),
	)
	addAll(load(fpEther, 2))
	add(
		asm.LoadMem(asm.R1, asm.RFP, fpEther, asm.Half), // read little-endian
		asm.JEq.Imm(asm.R1, 0x0008, "ipv4"),             // 0x0800
		asm.JEq.Imm(asm.R1, 0xdd86, "ipv6"),             // 0x86dd
		asm.Ja.Label("count"),

		asm.Mov.Imm(asm.R2, 14).WithSymbol("ipv4"),
	)
	addAll(load(fpIP, 20))
	add(
		asm.LoadMem(asm.R1, asm.RFP, fpIP+9, asm.Byte), // protocol
		asm.JNE.Imm(asm.R1, 17, "count"),
		// A fragment (MF set or an offset) may have no UDP header, or
		// another datagram's: flags and offset & 0x3fff, read little-endian.
		asm.LoadMem(asm.R1, asm.RFP, fpIP+6, asm.Half),
		asm.And.Imm(asm.R1, 0xff3f),
		asm.JNE.Imm(asm.R1, 0, "count"),
		asm.LoadMem(asm.R1, asm.RFP, fpIP, asm.Byte), // version and IHL
		asm.And.Imm(asm.R1, 0x0f),
		asm.LSh.Imm(asm.R1, 2),
		asm.JLT.Imm(asm.R1, 20, "count"),
		asm.Add.Imm(asm.R1, 14+8),
		asm.StoreMem(asm.RFP, fpHdr, asm.R1, asm.DWord),
		// Key address ::ffff:daddr: zeros, 00 00 ff ff, the address.
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
		asm.StoreImm(asm.RFP, fpKey+8, -65536, asm.Word), // bytes 00 00 ff ff on a little-endian host
		asm.LoadMem(asm.R1, asm.RFP, fpIP+16, asm.Word),
		asm.StoreMem(asm.RFP, fpKey+12, asm.R1, asm.Word),
		asm.Ja.Label("udp"),

		asm.Mov.Imm(asm.R2, 14).WithSymbol("ipv6"),
	)
	addAll(load(fpIP, 40))
	add(
		// UDP right after the fixed header only: extension headers pass.
		asm.LoadMem(asm.R1, asm.RFP, fpIP+6, asm.Byte), // next header
		asm.JNE.Imm(asm.R1, 17, "count"),
		asm.Mov.Imm(asm.R1, 14+40+8),
		asm.StoreMem(asm.RFP, fpHdr, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpIP+24, asm.DWord), // daddr
		asm.StoreMem(asm.RFP, fpKey, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpIP+32, asm.DWord),
		asm.StoreMem(asm.RFP, fpKey+8, asm.R1, asm.DWord),

		asm.Mov.Imm(asm.R8, mediaSlotOther).WithSymbol("udp"),
		asm.LoadMem(asm.R2, asm.RFP, fpHdr, asm.DWord),
		asm.Add.Imm(asm.R2, -8),
	)
	addAll(load(fpUDP, 10)) // fewer than two payload bytes: not RTP
	add(
		asm.LoadMem(asm.R1, asm.RFP, fpUDP+8, asm.Byte),
		asm.JLT.Imm(asm.R1, 128, "count"),
		asm.JGT.Imm(asm.R1, 191, "count"),
		asm.LoadMem(asm.R1, asm.RFP, fpUDP+2, asm.Half), // dest port, as is
		asm.StoreMem(asm.RFP, fpKey+16, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, fpKey+18, 0, asm.Half),
		asm.LoadMapPtr(asm.R1, maps.samples),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.FnMapLookupElem.Call(),
		asm.LoadMem(asm.R1, asm.RFP, fpUDP+9, asm.Byte),
		asm.JLT.Imm(asm.R1, 192, "rtp"),
		asm.JGT.Imm(asm.R1, 223, "rtp"),
		// RTCP: to a sample it passes (as Other), else it is dropped.
		asm.JNE.Imm(asm.R0, 0, "count"),
		asm.Mov.Imm(asm.R8, mediaSlotRTCP),
		asm.Mov.Imm(asm.R7, k.drop),
		asm.Ja.Label("count"),

		asm.Mov.Imm(asm.R8, mediaSlotRTP).WithSymbol("rtp"),
		asm.Mov.Imm(asm.R7, k.drop),
		asm.JEq.Imm(asm.R0, 0, "flow"),
		asm.Mov.Imm(asm.R8, mediaSlotSampled),
		asm.Mov.Imm(asm.R7, k.pass),
	)
	addAll(mediaFlow(k, loadOr, maps))

	// count: bytes = length - headers (the whole length when not UDP).
	if k.tc {
		add(asm.LoadMem(asm.R1, asm.R6, skbLen, asm.Word).WithSymbol("count"))
	} else {
		add(
			asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("count"),
			asm.FnXdpGetBuffLen.Call(),
			asm.Mov.Reg(asm.R1, asm.R0),
		)
	}
	add(
		asm.LoadMem(asm.R2, asm.RFP, fpHdr, asm.DWord),
		asm.Sub.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.RFP, fpBytes, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, fpSlot, asm.R8, asm.Word),
		asm.LoadMapPtr(asm.R1, maps.counters),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpSlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R9),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, fpBytes, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R7).WithSymbol("out"),
		asm.Return(),
	)
	return p
}

// mediaFlow follows each RTP stream (destination and SSRC): the packets
// seen and the highest sequence number, extended past its wraps. From two
// readings, a stream's loss is how far its sequence number advanced less
// the packets that came, which does not depend on how much the server had
// queued at either reading. A GSO skb is one viewer's consecutive packets
// of equal size, the last one maybe shorter; the sequence number recorded
// is its last segment's. Only that last, shorter segment may be of another
// stream of the viewer (audio after video): then each stream gets its own.
func mediaFlow(k mediaKind, loadOr func(fp int16, n int32, fail string) asm.Instructions, maps mediaMaps) asm.Instructions {
	var p asm.Instructions
	add := func(ins ...asm.Instruction) { p = append(p, ins...) }
	seq := func(fp int16) asm.Instructions { // the sequence number at fp's header, host order, to fpSeq
		return asm.Instructions{
			asm.LoadMem(asm.R1, asm.RFP, fp+2, asm.Half),
			asm.HostTo(asm.BE, asm.R1, asm.Half),
			asm.StoreMem(asm.RFP, fpSeq, asm.R1, asm.DWord),
		}
	}
	// update adds fpN packets and fpSeq to the flow of the key at fpKey:
	// in the port table when the port is free or the address's, and the
	// SSRC has or finds a place there; else in the LRU hash. R0 points at
	// the flow's {packets u64, highest u32} in "bump".
	update := func(sfx string) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(asm.R1, asm.RFP, fpKey+16, asm.Half),
			asm.StoreMem(asm.RFP, fpPort, asm.R1, asm.Word),
			asm.LoadMapPtr(asm.R1, maps.ports),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, fpPort),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "hash"+sfx),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
			asm.JNE.Imm(asm.R1, 0, "entry"+sfx),
			// A new port: take the next entry, counted in entry 0.
			asm.StoreMem(asm.RFP, fpPtr, asm.R0, asm.DWord),
			asm.StoreImm(asm.RFP, fpEntry, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, maps.entries),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, fpEntry),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "hash"+sfx),
			asm.Mov.Imm(asm.R1, 1),
			fetchAdd(asm.R0, asm.R1),
			asm.Add.Imm(asm.R1, 1),
			asm.JGE.Imm(asm.R1, portEntries, "hash"+sfx),
			asm.LoadMem(asm.R0, asm.RFP, fpPtr, asm.DWord),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.Word),
			asm.StoreMem(asm.RFP, fpEntry, asm.R1, asm.Word).WithSymbol("entry" + sfx),
			asm.LoadMapPtr(asm.R1, maps.entries),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, fpEntry),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "hash"+sfx),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.LoadMem(asm.R2, asm.RFP, fpKey, asm.DWord),
			asm.LoadMem(asm.R3, asm.R0, 8, asm.DWord),
			asm.LoadMem(asm.R4, asm.RFP, fpKey+8, asm.DWord),
			asm.JNE.Reg(asm.R1, asm.R2, "claim"+sfx),
			asm.JEq.Reg(asm.R3, asm.R4, "own"+sfx),
			// Another address's port, or a free entry to take.
			asm.JNE.Imm(asm.R1, 0, "hash"+sfx).WithSymbol("claim" + sfx),
			asm.JNE.Imm(asm.R3, 0, "hash"+sfx),
			asm.StoreMem(asm.R0, 0, asm.R2, asm.DWord),
			asm.StoreMem(asm.R0, 8, asm.R4, asm.DWord),
			asm.LoadMem(asm.R1, asm.RFP, fpPort, asm.Word),
			asm.StoreMem(asm.R0, portIndex, asm.R1, asm.Word),
			// A place in use (packets not 0) with this SSRC, else a free one.
			asm.LoadMem(asm.R5, asm.RFP, fpKey+20, asm.Word).WithSymbol("own" + sfx),
			asm.LoadMem(asm.R1, asm.R0, portStream0, asm.DWord),
			asm.JEq.Imm(asm.R1, 0, "try1"+sfx),
			asm.LoadMem(asm.R1, asm.R0, portStream0+12, asm.Word),
			asm.JNE.Reg(asm.R1, asm.R5, "try1"+sfx),
			asm.Add.Imm(asm.R0, portStream0),
			asm.Ja.Label("bump" + sfx),
			asm.LoadMem(asm.R1, asm.R0, portStream1, asm.DWord).WithSymbol("try1" + sfx),
			asm.JEq.Imm(asm.R1, 0, "free"+sfx),
			asm.LoadMem(asm.R1, asm.R0, portStream1+12, asm.Word),
			asm.JNE.Reg(asm.R1, asm.R5, "free"+sfx),
			asm.Add.Imm(asm.R0, portStream1),
			asm.Ja.Label("bump" + sfx),
			asm.LoadMem(asm.R1, asm.R0, portStream0, asm.DWord).WithSymbol("free" + sfx),
			asm.JEq.Imm(asm.R1, 0, "take0"+sfx),
			asm.LoadMem(asm.R1, asm.R0, portStream1, asm.DWord),
			asm.JNE.Imm(asm.R1, 0, "hash"+sfx),
			asm.Add.Imm(asm.R0, portStream1),
			asm.Ja.Label("fill" + sfx),
			asm.Add.Imm(asm.R0, portStream0).WithSymbol("take0" + sfx),
			asm.StoreMem(asm.R0, 12, asm.R5, asm.Word).WithSymbol("fill" + sfx),
			asm.LoadMem(asm.R1, asm.RFP, fpSeq, asm.DWord),
			asm.StoreMem(asm.R0, 8, asm.R1, asm.Word),
			asm.LoadMem(asm.R1, asm.RFP, fpN, asm.DWord),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Ja.Label("done" + sfx),

			asm.LoadMapPtr(asm.R1, maps.flows).WithSymbol("hash" + sfx),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, fpKey),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "new"+sfx),
			asm.LoadMem(asm.R1, asm.RFP, fpN, asm.DWord).WithSymbol("bump" + sfx),
			asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
			// A sequence number up to 2^15 ahead of the highest (mod
			// 2^16) moves it; one behind is late and moves nothing.
			asm.LoadMem(asm.R2, asm.R0, 8, asm.Word),
			asm.LoadMem(asm.R3, asm.RFP, fpSeq, asm.DWord),
			asm.Sub.Reg(asm.R3, asm.R2),
			asm.And.Imm(asm.R3, 0xffff),
			asm.JEq.Imm(asm.R3, 0, "done"+sfx),
			asm.JGE.Imm(asm.R3, 0x8000, "done"+sfx),
			asm.Add.Reg(asm.R2, asm.R3),
			asm.StoreMem(asm.R0, 8, asm.R2, asm.Word),
			asm.Ja.Label("done" + sfx),

			asm.LoadMem(asm.R1, asm.RFP, fpN, asm.DWord).WithSymbol("new" + sfx),
			asm.StoreMem(asm.RFP, fpVal, asm.R1, asm.DWord),
			asm.LoadMem(asm.R1, asm.RFP, fpSeq, asm.DWord),
			asm.StoreMem(asm.RFP, fpVal+8, asm.R1, asm.Word),
			asm.StoreImm(asm.RFP, fpVal+12, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, maps.flows),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, fpKey),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, fpVal),
			asm.Mov.Imm(asm.R4, 0), // BPF_ANY
			asm.FnMapUpdateElem.Call(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("done" + sfx),
		}
	}

	add(asm.LoadMem(asm.R2, asm.RFP, fpHdr, asm.DWord).WithSymbol("flow"))
	p = append(p, loadOr(fpRTP, 12, "count")...)
	add(
		asm.LoadMem(asm.R1, asm.RFP, fpRTP+8, asm.Word), // SSRC, as on the wire
		asm.StoreMem(asm.RFP, fpKey+20, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, fpN, asm.R9, asm.DWord),
	)
	p = append(p, seq(fpRTP)...)
	if k.tc {
		add(
			asm.JLE.Imm(asm.R9, 1, "one"),
			// The last segment starts (segs-1) x gso_size into the payload.
			asm.LoadMem(asm.R1, asm.R6, skbGSOSize, asm.Word),
			asm.Mov.Reg(asm.R2, asm.R9),
			asm.Sub.Imm(asm.R2, 1),
			asm.Mul.Reg(asm.R2, asm.R1),
			asm.LoadMem(asm.R1, asm.RFP, fpHdr, asm.DWord),
			asm.Add.Reg(asm.R2, asm.R1),
		)
		p = append(p, loadOr(fpLast, 12, "one")...)
		add(
			asm.LoadMem(asm.R1, asm.RFP, fpLast+8, asm.Word),
			asm.LoadMem(asm.R2, asm.RFP, fpRTP+8, asm.Word),
			asm.JNE.Reg(asm.R1, asm.R2, "mixed"),
		)
		p = append(p, seq(fpLast)...)
		add(
			asm.Ja.Label("one"),

			// The first segs-1 are the first stream's, numbered on from
			// the first segment's.
			asm.Mov.Reg(asm.R1, asm.R9).WithSymbol("mixed"),
			asm.Sub.Imm(asm.R1, 1),
			asm.StoreMem(asm.RFP, fpN, asm.R1, asm.DWord),
			asm.LoadMem(asm.R2, asm.RFP, fpSeq, asm.DWord),
			asm.Add.Reg(asm.R2, asm.R1),
			asm.Sub.Imm(asm.R2, 1),
			asm.And.Imm(asm.R2, 0xffff),
			asm.StoreMem(asm.RFP, fpSeq, asm.R2, asm.DWord),
		)
		p = append(p, update("m")...)
		add(
			asm.LoadMem(asm.R1, asm.RFP, fpLast+8, asm.Word),
			asm.StoreMem(asm.RFP, fpKey+20, asm.R1, asm.Word),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreMem(asm.RFP, fpN, asm.R1, asm.DWord),
		)
		p = append(p, seq(fpLast)...)
	}
	u := update("")
	u[0] = u[0].WithSymbol("one")
	p = append(p, u...)
	add(asm.Ja.Label("count"))
	return p
}

// AttachTC attaches the tc program to the egress of interface ifname in
// network namespace ns (a name under /run/ns or a path; "" is the
// caller's own) through a tcx link (Linux 6.6).
func (s *MediaSink) AttachTC(ns, ifname string) error {
	return s.attach("tc egress", ns, ifname, func(ifindex int) (link.Link, error) {
		return link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: s.tc, Attach: ebpf.AttachTCXEgress})
	})
}

// AttachXDP attaches the XDP program in native (driver) mode, which a veth
// needs to see frames before the stack does, to interface ifname in network
// namespace ns ("" is the caller's own).
func (s *MediaSink) AttachXDP(ns, ifname string) error {
	return s.attach("XDP", ns, ifname, func(ifindex int) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: s.xdp, Interface: ifindex, Flags: link.XDPDriverMode})
	})
}

func (s *MediaSink) attach(what, ns, ifname string, attach func(ifindex int) (link.Link, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counters == nil {
		return errors.New("bpf: media sink closed")
	}
	if s.l != nil {
		return fmt.Errorf("bpf: media sink: attach %s to %s: already attached (one place per MediaSink)", what, ifname)
	}
	in := func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("bpf: media sink: interface %s in ns %q: %w", ifname, ns, err)
		}
		l, err := attach(ifi.Index)
		if err != nil {
			return fmt.Errorf("bpf: media sink: attach %s to %s in ns %q: %w", what, ifname, ns, err)
		}
		s.l = l
		return nil
	}
	if ns == "" {
		return in()
	}
	if err := netns.Run(ns, in); err != nil {
		return fmt.Errorf("bpf: media sink: attach %s to %s: %w", what, ifname, err)
	}
	return nil
}

// mediaSampleKey is the sample map's key for dst.
func mediaSampleKey(dst netip.AddrPort) ([mediaSampleKeySize]byte, error) {
	var k [mediaSampleKeySize]byte
	if !dst.Addr().IsValid() {
		return k, fmt.Errorf("bpf: media sink: invalid sample address %v", dst)
	}
	a := dst.Addr().As16() // IPv4 in its v4-mapped form, as the program builds it
	copy(k[:16], a[:])
	k[16], k[17] = byte(dst.Port()>>8), byte(dst.Port())
	return k, nil
}

// AddSample adds dst (address and UDP port) to the sample set: RTP to it
// passes and counts as Sampled. An IPv4 address and its v4-mapped IPv6
// form are the same destination. It takes effect at once.
func (s *MediaSink) AddSample(dst netip.AddrPort) error {
	k, err := mediaSampleKey(dst)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == nil {
		return errors.New("bpf: media sink closed")
	}
	if err := s.samples.Put(k, uint32(1)); err != nil {
		return fmt.Errorf("bpf: media sink: add sample %v (at most %d): %w", dst, MediaSampleMax, err)
	}
	return nil
}

// RemoveSample removes dst from the sample set; RTP to it is dropped again
// from the next packet on. Removing a destination that is not in the set
// fails with an error wrapping ebpf.ErrKeyNotExist.
func (s *MediaSink) RemoveSample(dst netip.AddrPort) error {
	k, err := mediaSampleKey(dst)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == nil {
		return errors.New("bpf: media sink closed")
	}
	if err := s.samples.Delete(k); err != nil {
		return fmt.Errorf("bpf: media sink: remove sample %v: %w", dst, err)
	}
	return nil
}

// Counts sums the counters over every CPU.
func (s *MediaSink) Counts() (MediaCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs MediaCounts
	if s.counters == nil {
		return cs, errors.New("bpf: media sink closed")
	}
	var sum [mediaSlots]counterValue
	var vals []counterValue
	for slot := range sum {
		if err := s.counters.Lookup(uint32(slot), &vals); err != nil {
			return cs, fmt.Errorf("bpf: media sink: read counter slot %d: %w", slot, err)
		}
		for _, v := range vals {
			sum[slot].Packets += v.Packets
			sum[slot].Bytes += v.Bytes
		}
	}
	cs.Packets, cs.Bytes = sum[mediaSlotRTP].Packets, sum[mediaSlotRTP].Bytes
	cs.RTCP = sum[mediaSlotRTCP].Packets
	cs.Sampled, cs.SampledBytes = sum[mediaSlotSampled].Packets, sum[mediaSlotSampled].Bytes
	cs.NotUDP = sum[mediaSlotNotUDP].Packets
	cs.Other = sum[mediaSlotOther].Packets + cs.NotUDP
	return cs, nil
}

// Flows reads what the sink saw of each RTP stream, samples included.
func (s *MediaSink) Flows() (map[MediaFlow]MediaFlowCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flows == nil {
		return nil, errors.New("bpf: media sink closed")
	}
	out := map[MediaFlow]MediaFlowCount{}
	if err := s.readPorts(out); err != nil {
		return nil, err
	}
	var k [mediaFlowKeySize]byte
	var v [16]byte
	it := s.flows.Iterate()
	for it.Next(&k, &v) {
		a := netip.AddrFrom16([16]byte(k[:16])).Unmap()
		f := MediaFlow{
			Dst:  netip.AddrPortFrom(a, binary.BigEndian.Uint16(k[16:])),
			SSRC: binary.BigEndian.Uint32(k[20:]),
		}
		out[f] = MediaFlowCount{Packets: binary.NativeEndian.Uint64(v[:]), Highest: binary.NativeEndian.Uint32(v[8:])}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: media sink: read flows: %w", err)
	}
	return out, nil
}

// readPorts adds the port table's flows to out, reading the entries'
// memory.
func (s *MediaSink) readPorts(out map[MediaFlow]MediaFlowCount) error {
	mem, err := s.entries.Memory()
	if err != nil {
		return fmt.Errorf("bpf: media sink: map the port table: %w", err)
	}
	buf := make([]byte, portEntries*portEntrySize)
	if _, err := mem.ReadAt(buf, 0); err != nil {
		return fmt.Errorf("bpf: media sink: read the port table: %w", err)
	}
	taken := min(binary.NativeEndian.Uint64(buf), portEntries-1)
	for i := 1; i <= int(taken); i++ {
		e := buf[i*portEntrySize : (i+1)*portEntrySize]
		a := [16]byte(e[:16])
		if a == ([16]byte{}) {
			continue
		}
		// The index is the port's wire bytes read little-endian.
		port := binary.NativeEndian.Uint16(e[portIndex:])
		dst := netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port>>8|port<<8)
		for _, off := range []int{portStream0, portStream1} {
			f := e[off : off+16]
			n := binary.NativeEndian.Uint64(f)
			if n == 0 {
				continue
			}
			k := MediaFlow{Dst: dst, SSRC: binary.BigEndian.Uint32(f[12:])}
			c := out[k] // an entry taken twice for one port (see portEntries)
			c.Packets += n
			c.Highest = max(c.Highest, binary.NativeEndian.Uint32(f[8:]))
			out[k] = c
		}
	}
	return nil
}

// Close detaches the program (closing its link), unloads both programs and
// frees the maps. Idempotent.
func (s *MediaSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.l != nil {
		errs = append(errs, s.l.Close())
		s.l = nil
	}
	for _, p := range []**ebpf.Program{&s.tc, &s.xdp} {
		if *p != nil {
			errs = append(errs, (*p).Close())
			*p = nil
		}
	}
	for _, m := range []**ebpf.Map{&s.counters, &s.samples, &s.flows, &s.ports, &s.entries} {
		if *m != nil {
			errs = append(errs, (*m).Close())
			*m = nil
		}
	}
	return errors.Join(errs...)
}
