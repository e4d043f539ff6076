//go:build !purego

#include "textflag.h"

// func spans(s *Span, n int)
TEXT ·spans(SB), NOSPLIT, $0-16
	MOVD s+0(FP), R0
	MOVD n+8(FP), R1

span:
	MOVD 0(R0), R2 // P
	MOVD 8(R0), R3 // N
	CBZ R2, next
	ADD R2, R3, R3 // end
	AND $~63, R2   // the line P is in

line:
	PRFM (R2), PLDL1KEEP
	ADD $64, R2
	CMP R3, R2
	BLO line

next:
	ADD $16, R0
	SUBS $1, R1
	BNE span
	RET
