package srtpbatch

import "encoding/binary"

// AES key expansion (FIPS-197 section 5.2) for the AES-NI counter mode:
// AESENC wants the round keys as bytes in FIPS order, which crypto/aes does
// not expose.

// sbox is the AES S-box, computed once from its definition (multiplicative
// inverse in GF(2^8), then the affine map) rather than typed in.
var sbox = func() (s [256]byte) {
	// Walk p over the generator 3's powers and q over 3^-1's, so q = p^-1.
	p, q := byte(1), byte(1)
	for {
		p = p ^ p<<1 ^ xtimeCarry(p) // p *= 3
		q ^= q << 1                  // q /= 3: q *= 0xf6 as three steps
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		x := q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4)
		s[p] = x ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return s
}()

// xtimeCarry is the reduction term of p*2 in GF(2^8).
func xtimeCarry(p byte) byte {
	if p&0x80 != 0 {
		return 0x1b
	}
	return 0
}

func rotl8(x byte, n uint) byte { return x<<n | x>>(8-n) }

func subWord(w uint32) uint32 {
	return uint32(sbox[w>>24])<<24 | uint32(sbox[w>>16&0xff])<<16 |
		uint32(sbox[w>>8&0xff])<<8 | uint32(sbox[w&0xff])
}

// expandKey writes the round keys of a 16- or 32-byte AES key into rk and
// returns the number of rounds (10 or 14).
func expandKey(key []byte, rk *[240]byte) int {
	nk := len(key) / 4
	nr := nk + 6
	var w [60]uint32
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := nk; i < 4*(nr+1); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon = rcon<<1 ^ uint32(xtimeCarry(byte(rcon)))
			rcon &= 0xff
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	for i := range 4 * (nr + 1) {
		binary.BigEndian.PutUint32(rk[4*i:], w[i])
	}
	return nr
}
