package srtpbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pion/srtp/v3"
)

var allProfiles = []struct {
	name string
	p    Profile
}{
	{"gcm128", ProfileAEADAES128GCM},
	{"gcm256", ProfileAEADAES256GCM},
	{"cm80", ProfileAES128CMHMACSHA1_80},
	{"cm32", ProfileAES128CMHMACSHA1_32},
}

// testKeys returns a master key and salt for p, filled from seed.
func testKeys(t testing.TB, p Profile, seed byte) (key, salt []byte) {
	t.Helper()
	kl, sl, err := KeyLen(p)
	if err != nil {
		t.Fatal(err)
	}
	key, salt = make([]byte, kl), make([]byte, sl)
	for i := range key {
		key[i] = seed + byte(i*13)
	}
	for i := range salt {
		salt[i] = seed ^ byte(0x80+i*29)
	}
	return key, salt
}

// pair is one master key seen by srtpbatch and by pion/srtp.
type pair struct {
	ours *Context
	pion *srtp.Context
}

func newPair(t testing.TB, p Profile, seed byte) pair {
	t.Helper()
	key, salt := testKeys(t, p, seed)
	ours, err := NewContext(p, key, salt)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := srtp.CreateContext(key, salt, srtp.ProtectionProfile(p))
	if err != nil {
		t.Fatal(err)
	}
	return pair{ours, theirs}
}

// protectBoth protects pkt with both and returns their outputs (nil on
// error) and errors.
func (pr pair) protectBoth(s *Stream, pkt []byte) (ours, theirs []byte, errOurs, errTheirs error) {
	buf := make([]byte, len(pkt), len(pkt)+pr.ours.Overhead())
	copy(buf, pkt)
	ours, errOurs = s.Protect(buf, len(pkt))
	theirs, errTheirs = pr.pion.EncryptRTP(nil, pkt, nil)
	return
}

// randPacket builds an RTP packet of a random shape: CSRCs, a header
// extension (one-byte, two-byte or other profile), marker, padding and a
// payload of 0..1400 bytes.
func randPacket(r *rand.Rand, ssrc uint32, seq uint16) []byte {
	cc := 0
	if r.IntN(4) == 0 {
		cc = r.IntN(16)
	}
	ext := r.IntN(3) == 0
	pad := r.IntN(5) == 0
	b := make([]byte, 12, 12+4*cc+1600)
	b[0] = 2<<6 | byte(cc)
	if ext {
		b[0] |= 0x10
	}
	if pad {
		b[0] |= 0x20
	}
	b[1] = byte(r.IntN(128))
	if r.IntN(2) == 0 {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], r.Uint32())
	binary.BigEndian.PutUint32(b[8:], ssrc)
	for range cc {
		b = binary.BigEndian.AppendUint32(b, r.Uint32())
	}
	if ext {
		b = appendExtension(r, b)
	}
	payload := r.IntN(1401)
	for i := 0; i < payload; i += 8 {
		b = binary.LittleEndian.AppendUint64(b, r.Uint64())
	}
	b = b[:len(b)-((payload+7)&^7-payload)]
	if pad && payload > 0 {
		// RFC 3550 5.1: the last octet counts the padding, itself included.
		b[len(b)-1] = byte(1 + r.IntN(min(payload, 255)))
	}
	return b
}

func appendExtension(r *rand.Rand, b []byte) []byte {
	var body []byte
	profile := uint16(0xbede)
	switch r.IntN(3) {
	case 0:
		for range r.IntN(6) {
			l := 1 + r.IntN(16)
			body = append(body, byte(1+r.IntN(14))<<4|byte(l-1))
			for range l {
				body = append(body, byte(r.Uint32()))
			}
			if r.IntN(3) == 0 {
				body = append(body, 0) // padding between elements
			}
		}
	case 1:
		profile = 0x1000
		for range r.IntN(6) {
			l := r.IntN(20)
			body = append(body, byte(1+r.IntN(255)), byte(l))
			for range l {
				body = append(body, byte(r.Uint32()))
			}
		}
	default:
		profile = uint16(r.Uint32())
		if profile == 0xbede || profile == 0x1000 {
			profile = 0x0001
		}
		for range 4 * r.IntN(5) {
			body = append(body, byte(r.Uint32()))
		}
	}
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b = binary.BigEndian.AppendUint16(b, profile)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)/4))
	b = append(b, body...)
	return b
}

// seqWalk yields sequence numbers the way a viewer's stream sees them:
// mostly in order, with resends, late packets, gaps and big jumps that
// cross the wrap both ways.
type seqWalk struct {
	r    *rand.Rand
	next uint16
}

// step returns the next sequence number and whether it repeats or comes
// back before the highest one sent.
func (w *seqWalk) step() (seq uint16, back bool) {
	switch x := w.r.IntN(1000); {
	case x < 780:
	case x < 840: // resend or late: behind the highest
		return w.next - 1 - uint16(w.r.IntN(300)), true
	case x < 990: // a gap
		w.next += uint16(w.r.IntN(3000))
	case x < 998: // a long gap, still less than half the space
		w.next += uint16(20000 + w.r.IntN(12000))
	default: // half the space away, give or take: the guess's edge
		w.next += uint16(1<<15 - 2000 + w.r.IntN(4000))
	}
	seq = w.next
	w.next++
	return seq, false
}

// Differential test: every profile, 100k random packets on three SSRCs
// sharing a Context, byte-identical to pion/srtp, the ROC equal after every
// packet; a stream moved to another Context with Index/SetIndex midway.
func TestDifferentialPion(t *testing.T) {
	const packets = 100_000
	for _, pf := range allProfiles {
		t.Run(pf.name, func(t *testing.T) {
			t.Parallel()
			seed := uint64(len(pf.name))<<32 | uint64(pf.p)
			r := rand.New(rand.NewPCG(seed, 0x5eed))
			pr := newPair(t, pf.p, byte(pf.p))
			ssrcs := []uint32{0x11223344, 0x55667788, r.Uint32()}
			walks := make([]*seqWalk, len(ssrcs))
			for i := range walks {
				walks[i] = &seqWalk{r: r, next: uint16(0xffff - r.IntN(3000))}
			}
			// What the same plaintext protected again must give back.
			type sent struct{ plain, out []byte }
			last := map[uint64]sent{}
			var wraps, wrapsBack, resends int
			for i := range packets {
				k := r.IntN(len(ssrcs))
				ssrc := ssrcs[k]
				s := pr.ours.Stream(ssrc)
				if i == packets/2 {
					// Move every stream to a fresh Context of the same key,
					// as a viewer moving between workers.
					key, salt := testKeys(t, pf.p, byte(pf.p))
					moved, err := NewContext(pf.p, key, salt)
					if err != nil {
						t.Fatal(err)
					}
					for _, x := range ssrcs {
						idx, ok := pr.ours.Stream(x).Index()
						if ok {
							moved.Stream(x).SetIndex(idx)
						}
					}
					pr.ours = moved
					s = moved.Stream(ssrc)
				}
				rocBefore := s.ROC()
				seq, back := walks[k].step()
				usedROC, _, _ := s.guess(seq)
				idxKey := uint64(ssrc)<<48 | uint64(usedROC)<<16 | uint64(seq)
				var pkt []byte
				prev, seen := last[idxKey]
				if seen && back && r.IntN(2) == 0 {
					pkt = prev.plain // a NACKed packet sent again
				} else {
					pkt = randPacket(r, ssrc, seq)
				}
				ours, theirs, errO, errT := pr.protectBoth(s, pkt)
				if errO != nil || errT != nil {
					t.Fatalf("packet %d seq %d: ours %v, pion %v", i, seq, errO, errT)
				}
				if !bytes.Equal(ours, theirs) {
					t.Fatalf("packet %d (seq %d, %d bytes): differs from pion\nours %x\npion %x", i, seq, len(pkt), ours, theirs)
				}
				roc, _ := pr.pion.ROC(ssrc)
				if s.ROC() != roc {
					t.Fatalf("packet %d seq %d: ROC %d, pion %d", i, seq, s.ROC(), roc)
				}
				if seen && bytes.Equal(prev.plain, pkt) {
					if !bytes.Equal(prev.out, ours) {
						t.Fatalf("packet %d: resend of seq %d gave other bytes", i, seq)
					}
					resends++
				}
				if s.ROC() > rocBefore {
					wraps++
				}
				if usedROC < rocBefore {
					wrapsBack++ // a late packet from before the wrap
				}
				last[idxKey] = sent{pkt, ours}
			}
			t.Logf("%d packets: %d ROC increments, %d late packets across a wrap, %d exact resends", packets, wraps, wrapsBack, resends)
			if wraps < 10 || wrapsBack < 10 || resends < 10 {
				t.Errorf("walk too tame: %d wraps, %d late across a wrap, %d resends", wraps, wrapsBack, resends)
			}
		})
	}
}

// Headers pion/rtp refuses are refused here too, and leave the stream as it
// was.
func TestMalformedLikePion(t *testing.T) {
	good := func() []byte {
		b := make([]byte, 40)
		b[0] = 0x80
		binary.BigEndian.PutUint16(b[2:], 1000)
		binary.BigEndian.PutUint32(b[8:], 0xcafe)
		return b
	}
	tests := []struct {
		name string
		pkt  func() []byte
		want error
	}{
		{"short", func() []byte { return good()[:11] }, ErrShortHeader},
		{"csrc past end", func() []byte { b := good()[:20]; b[0] |= 3; return b }, ErrShortHeader},
		{"ext header past end", func() []byte { b := good()[:14]; b[0] |= 0x10; return b }, ErrShortHeader},
		{"ext body past end", func() []byte {
			b := good()
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[12:], 0xbede)
			binary.BigEndian.PutUint16(b[14:], 7)
			return b
		}, ErrShortHeader},
		{"one-byte element past end", func() []byte {
			b := good()
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[12:], 0xbede)
			binary.BigEndian.PutUint16(b[14:], 1)
			b[16] = 0x1f // id 1, 16 bytes, in a 4-byte block
			return b
		}, ErrBadExtension},
		{"two-byte id at end", func() []byte {
			b := good()
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[12:], 0x1000)
			binary.BigEndian.PutUint16(b[14:], 1)
			b[16], b[17], b[18], b[19] = 0, 0, 0, 5
			return b
		}, ErrBadExtension},
		{"two-byte element past end", func() []byte {
			b := good()
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[12:], 0x1000)
			binary.BigEndian.PutUint16(b[14:], 1)
			b[16], b[17] = 3, 9
			return b
		}, ErrBadExtension},
	}
	for _, pf := range allProfiles {
		for _, tt := range tests {
			t.Run(pf.name+"/"+tt.name, func(t *testing.T) {
				pr := newPair(t, pf.p, 1)
				s := pr.ours.Stream(0xcafe)
				// A first packet sets the state that must survive.
				if o, p, eo, ep := pr.protectBoth(s, good()); eo != nil || ep != nil || !bytes.Equal(o, p) {
					t.Fatalf("good packet: %v %v", eo, ep)
				}
				before, _ := s.Index()
				_, _, errO, errT := pr.protectBoth(s, tt.pkt())
				if errO != tt.want || errT == nil {
					t.Fatalf("ours %v (want %v), pion %v", errO, tt.want, errT)
				}
				if after, _ := s.Index(); after != before {
					t.Errorf("index moved: %#x -> %#x", before, after)
				}
			})
		}
	}
}

// Argument and state errors, and the ROC's end: after ROC 2^32-1 and
// sequence 65535 neither pion nor srtpbatch protects anything.
func TestErrors(t *testing.T) {
	pkt := func(ssrc uint32, seq uint16) []byte {
		b := make([]byte, 30)
		b[0] = 0x80
		binary.BigEndian.PutUint16(b[2:], seq)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		return b
	}
	for _, pf := range allProfiles {
		t.Run(pf.name, func(t *testing.T) {
			pr := newPair(t, pf.p, 2)
			s := pr.ours.Stream(7)
			if _, err := s.Protect(pkt(7, 1), 30); err != ErrShortBuffer {
				t.Errorf("no room for the tag: %v", err)
			}
			if _, err := s.Protect(make([]byte, 64), -1); err != ErrShortBuffer {
				t.Errorf("negative length: %v", err)
			}
			b := append(pkt(8, 1), make([]byte, 16)...)
			if _, err := s.Protect(b, 30); err != ErrSSRC {
				t.Errorf("other SSRC: %v", err)
			}
			if err := s.ProtectBatch(make([][]byte, 2), make([]int, 1)); err != ErrBatchShape {
				t.Errorf("batch shape: %v", err)
			}

			s.SetROC(1<<32 - 1)
			pr.pion.SetROC(7, 1<<32-1)
			for _, seq := range []uint16{65534, 65535} {
				o, p, eo, ep := pr.protectBoth(s, pkt(7, seq))
				if eo != nil || ep != nil || !bytes.Equal(o, p) {
					t.Fatalf("seq %d before the end: %v, pion %v", seq, eo, ep)
				}
			}
			_, _, eo, ep := pr.protectBoth(s, pkt(7, 0))
			if eo != ErrROCOverflow || ep == nil {
				t.Errorf("past the last ROC: ours %v, pion %v", eo, ep)
			}
		})
	}
}

// ProtectBatch equals Protect packet by packet, and a bad packet in the
// middle costs only itself.
func TestProtectBatch(t *testing.T) {
	for _, pf := range allProfiles {
		t.Run(pf.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			pr := newPair(t, pf.p, 3)
			one := pr.ours.Stream(0xabc)
			key, salt := testKeys(t, pf.p, 3)
			c2, err := NewContext(pf.p, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			batch := c2.Stream(0xabc)
			var bufs [][]byte
			var lens []int
			var want [][]byte
			for i := range 40 {
				p := randPacket(r, 0xabc, uint16(65520+i))
				if i == 17 {
					p = p[:5] // not a packet
				}
				buf := make([]byte, len(p), len(p)+Overhead(pf.p))
				copy(buf, p)
				bufs, lens = append(bufs, buf), append(lens, len(p))
				w := append(make([]byte, 0, len(p)+Overhead(pf.p)), p...)
				out, err := one.Protect(w, len(p))
				if (err != nil) != (i == 17) {
					t.Fatalf("packet %d: %v", i, err)
				}
				want = append(want, out)
			}
			if err := batch.ProtectBatch(bufs, lens); err != ErrShortHeader {
				t.Fatalf("ProtectBatch: %v, want %v", err, ErrShortHeader)
			}
			for i := range bufs {
				if lens[i] != len(bufs[i]) || !bytes.Equal(bufs[i], want[i]) {
					t.Errorf("packet %d: len %d, %x, want %x", i, lens[i], bufs[i], want[i])
				}
			}
			if batch.ROC() != 1 || one.ROC() != 1 {
				t.Errorf("ROC %d and %d, want 1", batch.ROC(), one.ROC())
			}
		})
	}
}

func TestKeyLenOverheadProfiles(t *testing.T) {
	tests := []struct {
		p                   Profile
		key, salt, overhead int
		pion                srtp.ProtectionProfile
	}{
		{ProfileAES128CMHMACSHA1_80, 16, 14, 10, srtp.ProtectionProfileAes128CmHmacSha1_80},
		{ProfileAES128CMHMACSHA1_32, 16, 14, 4, srtp.ProtectionProfileAes128CmHmacSha1_32},
		{ProfileAEADAES128GCM, 16, 12, 16, srtp.ProtectionProfileAeadAes128Gcm},
		{ProfileAEADAES256GCM, 32, 12, 16, srtp.ProtectionProfileAeadAes256Gcm},
	}
	for _, tt := range tests {
		k, s, err := KeyLen(tt.p)
		if err != nil || k != tt.key || s != tt.salt || Overhead(tt.p) != tt.overhead {
			t.Errorf("%v: %d %d %d %v", tt.p, k, s, Overhead(tt.p), err)
		}
		if uint16(tt.pion) != uint16(tt.p) {
			t.Errorf("%v: pion numbers it %d", tt.p, tt.pion)
		}
	}
	for _, p := range []Profile{0, 3, 4, 5, 6, 9} {
		if _, _, err := KeyLen(p); err == nil {
			t.Errorf("%v: no error", p)
		}
		if _, err := NewContext(p, make([]byte, 16), make([]byte, 14)); err == nil {
			t.Errorf("%v: NewContext accepted it", p)
		}
	}
	if _, err := NewContext(ProfileAEADAES128GCM, make([]byte, 16), make([]byte, 14)); err == nil {
		t.Error("GCM with a 14-byte salt accepted")
	}
	if s := fmt.Sprint(ProfileAES128CMHMACSHA1_80); s != "AES_CM_128_HMAC_SHA1_80" {
		t.Errorf("String: %s", s)
	}
}
