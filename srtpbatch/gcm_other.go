//go:build !amd64 || purego

package srtpbatch

// Without the assembly, Context uses crypto/cipher's GCM and ctrKey its
// AES-NI or generic path; these are never called.
var useVAES = false

func xorCTR512(nr int, xk *byte, iv *[16]byte, dst, src *byte, n int) {
	panic("srtpbatch: xorCTR512 without VAES")
}

func ghash512(tab *byte, x *[16]byte, p0 *byte, n0 int, p1 *byte, n1 int, p2 *byte, n2 int) {
	panic("srtpbatch: ghash512 without VAES")
}
