//go:build amd64 && !purego

package srtpbatch

import "golang.org/x/sys/cpu"

// xorCTR512 XORs n bytes of src with the AES-CTR keystream into dst: block
// i is encrypted from iv with i added to its low 32 bits (big-endian), as
// ctrBlocks does, sixteen blocks per loop and any n (the last blocks
// through masked loads and stores). dst and src may be the same.
//
//go:noescape
func xorCTR512(nr int, xk *byte, iv *[16]byte, dst, src *byte, n int)

// ghash512 folds three segments, n0 bytes at p0, then n1 at p1, then n2
// at p2, into the GHASH accumulator x (a lane: the block byte-reversed),
// each segment's last block padded with zeros; tab is a gcmKey's table.
// An empty segment's pointer is not read.
//
//go:noescape
func ghash512(tab *byte, x *[16]byte, p0 *byte, n0 int, p1 *byte, n1 int, p2 *byte, n2 int)

// useVAES: AVX-512 (F, BW for byte masks, VL for the 128- and 256-bit
// forms), VAES and VPCLMULQDQ on 512-bit registers, and BMI2's BZHI.
// cpu.X86.HasAVX512F already asks whether the OS saves the registers.
var useVAES = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
	cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasBMI2
