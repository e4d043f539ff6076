//go:build amd64 && !purego

#include "textflag.h"

// AES counter mode with AES-NI, eight blocks in flight: each round key is
// loaded once per eight blocks, so the AESENC units stay busy instead of
// waiting on one block's chain of rounds.
//
// Registers: X0-X7 the eight blocks, X8 the current round key, X9-X12 source
// data, X14 the IV. R9 is the counter word (host order) of the next block.

#define CTRBLOCK(off, reg) \
	LEAL off(R9), R10; \
	BSWAPL R10; \
	MOVOU X14, reg; \
	PINSRD $3, R10, reg

#define ROUND8(op) \
	op X8, X0; \
	op X8, X1; \
	op X8, X2; \
	op X8, X3; \
	op X8, X4; \
	op X8, X5; \
	op X8, X6; \
	op X8, X7

#define XOR2(off, ra, rb) \
	MOVOU off(SI), X9; \
	MOVOU off+16(SI), X10; \
	PXOR X9, ra; \
	PXOR X10, rb; \
	MOVOU ra, off(DI); \
	MOVOU rb, off+16(DI)

// func ctrBlocks(nr int, xk *byte, iv *[16]byte, ctr uint32, dst, src *byte, nblocks int)
TEXT ·ctrBlocks(SB), NOSPLIT, $0-56
	MOVQ nr+0(FP), CX
	MOVQ xk+8(FP), AX
	MOVQ iv+16(FP), BX
	MOVL ctr+24(FP), R8
	MOVQ dst+32(FP), DI
	MOVQ src+40(FP), SI
	MOVQ nblocks+48(FP), DX

	MOVOU (BX), X14
	MOVL 12(BX), R9
	BSWAPL R9
	ADDL R8, R9
	SHRQ $3, DX
	JZ done

loop:
	CTRBLOCK(0, X0)
	CTRBLOCK(1, X1)
	CTRBLOCK(2, X2)
	CTRBLOCK(3, X3)
	CTRBLOCK(4, X4)
	CTRBLOCK(5, X5)
	CTRBLOCK(6, X6)
	CTRBLOCK(7, X7)
	ADDL $8, R9

	MOVOU (AX), X8
	ROUND8(PXOR)
	LEAQ 16(AX), R11
	LEAQ -1(CX), R12

rounds:
	MOVOU (R11), X8
	ROUND8(AESENC)
	ADDQ $16, R11
	DECQ R12
	JNZ rounds

	MOVOU (R11), X8
	ROUND8(AESENCLAST)

	XOR2(0, X0, X1)
	XOR2(32, X2, X3)
	XOR2(64, X4, X5)
	XOR2(96, X6, X7)

	ADDQ $128, SI
	ADDQ $128, DI
	DECQ DX
	JNZ loop

done:
	RET
