package srtpbatch

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// FuzzProtect compares srtpbatch with pion/srtp on arbitrary bytes: after
// SetROC(roc) and one packet with sequence number seq0, the fuzzed packet
// must be refused by both or give the same bytes, and leave the same ROC.
//
//	go test -run '^$' -fuzz FuzzProtect -fuzztime 1m ./srtpbatch
func FuzzProtect(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 16 {
		f.Add(uint8(i), r.Uint32(), uint16(r.Uint32()), randPacket(r, 0x1234, uint16(r.Uint32())))
	}
	f.Add(uint8(2), uint32(1<<32-1), uint16(65535), benchPacket(40, 9)) // past the last ROC
	f.Add(uint8(0), uint32(5), uint16(100), benchPacket(40, 9)[:11])    // too short
	f.Fuzz(func(t *testing.T, prof uint8, roc uint32, seq0 uint16, pkt []byte) {
		i := int(prof) % len(allProfiles)
		// A fresh pair per input: pion keeps per-SSRC state we cannot reset.
		pr := newPair(t, allProfiles[i].p, prof)
		var ssrc uint32
		if len(pkt) >= 12 {
			ssrc = binary.BigEndian.Uint32(pkt[8:])
		}
		s := pr.ours.Stream(ssrc)
		s.SetROC(roc)
		pr.pion.SetROC(ssrc, roc)
		first := benchPacket(30, ssrc)
		binary.BigEndian.PutUint16(first[2:], seq0)
		compare(t, pr, s, first)
		compare(t, pr, s, pkt)
	})
}

func compare(t *testing.T, pr pair, s *Stream, pkt []byte) {
	t.Helper()
	ours, theirs, errO, errT := pr.protectBoth(s, pkt)
	if (errO != nil) != (errT != nil) {
		t.Fatalf("%x: ours %v, pion %v", pkt, errO, errT)
	}
	if !bytes.Equal(ours, theirs) {
		t.Fatalf("%x:\nours %x\npion %x", pkt, ours, theirs)
	}
	if roc, _ := pr.pion.ROC(s.SSRC()); roc != s.ROC() {
		t.Fatalf("%x: ROC %d, pion %d", pkt, s.ROC(), roc)
	}
}
