package srtpbatch

import (
	"encoding/binary"
	"testing"
)

// Zero allocations per packet, for every profile: Protect, ProtectBatch, and
// Protect's error path; under -race too.
func TestZeroAllocs(t *testing.T) {
	for _, pf := range allProfiles {
		t.Run(pf.name, func(t *testing.T) {
			key, salt := testKeys(t, pf.p, 9)
			c, err := NewContext(pf.p, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			s := c.Stream(0x11223344)
			pkt := benchPacket(1200, 0x11223344)
			buf := make([]byte, 1200, 1200+Overhead(pf.p))
			seq := uint16(0)
			protect := func() {
				copy(buf, pkt)
				seq++
				binary.BigEndian.PutUint16(buf[2:], seq)
				if _, err := s.Protect(buf, len(pkt)); err != nil {
					t.Fatal(err)
				}
			}
			if a := testing.AllocsPerRun(2000, protect); a != 0 {
				t.Errorf("Protect: %v allocs per packet", a)
			}

			bufs := make([][]byte, 16)
			lens := make([]int, 16)
			for i := range bufs {
				bufs[i] = make([]byte, 0, 1200+Overhead(pf.p))
			}
			batch := func() {
				for i := range bufs {
					bufs[i] = append(bufs[i][:0], pkt...)
					seq++
					binary.BigEndian.PutUint16(bufs[i][2:], seq)
					lens[i] = len(pkt)
				}
				if err := s.ProtectBatch(bufs, lens); err != nil {
					t.Fatal(err)
				}
			}
			if a := testing.AllocsPerRun(200, batch); a != 0 {
				t.Errorf("ProtectBatch: %v allocs per batch of 16", a)
			}

			short := buf[:11]
			fail := func() {
				if _, err := s.Protect(short, 11); err != ErrShortHeader {
					t.Fatal(err)
				}
			}
			if a := testing.AllocsPerRun(2000, fail); a != 0 {
				t.Errorf("error path: %v allocs per packet", a)
			}
		})
	}
}
