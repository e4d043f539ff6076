// Package udpframe builds the Ethernet, IPv4 or IPv6, and UDP headers of
// the frames the data plane hands a NIC itself (AF_XDP), where no kernel
// stack writes them.
//
// A Header is built once per flow, when its 5-tuple and next hop are
// known, with every field that does not depend on the payload in place
// and the checksums' constant parts summed. Put then writes it in front of
// one payload: lengths, the IPv4 identification and checksum, and the UDP
// checksum over the payload. It allocates nothing and takes no lock, so a
// worker calls it per packet.
package udpframe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

const (
	ethLen  = 14
	ipv4Len = 20
	ipv6Len = 40
	udpLen  = 8

	// MaxLen is the longest header Put writes: Ethernet, IPv6, UDP.
	MaxLen = ethLen + ipv6Len + udpLen

	defaultTTL = 64
	protoUDP   = 17
)

// Header is one flow's precomputed frame header. The zero value is not
// usable; New builds one.
type Header struct {
	b      [MaxLen]byte
	n      int    // header length: 42 (IPv4) or 62 (IPv6)
	v6     bool   // IPv6, else IPv4
	pseudo uint32 // the UDP pseudo-header's addresses and protocol, summed
	ports  uint32 // the UDP header's ports, summed
	ip4    uint32 // IPv4: the header's constant words summed (no length, no ID)
	id     uint16 // IPv4: the next identification
}

// New builds the header of frames from src (srcMAC) to dst (dstMAC, the
// next hop's). Both addresses are of one family; an IPv4-mapped IPv6
// address counts as IPv4.
func New(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort) (*Header, error) {
	if len(srcMAC) != 6 || len(dstMAC) != 6 {
		return nil, fmt.Errorf("udpframe: MAC addresses %v -> %v: want 6 bytes each", srcMAC, dstMAC)
	}
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if !s.IsValid() || !d.IsValid() || s.Is4() != d.Is4() {
		return nil, fmt.Errorf("udpframe: %v -> %v: want two addresses of one family", src, dst)
	}
	if src.Port() == 0 || dst.Port() == 0 {
		return nil, errors.New("udpframe: port 0")
	}
	h := &Header{v6: s.Is6()}
	b := h.b[:]
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	ip := b[ethLen:]
	var udp []byte
	if h.v6 {
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		ip[0] = 6 << 4 // version; traffic class and flow label 0
		ip[6] = protoUDP
		ip[7] = defaultTTL // hop limit
		s16, d16 := s.As16(), d.As16()
		copy(ip[8:24], s16[:])
		copy(ip[24:40], d16[:])
		h.pseudo = sum(ip[8:40], 0)
		udp = ip[ipv6Len:]
		h.n = ethLen + ipv6Len + udpLen
	} else {
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		ip[0] = 0x45 // version 4, 5 words
		ip[6] = 0x40 // don't fragment
		ip[8] = defaultTTL
		ip[9] = protoUDP
		s4, d4 := s.As4(), d.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		h.ip4 = sum(ip[:ipv4Len], 0) // length, ID and checksum are 0 here
		h.pseudo = sum(ip[12:20], 0)
		udp = ip[ipv4Len:]
		h.n = ethLen + ipv4Len + udpLen
	}
	h.pseudo += protoUDP
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	h.ports = uint32(src.Port()) + uint32(dst.Port())
	return h, nil
}

// Len is the length of the header Put writes.
func (h *Header) Len() int { return h.n }

// CsumStart is where the UDP checksum's coverage starts in a frame: the
// UDP header. A device finishing a checksum (PutPartial) sums from here.
func (h *Header) CsumStart() int { return h.n - udpLen }

// CsumOffset is the UDP checksum field's offset from CsumStart.
const CsumOffset = 6

// Put writes the header into frame[:h.Len()] for the UDP payload that
// already fills frame[h.Len():]. The UDP datagram (header and payload) may
// be at most 65535 bytes.
func (h *Header) Put(frame []byte) error {
	udp, ulen, err := h.put(frame)
	if err != nil {
		return err
	}
	// The pseudo-header's length and the UDP header's are the same field,
	// summed twice.
	c := ^fold(sum(frame[h.n:], h.pseudo+h.ports+2*uint32(ulen)))
	if c == 0 {
		c = 0xffff // RFC 768: 0 means no checksum (and is not allowed over IPv6)
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return nil
}

// PutPartial is Put for a device that finishes the UDP checksum itself
// (checksum offload): the checksum field holds the pseudo-header's sum,
// not complemented, as the kernel leaves it for CHECKSUM_PARTIAL, and the
// device sums from CsumStart to the end of the frame. It skips the pass
// over the payload, which is most of Put's cost.
func (h *Header) PutPartial(frame []byte) error {
	udp, ulen, err := h.put(frame)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint16(udp[6:], fold(h.pseudo+uint32(ulen)))
	return nil
}

// put writes everything but the UDP checksum and returns the UDP header
// and length.
func (h *Header) put(frame []byte) ([]byte, uint16, error) {
	if len(frame) < h.n || len(frame)-h.n+udpLen > 0xffff {
		return nil, 0, fmt.Errorf("udpframe: frame of %d bytes for a %d-byte header", len(frame), h.n)
	}
	copy(frame, h.b[:h.n])
	ulen := uint16(len(frame) - h.n + udpLen)
	ip := frame[ethLen:]
	var udp []byte
	if h.v6 {
		binary.BigEndian.PutUint16(ip[4:], ulen) // payload length: the UDP datagram
		udp = ip[ipv6Len:]
	} else {
		tot := ulen + ipv4Len
		id := h.id
		h.id++
		binary.BigEndian.PutUint16(ip[2:], tot)
		binary.BigEndian.PutUint16(ip[4:], id)
		binary.BigEndian.PutUint16(ip[10:], ^fold(h.ip4+uint32(tot)+uint32(id)))
		udp = ip[ipv4Len:]
	}
	binary.BigEndian.PutUint16(udp[4:], ulen)
	return udp, ulen, nil
}

// sum adds b to acc as big-endian 16-bit words (RFC 1071), an odd last
// byte padded with zero. A 64 KiB b adds under 2^31, so a UDP payload on
// top of the headers' sums cannot overflow acc.
func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 8 {
		acc += uint32(binary.BigEndian.Uint16(b)) + uint32(binary.BigEndian.Uint16(b[2:])) +
			uint32(binary.BigEndian.Uint16(b[4:])) + uint32(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds a 32-bit one's complement sum into 16 bits.
func fold(acc uint32) uint16 {
	acc = acc>>16 + acc&0xffff
	acc += acc >> 16
	return uint16(acc)
}
