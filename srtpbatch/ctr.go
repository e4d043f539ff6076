package srtpbatch

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"crypto/cipher"
)

// ctrKey is an AES key for SRTP counter mode (RFC 3711 4.1.1). The
// keystream of a whole packet is made in one call: on amd64 by ctr_amd64.s,
// eight blocks in flight; elsewhere by xorGeneric.
type ctrKey struct {
	nr    int          // rounds: 10 or 14
	rk    [240]byte    // round keys, FIPS-197 byte order, for AESENC
	block cipher.Block // the generic path's cipher

	// Scratch of the generic path: on the heap with the key, because
	// passing stack arrays to an interface method would make them escape.
	ctr [16]byte
	ks  [128]byte
}

func newCTRKey(key []byte) (*ctrKey, error) {
	b, err := newAES(key)
	if err != nil {
		return nil, err
	}
	k := &ctrKey{block: b}
	k.nr = expandKey(key, &k.rk)
	return k, nil
}

// newAES is crypto/aes for the two key sizes SRTP uses, AES-128 and
// AES-256 (AES-192 has no profile).
func newAES(key []byte) (cipher.Block, error) {
	if len(key) != 16 && len(key) != 32 {
		return nil, fmt.Errorf("%w: AES key of %d bytes", ErrKeyLength, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("srtpbatch: aes: %w", err)
	}
	return b, nil
}

// xorGeneric XORs src with the keystream whose first counter block is iv
// (block i: iv with i added to its low 32 bits) into dst, eight blocks at
// a time. dst and src may be the same slice; len(dst) >= len(src).
func (k *ctrKey) xorGeneric(iv *[16]byte, dst, src []byte) {
	k.ctr = *iv
	base := binary.BigEndian.Uint32(iv[12:])
	for off := 0; off < len(src); off += len(k.ks) {
		n := min(len(k.ks), len(src)-off)
		for j := 0; j*16 < n; j++ {
			binary.BigEndian.PutUint32(k.ctr[12:], base+uint32(off/16+j))
			k.block.Encrypt(k.ks[16*j:], k.ctr[:])
		}
		subtle.XORBytes(dst[off:off+n], src[off:off+n], k.ks[:n])
	}
}
