package srtpbatch

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// ProtectFrom, reading the payload from elsewhere, gives exactly what
// Protect gives in place, packet after packet (ROC included), and
// allocates nothing.
func TestProtectFromEqualsProtect(t *testing.T) {
	for _, pf := range allProfiles {
		t.Run(pf.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(pf.p)))
			key, salt := testKeys(t, pf.p, 3)
			inPlace, err := NewContext(pf.p, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			from, err := NewContext(pf.p, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			const ssrc = 0xcafe
			a, b := inPlace.Stream(ssrc), from.Stream(ssrc)
			seq := uint16(r.IntN(65536))
			for i := 0; i < 20000; i++ {
				seq += uint16(1 + r.IntN(3))
				pkt := randPacket(r, ssrc, seq)
				hl, err := headerLen(pkt)
				if err != nil {
					continue
				}
				want, err := a.Protect(append(make([]byte, 0, len(pkt)+a.c.tagLen), pkt...), len(pkt))
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, hl, len(pkt)+b.c.tagLen)
				copy(buf, pkt[:hl])
				got, err := b.ProtectFrom(buf, hl, pkt[hl:])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d (seq %d): ProtectFrom differs from Protect", i, seq)
				}
			}
			if a.ROC() != b.ROC() {
				t.Fatalf("ROC %d vs %d", a.ROC(), b.ROC())
			}

			pkt := benchPacket(1200, ssrc)
			buf := make([]byte, 12, 1200+Overhead(pf.p))
			copy(buf, pkt[:12])
			allocs := testing.AllocsPerRun(1000, func() {
				seq++
				binary.BigEndian.PutUint16(buf[2:], seq)
				if _, err := b.ProtectFrom(buf, 12, pkt[12:]); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("ProtectFrom: %v allocs per packet", allocs)
			}
			if _, err := b.ProtectFrom(buf, 12, make([]byte, 2000)); err != ErrShortBuffer {
				t.Errorf("payload too large for the buffer: %v", err)
			}
			if _, err := b.ProtectFrom(buf, 8, pkt[8:]); err != ErrShortHeader {
				t.Errorf("header shorter than 12 bytes: %v", err)
			}
		})
	}
}
