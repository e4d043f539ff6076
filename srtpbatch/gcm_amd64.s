//go:build amd64 && !purego

#include "textflag.h"

// AES-CTR and GHASH on 512-bit registers: four 128-bit lanes each, four
// registers in flight, so sixteen blocks per loop (gcm.go says why and how
// the GHASH lanes are laid out). The last, partial loop of either function
// loads and stores through byte masks (AVX-512BW), which neither read nor
// fault past the end of the buffers.

// Per lane: reverse the sixteen bytes (VPSHUFB).
DATA bswapMask<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA bswapMask<>+0x08(SB)/8, $0x0001020304050607
GLOBL bswapMask<>(SB), (NOPTR+RODATA), $16

// The reduction's constant: the reflected polynomial's top word.
DATA gcmPoly<>+0x00(SB)/8, $0xc200000000000000
GLOBL gcmPoly<>(SB), (NOPTR+RODATA), $8

// Counter offsets of the four lanes of the first register, and the step
// between registers, on a counter block kept byte-reversed (its 32-bit
// counter is then the lane's first little-endian word).
DATA ctrLanes<>+0x00(SB)/8, $0
DATA ctrLanes<>+0x08(SB)/8, $0
DATA ctrLanes<>+0x10(SB)/8, $1
DATA ctrLanes<>+0x18(SB)/8, $0
DATA ctrLanes<>+0x20(SB)/8, $2
DATA ctrLanes<>+0x28(SB)/8, $0
DATA ctrLanes<>+0x30(SB)/8, $3
DATA ctrLanes<>+0x38(SB)/8, $0
GLOBL ctrLanes<>(SB), (NOPTR+RODATA), $64

DATA ctrStep<>+0x00(SB)/8, $4
DATA ctrStep<>+0x08(SB)/8, $0
GLOBL ctrStep<>(SB), (NOPTR+RODATA), $16

#define AESROUND4(k) \
	VAESENC k, Z0, Z0; \
	VAESENC k, Z1, Z1; \
	VAESENC k, Z2, Z2; \
	VAESENC k, Z3, Z3

#define AESLAST4(k) \
	VAESENCLAST k, Z0, Z0; \
	VAESENCLAST k, Z1, Z1; \
	VAESENCLAST k, Z2, Z2; \
	VAESENCLAST k, Z3, Z3

// LOWMASK(r, off, k): k = the low r-off bits set, none when r <= off, all
// 64 when r-off >= 64 (BZHI keeps every bit from 64 up). r < 256; R10
// holds -1 and R12 zero.
#define LOWMASK(r, off, k) \
	MOVQ r, R11; \
	SUBQ $(off), R11; \
	CMOVQLT R12, R11; \
	BZHIQ R11, R10, R13; \
	KMOVQ R13, k

// CTRMASK(j, zk): the last loop's register j, under a byte mask of what
// is left past 64*j bytes. DX < 256 here.
#define CTRMASK(j, zk) \
	LOWMASK(DX, 64*j, K1); \
	VMOVDQU8.Z (64*j)(SI), K1, Z4; \
	VPXORQ Z4, zk, zk; \
	VMOVDQU8 zk, K1, (64*j)(DI)

// func xorCTR512(nr int, xk *byte, iv *[16]byte, dst, src *byte, n int)
//
// Z0-Z3 the sixteen blocks, Z4 source data (the last loop), Z8 the next counter block
// (byte-reversed, lane i at +i), Z9 the step of 4, Z10 the byte-reversal
// mask, Z16-Z30 the round keys, each in all four lanes.
TEXT ·xorCTR512(SB), NOSPLIT, $0-48
	MOVQ nr+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ iv+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), DX
	TESTQ DX, DX
	JLE ctrdone

	VBROADCASTI32X4 bswapMask<>(SB), Z10
	VBROADCASTI32X4 ctrStep<>(SB), Z9
	VBROADCASTI32X4 (BX), Z8
	VPSHUFB Z10, Z8, Z8
	VPADDD ctrLanes<>(SB), Z8, Z8

	VBROADCASTI32X4 0(AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VBROADCASTI32X4 64(AX), Z20
	VBROADCASTI32X4 80(AX), Z21
	VBROADCASTI32X4 96(AX), Z22
	VBROADCASTI32X4 112(AX), Z23
	VBROADCASTI32X4 128(AX), Z24
	VBROADCASTI32X4 144(AX), Z25
	VBROADCASTI32X4 160(AX), Z26
	CMPQ CX, $10
	JEQ ctrloop
	VBROADCASTI32X4 176(AX), Z27
	VBROADCASTI32X4 192(AX), Z28
	VBROADCASTI32X4 208(AX), Z29
	VBROADCASTI32X4 224(AX), Z30

ctrloop:
	VPSHUFB Z10, Z8, Z0
	VPADDD Z9, Z8, Z8
	VPSHUFB Z10, Z8, Z1
	VPADDD Z9, Z8, Z8
	VPSHUFB Z10, Z8, Z2
	VPADDD Z9, Z8, Z8
	VPSHUFB Z10, Z8, Z3
	VPADDD Z9, Z8, Z8

	VPXORQ Z16, Z0, Z0
	VPXORQ Z16, Z1, Z1
	VPXORQ Z16, Z2, Z2
	VPXORQ Z16, Z3, Z3
	AESROUND4(Z17)
	AESROUND4(Z18)
	AESROUND4(Z19)
	AESROUND4(Z20)
	AESROUND4(Z21)
	AESROUND4(Z22)
	AESROUND4(Z23)
	AESROUND4(Z24)
	AESROUND4(Z25)
	CMPQ CX, $10
	JEQ ctrlast128
	AESROUND4(Z26)
	AESROUND4(Z27)
	AESROUND4(Z28)
	AESROUND4(Z29)
	AESLAST4(Z30)
	JMP ctrxor

ctrlast128:
	AESLAST4(Z26)

ctrxor:
	CMPQ DX, $256
	JB ctrtail
	VPXORQ 0(SI), Z0, Z0
	VPXORQ 64(SI), Z1, Z1
	VPXORQ 128(SI), Z2, Z2
	VPXORQ 192(SI), Z3, Z3
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $256, DX
	JNZ ctrloop
	JMP ctrdone

ctrtail:
	MOVQ $-1, R10
	XORL R12, R12
	CTRMASK(0, Z0)
	CTRMASK(1, Z1)
	CTRMASK(2, Z2)
	CTRMASK(3, Z3)

ctrdone:
	VZEROUPPER
	RET

// MULINIT and MULACC multiply four lanes of data by four of powers and
// add the products up per lane: Z8 the low halves, Z9 the high, Z10 the
// middle (both cross terms).
#define MULINIT(zd, zp) \
	VPCLMULQDQ $0x00, zp, zd, Z8; \
	VPCLMULQDQ $0x11, zp, zd, Z9; \
	VPCLMULQDQ $0x01, zp, zd, Z10; \
	VPCLMULQDQ $0x10, zp, zd, Z11; \
	VPXORQ Z11, Z10, Z10

#define MULACC(zd, zp) MULACCW(zd, zp, Z8, Z9, Z10, Z11, Z12, Z13, Z14)

// MULACCW is MULACC at any width: lo, hi and mid accumulate, t0-t3 are
// scratch.
#define MULACCW(d, p, lo, hi, mid, t0, t1, t2, t3) \
	VPCLMULQDQ $0x00, p, d, t1; \
	VPCLMULQDQ $0x11, p, d, t2; \
	VPCLMULQDQ $0x01, p, d, t3; \
	VPCLMULQDQ $0x10, p, d, t0; \
	VPXORQ t1, lo, lo; \
	VPXORQ t2, hi, hi; \
	VPTERNLOGD $0x96, t0, t3, mid

// FOLD xors the four lanes of z into its first: z's xmm.
#define FOLD(z, y, x) \
	VEXTRACTI64X4 $1, z, Y12; \
	VPXORQ Y12, y, y; \
	VEXTRACTI32X4 $1, y, X12; \
	VPXORQ X12, x, x

// GHASH16: Z0-Z3 hold sixteen blocks as loaded, Z4-Z7 the powers of H
// that each meets; X20 the accumulator, which joins the first block.
// Leaves the new accumulator in X20. The accumulator's product with the
// first block's power is taken apart from the data's and added after the
// lanes are folded: the data's products then wait on nothing, and the
// chain from one accumulator to the next is four multiplications wide
// and one reduction long.
#define GHASH16 \
	VPSHUFB Z31, Z0, Z0; \
	VPSHUFB Z31, Z1, Z1; \
	VPSHUFB Z31, Z2, Z2; \
	VPSHUFB Z31, Z3, Z3; \
	MULINIT(Z0, Z4); \
	MULACC(Z1, Z5); \
	MULACC(Z2, Z6); \
	MULACC(Z3, Z7); \
	FOLD(Z8, Y8, X8); \
	FOLD(Z9, Y9, X9); \
	FOLD(Z10, Y10, X10); \
	MULACCW(X20, X4, X8, X9, X10, X11, X12, X13, X14); \
	VPSLLDQ $8, X10, X12; \
	VPXORQ X12, X8, X8; \
	VPSRLDQ $8, X10, X12; \
	VPXORQ X12, X9, X9; \
	VPCLMULQDQ $0x00, X8, X30, X12; \
	VPSHUFD $0x4e, X8, X8; \
	VPXORQ X12, X8, X8; \
	VPCLMULQDQ $0x00, X8, X30, X12; \
	VPSHUFD $0x4e, X8, X8; \
	VPXORQ X12, X8, X8; \
	VPXORQ X9, X8, X20

// GHMASK(j, zd, zp): the last loop's register j of data under a byte mask
// of what is left past 64*j bytes, and of powers under a word mask of the
// blocks left past 4*j (R8 holds twice the blocks). DX < 256 here.
#define GHMASK(j, zd, zp) \
	LOWMASK(DX, 64*j, K1); \
	VMOVDQU8.Z (64*j)(SI), K1, zd; \
	LOWMASK(R8, 8*j, K2); \
	VMOVDQU64.Z (64*j)(R9), K2, zp

// func ghash512(tab *byte, x *[16]byte, p0 *byte, n0 int, p1 *byte, n1 int, p2 *byte, n2 int)
//
// Hashes the three segments in turn, each padded to whole blocks: a
// packet's header, its payload and the lengths block in one call, so that
// one segment's last reduction overlaps the next one's products. R14
// walks the (p, n) argument pairs.
TEXT ·ghash512(SB), NOSPLIT, $0-64
	MOVQ tab+0(FP), AX
	MOVQ x+8(FP), BX
	LEAQ p0+16(FP), R14
	MOVQ $3, CX
	VBROADCASTI32X4 bswapMask<>(SB), Z31
	VPBROADCASTQ gcmPoly<>(SB), X30
	VMOVDQU64 (BX), X20
	MOVQ $-1, R10
	XORL R12, R12

ghseg:
	MOVQ 0(R14), SI
	MOVQ 8(R14), DX
	ADDQ $16, R14
	TESTQ DX, DX
	JLE ghnext
	CMPQ DX, $256
	JB ghtail

	VMOVDQU64 0(AX), Z4
	VMOVDQU64 64(AX), Z5
	VMOVDQU64 128(AX), Z6
	VMOVDQU64 192(AX), Z7

ghloop:
	VMOVDQU64 0(SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	GHASH16
	ADDQ $256, SI
	SUBQ $256, DX
	CMPQ DX, $256
	JAE ghloop
	TESTQ DX, DX
	JZ ghnext

ghtail:
	// r = the blocks left (1-15, the last maybe partial); they meet
	// H^r ... H, which start at tab[16-r].
	LEAQ 15(DX), R8
	SHRQ $4, R8
	MOVQ $16, R9
	SUBQ R8, R9
	SHLQ $4, R9
	ADDQ AX, R9
	SHLQ $1, R8
	GHMASK(0, Z0, Z4)
	GHMASK(1, Z1, Z5)
	GHMASK(2, Z2, Z6)
	GHMASK(3, Z3, Z7)
	GHASH16

ghnext:
	DECQ CX
	JNZ ghseg
	VMOVDQU64 X20, (BX)
	VZEROUPPER
	RET
