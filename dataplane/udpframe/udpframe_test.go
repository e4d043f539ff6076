package udpframe

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

// naive is RFC 1071 written out, a byte pair at a time, to check sum and
// fold against.
func naive(parts ...[]byte) uint16 {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var acc uint64
	for i := 0; i < len(b); i += 2 {
		acc += uint64(b[i])<<8 | uint64(b[i+1])
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

func TestPut(t *testing.T) {
	for _, tt := range []struct {
		name     string
		src, dst netip.AddrPort
	}{
		{"ipv4", netip.MustParseAddrPort("198.18.5.1:10000"), netip.MustParseAddrPort("198.18.5.2:40123")},
		{"ipv4-mapped", netip.MustParseAddrPort("[::ffff:198.18.5.1]:10000"), netip.MustParseAddrPort("198.18.5.2:40123")},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::1]:10000"), netip.MustParseAddrPort("[2001:db8::ffff:2]:65535")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(macA, macB, tt.src, tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			v6 := tt.src.Addr().Unmap().Is6()
			for i, n := range []int{0, 1, 2, 3, 160, 1199, 1200, 1472, 8999} {
				payload := make([]byte, n)
				for j := range payload {
					payload[j] = byte(j*7 + n + 0xf0)
				}
				frame := append(make([]byte, h.Len()), payload...)
				if err := h.Put(frame); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(frame[0:6], macB) || !bytes.Equal(frame[6:12], macA) || !bytes.Equal(frame[h.Len():], payload) {
					t.Fatalf("%d bytes: MACs or payload moved: % x", n, frame[:h.Len()])
				}
				ip := frame[ethLen:]
				var udp, pseudo []byte
				s, d := tt.src.Addr().Unmap(), tt.dst.Addr().Unmap()
				ulen := uint16(udpLen + n)
				if v6 {
					if binary.BigEndian.Uint16(frame[12:]) != 0x86dd || ip[0]>>4 != 6 || ip[6] != protoUDP || binary.BigEndian.Uint16(ip[4:]) != ulen ||
						netip.AddrFrom16([16]byte(ip[8:24])) != s || netip.AddrFrom16([16]byte(ip[24:40])) != d {
						t.Fatalf("%d bytes: IPv6 header % x", n, ip[:ipv6Len])
					}
					udp = ip[ipv6Len:]
					pseudo = append(append(append([]byte{}, ip[8:40]...), 0, 0, byte(ulen>>8), byte(ulen)), 0, 0, 0, protoUDP)
				} else {
					if binary.BigEndian.Uint16(frame[12:]) != 0x0800 || ip[0] != 0x45 || ip[9] != protoUDP ||
						binary.BigEndian.Uint16(ip[2:]) != ipv4Len+ulen || binary.BigEndian.Uint16(ip[4:]) != uint16(i) ||
						netip.AddrFrom4([4]byte(ip[12:16])) != s || netip.AddrFrom4([4]byte(ip[16:20])) != d {
						t.Fatalf("%d bytes: IPv4 header % x", n, ip[:ipv4Len])
					}
					if c := naive(ip[:ipv4Len]); c != 0xffff {
						t.Fatalf("%d bytes: IPv4 header checksum does not verify (%#04x)", n, c)
					}
					udp = ip[ipv4Len:]
					pseudo = append(append([]byte{}, ip[12:20]...), 0, protoUDP, byte(ulen>>8), byte(ulen))
				}
				if binary.BigEndian.Uint16(udp[0:]) != tt.src.Port() || binary.BigEndian.Uint16(udp[2:]) != tt.dst.Port() || binary.BigEndian.Uint16(udp[4:]) != ulen {
					t.Fatalf("%d bytes: UDP header % x", n, udp[:udpLen])
				}
				if c := naive(pseudo, udp); c != 0xffff || binary.BigEndian.Uint16(udp[6:]) == 0 {
					t.Fatalf("%d bytes: UDP checksum %#04x does not verify (%#04x)", n, binary.BigEndian.Uint16(udp[6:]), c)
				}
			}
		})
	}
}

// PutPartial leaves what a device finishing the checksum needs: summing
// from CsumStart to the end, the field included, and storing the
// complement at CsumOffset gives exactly Put's frame.
func TestPutPartial(t *testing.T) {
	for _, tt := range []struct{ src, dst string }{
		{"198.18.5.1:10000", "198.18.5.2:40123"},
		{"[2001:db8::1]:10000", "[2001:db8::ffff:2]:65535"},
	} {
		h, err := New(macA, macB, netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst))
		if err != nil {
			t.Fatal(err)
		}
		h2 := *h // the same IPv4 identification sequence
		for _, n := range []int{0, 1, 3, 1199, 1200, 8999} {
			want := make([]byte, h.Len()+n)
			for j := range want[h.Len():] {
				want[h.Len()+j] = byte(j*13 + n)
			}
			got := bytes.Clone(want)
			if err := h.Put(want); err != nil {
				t.Fatal(err)
			}
			if err := h2.PutPartial(got); err != nil {
				t.Fatal(err)
			}
			field := got[h.CsumStart()+CsumOffset:]
			c := ^naive(got[h.CsumStart():])
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(field, c)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, %d bytes: finished PutPartial\n% x\nwant\n% x", tt.src, n, got[:h.Len()], want[:h.Len()])
			}
		}
	}
}

// A payload whose sum makes the checksum 0 is sent as 0xffff: 0 would say
// "no checksum", which IPv6 does not allow.
func TestPutChecksumNeverZero(t *testing.T) {
	h, err := New(macA, macB, netip.MustParseAddrPort("[2001:db8::1]:10000"), netip.MustParseAddrPort("[2001:db8::2]:20000"))
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, h.Len()+2)
	if err := h.Put(frame); err != nil {
		t.Fatal(err)
	}
	// Choose the last two bytes so that everything sums to 0xffff: the
	// one's complement, the checksum, is then 0.
	c := binary.BigEndian.Uint16(frame[h.Len()-2:])
	binary.BigEndian.PutUint16(frame[h.Len():], c)
	if err := h.Put(frame); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(frame[h.Len()-2:]); got != 0xffff {
		t.Fatalf("checksum %#04x, want 0xffff", got)
	}
}

func TestNewRefuses(t *testing.T) {
	v4, v6 := netip.MustParseAddrPort("198.18.5.1:1"), netip.MustParseAddrPort("[2001:db8::1]:1")
	for _, tt := range []struct {
		name     string
		sm, dm   net.HardwareAddr
		src, dst netip.AddrPort
	}{
		{"short MAC", macA[:5], macB, v4, v4},
		{"families differ", macA, macB, v4, v6},
		{"no address", macA, macB, netip.AddrPort{}, v4},
		{"port 0", macA, macB, v4, netip.AddrPortFrom(v4.Addr(), 0)},
	} {
		if _, err := New(tt.sm, tt.dm, tt.src, tt.dst); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
	h, _ := New(macA, macB, v4, v4)
	if err := h.Put(make([]byte, h.Len()-1)); err == nil {
		t.Error("Put wrote into a frame shorter than the header")
	}
	if err := h.Put(make([]byte, h.Len()+0xffff)); err == nil {
		t.Error("Put wrote a UDP datagram over 65535 bytes")
	}
}

// Put is on the per-packet path: nothing allocated.
func TestPutAllocs(t *testing.T) {
	h, _ := New(macA, macB, netip.MustParseAddrPort("198.18.5.1:10000"), netip.MustParseAddrPort("198.18.5.2:40000"))
	frame := make([]byte, h.Len()+1200)
	if n := testing.AllocsPerRun(100, func() { h.Put(frame) }); n != 0 {
		t.Fatalf("%v allocations per Put", n)
	}
	if n := testing.AllocsPerRun(100, func() { h.PutPartial(frame) }); n != 0 {
		t.Fatalf("%v allocations per PutPartial", n)
	}
}

func BenchmarkPut(b *testing.B) {
	for _, tt := range []struct{ name, src, dst string }{
		{"ipv4", "198.18.5.1:10000", "198.18.5.2:40000"},
		{"ipv6", "[2001:db8::1]:10000", "[2001:db8::2]:40000"},
	} {
		h, _ := New(macA, macB, netip.MustParseAddrPort(tt.src), netip.MustParseAddrPort(tt.dst))
		frame := make([]byte, h.Len()+1200)
		for _, put := range []struct {
			name string
			f    func([]byte) error
		}{{"full", h.Put}, {"partial", h.PutPartial}} {
			b.Run(tt.name+"/"+put.name, func(b *testing.B) {
				b.SetBytes(int64(len(frame)))
				b.ReportAllocs()
				for b.Loop() {
					put.f(frame)
				}
			})
		}
	}
}
