package srtpbatch

import (
	"encoding/binary"
	"unsafe"

	"github.com/spillway-rtc/spillway/internal/prefetch"
)

// AES-GCM (NIST SP 800-38D) for the AEAD profiles on CPUs with VAES and
// VPCLMULQDQ on 512-bit registers (gcm_amd64.s): sixteen blocks per loop
// for both the counter mode and GHASH. Go's own GCM works on one 128-bit
// lane at a time and cost a quarter of a saturated egress core. Where the
// instructions are missing, Context keeps crypto/cipher's GCM.
//
// GHASH runs in the bit-reflected form that carry-less multiplication
// suits: a block is loaded byte-reversed, so the 128-bit lane holds the
// block as a big-endian integer, whose bit 127 is the coefficient of x^0.
// The product of two such lanes is the reflected product shifted by one
// bit; multiplying by H·x^-1 instead of H absorbs the shift, which is why
// the table holds every power of H in that form (gcmShifted). The 256-bit
// product is then reduced with two carry-less multiplications by the
// reflected polynomial's top word, 0xC2 << 56.

// gcmPowers is how many powers of H the table holds: one per block of a
// loop over 16 blocks, so that a loop needs one reduction.
const gcmPowers = 16

// gcmKey is an AES-GCM key ready for seal.
type gcmKey struct {
	nr  int // rounds: 10 or 14
	tab [gcmPowers][16]byte
	rk  [240]byte // round keys, FIPS-197 byte order; AES-128 uses 176
}

// span is the memory seal reads: all but the round keys a key of nr
// rounds leaves unused.
func (k *gcmKey) span() prefetch.Span {
	return prefetch.Span{P: unsafe.Pointer(k), N: unsafe.Offsetof(k.rk) + uintptr(16*(k.nr+1))}
}

// u128 is a GCM field element as a big-endian integer: hi holds the first
// eight bytes of the block, and its top bit is the coefficient of x^0.
type u128 struct{ hi, lo uint64 }

// gfMul is the field multiplication of SP 800-38D, algorithm 1, bit by
// bit: slow, and used only to build a key's table.
func gfMul(x, y u128) u128 {
	var z u128
	v := y
	for i := range 128 {
		var bit uint64
		if i < 64 {
			bit = x.hi >> (63 - i) & 1
		} else {
			bit = x.lo >> (127 - i) & 1
		}
		if bit == 1 {
			z.hi ^= v.hi
			z.lo ^= v.lo
		}
		lsb := v.lo & 1
		v.lo = v.lo>>1 | v.hi<<63
		v.hi >>= 1
		if lsb == 1 {
			v.hi ^= 0xe1 << 56 // R = 11100001 || 0^120
		}
	}
	return z
}

// gcmShifted stores e·x^-1 as the assembly multiplies by it: the
// reflected lane shifted left by one, reduced by x^-1's form when a bit
// falls off, little-endian words.
func gcmShifted(dst *[16]byte, e u128) {
	hi := e.hi<<1 | e.lo>>63
	lo := e.lo << 1
	if e.hi>>63 == 1 {
		hi ^= 0xc2 << 56
		lo ^= 1
	}
	binary.LittleEndian.PutUint64(dst[0:], lo)
	binary.LittleEndian.PutUint64(dst[8:], hi)
}

// newGCMKey expands an AES-128 or AES-256 key and builds its GHASH table:
// tab[i] holds H^(16-i), so a loop's first block meets H^16 and its last H.
func newGCMKey(key []byte) (*gcmKey, error) {
	b, err := newAES(key)
	if err != nil {
		return nil, err
	}
	k := &gcmKey{}
	k.nr = expandKey(key, &k.rk)
	var h [16]byte
	b.Encrypt(h[:], h[:])
	hh := u128{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}
	p := hh
	for i := gcmPowers - 1; i >= 0; i-- {
		gcmShifted(&k.tab[i], p)
		p = gfMul(p, hh)
	}
	return k, nil
}

// seal is cipher.AEAD.Seal for a 12-byte nonce and a 16-byte tag, in place
// when dst and plaintext start together: it writes the ciphertext and tag
// to dst[:len(plaintext)+16], which must have room for them.
func (k *gcmKey) seal(dst []byte, nonce *[12]byte, plaintext, aad []byte) {
	n := len(plaintext)
	dst = dst[:n+16]
	var ctr [16]byte
	copy(ctr[:], nonce[:])
	ctr[15] = 2 // inc32(J0): J0 = nonce || 1 masks the tag
	if n > 0 {
		xorCTR512(k.nr, &k.rk[0], &ctr, &dst[0], &plaintext[0], n)
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[0:], uint64(len(aad))*8)
	binary.BigEndian.PutUint64(lens[8:], uint64(n)*8)
	var x [16]byte
	ghash512(&k.tab[0][0], &x, unsafe.SliceData(aad), len(aad), &dst[0], n, &lens[0], 16)
	// The lane is the block reversed; the tag is it XOR E(K, J0).
	tag := dst[n : n+16]
	for i := range 16 {
		tag[i] = x[15-i]
	}
	ctr[15] = 1
	xorCTR512(k.nr, &k.rk[0], &ctr, &tag[0], &tag[0], 16)
}

// Impl names the code that encrypts on this CPU, for a server's log:
// "gcm=vaes ctr=vaes" with AVX-512 VAES and VPCLMULQDQ, "gcm=crypto/cipher
// ctr=aesni" with AES-NI only.
func Impl() string {
	gcm := "crypto/cipher"
	if useVAES {
		gcm = "vaes"
	}
	return "gcm=" + gcm + " ctr=" + ctrImpl
}
