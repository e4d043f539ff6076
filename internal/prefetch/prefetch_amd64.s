//go:build !purego

#include "textflag.h"

// func spans(s *Span, n int)
TEXT ·spans(SB), NOSPLIT, $0-16
	MOVQ s+0(FP), SI
	MOVQ n+8(FP), CX

span:
	MOVQ 0(SI), AX // P
	MOVQ 8(SI), DX // N
	TESTQ AX, AX
	JZ next
	ADDQ AX, DX    // end
	ANDQ $-64, AX  // the line P is in

line:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	CMPQ AX, DX
	JB line

next:
	ADDQ $16, SI
	DECQ CX
	JNZ span
	RET
