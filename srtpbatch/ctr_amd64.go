//go:build amd64 && !purego

package srtpbatch

import (
	"crypto/subtle"

	"golang.org/x/sys/cpu"
)

// ctrBlocks XORs nblocks*16 bytes of src with the AES-CTR keystream into dst:
// block i is encrypted from iv with ctr+i added to its low 32 bits
// (big-endian). nblocks must be a multiple of 8. nr is 10 or 14; xk points
// at the (nr+1)*16 bytes of round keys.
//
//go:noescape
func ctrBlocks(nr int, xk *byte, iv *[16]byte, ctr uint32, dst, src *byte, nblocks int)

// AES-NI and PINSRD (SSE4.1); without them the generic path runs.
var useAESNI = cpu.X86.HasAES && cpu.X86.HasSSE41

var ctrImpl = func() string {
	if useVAES {
		return "vaes"
	}
	if useAESNI {
		return "aesni"
	}
	return "generic"
}()

// xorKeyStream is xorGeneric's contract, through the fastest path the CPU
// has.
func (k *ctrKey) xorKeyStream(iv *[16]byte, dst, src []byte) {
	switch {
	case useVAES:
		k.xorVAES(iv, dst, src)
	case useAESNI:
		k.xorAESNI(iv, dst, src)
	default:
		k.xorGeneric(iv, dst, src)
	}
}

// xorVAES: sixteen blocks per loop on 512-bit registers (gcm_amd64.s).
func (k *ctrKey) xorVAES(iv *[16]byte, dst, src []byte) {
	if len(src) > 0 {
		xorCTR512(k.nr, &k.rk[0], iv, &dst[0], &src[0], len(src))
	}
}

// xorAESNI: whole 128-byte runs go straight through the assembly, the rest
// through eight keystream blocks on the stack.
func (k *ctrKey) xorAESNI(iv *[16]byte, dst, src []byte) {
	n := len(src) &^ 127
	if n > 0 {
		ctrBlocks(k.nr, &k.rk[0], iv, 0, &dst[:n][0], &src[:n][0], n/16)
	}
	if r := len(src) - n; r > 0 {
		var ks [128]byte
		ctrBlocks(k.nr, &k.rk[0], iv, uint32(n/16), &ks[0], &ks[0], 8)
		subtle.XORBytes(dst[n:n+r], src[n:], ks[:r])
	}
}
