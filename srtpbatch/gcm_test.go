package srtpbatch

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestGFMul checks the table builder's multiplication against Go's GCM:
// GHASH of one block with no data is the block times H, so a GCM with the
// key's H^2 built from gfMul must agree with GHASH run twice.
func TestGFMul(t *testing.T) {
	// x^0 (top bit) is the unit.
	one := u128{1 << 63, 0}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		a := u128{r.Uint64(), r.Uint64()}
		b := u128{r.Uint64(), r.Uint64()}
		if got := gfMul(a, one); got != a {
			t.Fatalf("a·1 = %x, want %x", got, a)
		}
		if gfMul(a, b) != gfMul(b, a) {
			t.Fatalf("a·b != b·a for %x, %x", a, b)
		}
		c := u128{r.Uint64(), r.Uint64()}
		bc := u128{b.hi ^ c.hi, b.lo ^ c.lo}
		ab, ac := gfMul(a, b), gfMul(a, c)
		if got := gfMul(a, bc); got != (u128{ab.hi ^ ac.hi, ab.lo ^ ac.lo}) {
			t.Fatalf("a·(b+c) != a·b + a·c")
		}
	}
	// x · x^127 = x^128 = x^7 + x^2 + x + 1.
	x, x127 := u128{1 << 62, 0}, u128{0, 1}
	if got, want := gfMul(x, x127), (u128{0xe1 << 56, 0}); got != want {
		t.Fatalf("x·x^127 = %x, want %x", got, want)
	}
}

// TestGCMSeal compares gcmKey.seal with crypto/cipher's GCM over the
// lengths that exercise every path: empty, partial blocks, one to
// sixteen blocks around each loop boundary, and packet sizes.
func TestGCMSeal(t *testing.T) {
	if !useVAES {
		t.Skip("no VAES and VPCLMULQDQ on 512-bit registers: Context uses crypto/cipher's GCM (TestProtectFallback covers it)")
	}
	r := rand.New(rand.NewPCG(3, 4))
	var lens []int
	for n := 0; n <= 600; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 767, 768, 769, 1023, 1024, 1025, 1200, 1400, 1500, 1600)
	aads := []int{0, 1, 12, 15, 16, 17, 28, 40, 64, 255, 256, 257, 300}
	for _, keyLen := range []int{16, 32} {
		key := make([]byte, keyLen)
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		k, err := newGCMKey(key)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := aes.NewCipher(key)
		ref, _ := cipher.NewGCM(blk)
		for _, n := range lens {
			for _, al := range aads {
				if n > 600 && al != 12 && al != 300 {
					continue
				}
				var nonce [12]byte
				binary.LittleEndian.PutUint64(nonce[:], r.Uint64())
				binary.LittleEndian.PutUint32(nonce[8:], r.Uint32())
				pt := make([]byte, n)
				aad := make([]byte, al)
				for i := range pt {
					pt[i] = byte(r.Uint32())
				}
				for i := range aad {
					aad[i] = byte(r.Uint32())
				}
				want := ref.Seal(nil, nonce[:], pt, aad)
				// Apart, with guard bytes after the output.
				got := make([]byte, n+16+32)
				k.seal(got, &nonce, pt, aad)
				if !bytes.Equal(got[:n+16], want) || !bytes.Equal(got[n+16:], make([]byte, 32)) {
					t.Fatalf("key %d, %d bytes, aad %d: got\n%x\nwant\n%x", keyLen, n, al, got[:n+16], want)
				}
				// In place.
				buf := append(append([]byte{}, pt...), make([]byte, 16)...)
				k.seal(buf, &nonce, buf[:n], aad)
				if !bytes.Equal(buf, want) {
					t.Fatalf("key %d, %d bytes, aad %d, in place: got\n%x\nwant\n%x", keyLen, n, al, buf, want)
				}
			}
		}
	}
}

// The parts of gcmKey.seal apart, for a 1200-byte packet.
func BenchmarkGCMParts(b *testing.B) {
	if !useVAES {
		b.Skip("no VAES")
	}
	k, err := newGCMKey(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchSize+16)
	var iv [16]byte
	var nonce [12]byte
	var x [16]byte
	b.Run("ctr", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			xorCTR512(k.nr, &k.rk[0], &iv, &buf[0], &buf[0], benchSize-12)
		}
	})
	b.Run("ghash", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			ghash512(&k.tab[0][0], &x, &buf[0], benchSize-12, nil, 0, nil, 0)
		}
	})
	b.Run("ghash16", func(b *testing.B) {
		for b.Loop() {
			ghash512(&k.tab[0][0], &x, &buf[0], 16, nil, 0, nil, 0)
		}
	})
	b.Run("ghash-packet", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			ghash512(&k.tab[0][0], &x, &buf[0], 12, &buf[12], benchSize-12, &buf[0], 16)
		}
	})
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			k.seal(buf[12:], &nonce, buf[12:benchSize], buf[:12])
		}
	})
}

// gcmImpls are the AES-GCM implementations this CPU can run.
func gcmImpls() []struct {
	name string
	vaes bool
} {
	impls := []struct {
		name string
		vaes bool
	}{{"crypto-cipher", false}}
	if useVAES {
		impls = append(impls, struct {
			name string
			vaes bool
		}{"vaes", true})
	}
	return impls
}

// TestGCMImplsAgree protects the same packets through both AES-GCM
// implementations: headers with CSRCs and extensions (longer AAD), every
// payload length up to 1500 bytes, sequence numbers across a rollover.
func TestGCMImplsAgree(t *testing.T) {
	if !useVAES {
		t.Skip("no VAES and VPCLMULQDQ on 512-bit registers: only crypto/cipher's GCM runs here")
	}
	for _, p := range []Profile{ProfileAEADAES128GCM, ProfileAEADAES256GCM} {
		t.Run(p.String(), func(t *testing.T) {
			key, salt := testKeys(t, p, 7)
			fast, err := newContext(p, key, salt, true)
			if err != nil {
				t.Fatal(err)
			}
			std, err := newContext(p, key, salt, false)
			if err != nil {
				t.Fatal(err)
			}
			if fast.gcm == nil || std.gcm != nil || std.aead == nil {
				t.Fatal("contexts do not use the implementations asked for")
			}
			r := rand.New(rand.NewPCG(5, uint64(p)))
			seq := uint16(0xff00)
			for n := range 1501 {
				hdr := benchPacket(12, 0xcafe0001)
				if cc := r.IntN(4); n%3 == 0 && cc > 0 { // CSRCs
					hdr[0] |= byte(cc)
					hdr = append(hdr, make([]byte, 4*cc)...)
				}
				if n%5 == 0 { // a one-byte-header extension of 1-3 words
					words := 1 + r.IntN(3)
					hdr[0] |= 0x10
					ext := []byte{0xbe, 0xde, 0, byte(words)}
					hdr = append(append(hdr, ext...), make([]byte, 4*words)...)
				}
				binary.BigEndian.PutUint16(hdr[2:], seq)
				seq++
				pkt := append(hdr, make([]byte, n)...)
				for i := len(hdr); i < len(pkt); i++ {
					pkt[i] = byte(r.Uint32())
				}
				a := append(append([]byte{}, pkt...), make([]byte, 16)...)[:len(pkt)]
				b := append(append([]byte{}, pkt...), make([]byte, 16)...)[:len(pkt)]
				ga, errA := fast.Stream(0xcafe0001).Protect(a, len(pkt))
				gb, errB := std.Stream(0xcafe0001).Protect(b, len(pkt))
				if errA != nil || errB != nil {
					t.Fatalf("payload %d: errors %v, %v", n, errA, errB)
				}
				if !bytes.Equal(ga, gb) {
					t.Fatalf("payload %d, header %d: vaes\n%x\ncrypto/cipher\n%x", n, len(hdr), ga, gb)
				}
			}
		})
	}
}

func TestImpl(t *testing.T) {
	want := "gcm=crypto/cipher ctr=" + ctrImpl
	if useVAES {
		want = "gcm=vaes ctr=vaes"
	}
	if got := Impl(); got != want {
		t.Fatalf("Impl() = %q, want %q", got, want)
	}
}
