#include "textflag.h"

// FOLD folds the accumulator X by the multipliers in K (low qword for its low half, high
// qword for its high half), using T, and adds D: X = clmul(X.lo, K.lo) ^ clmul(X.hi, K.hi) ^ D.
#define FOLD(X, K, T, D) \
	MOVOU X, T; \
	PCLMULQDQ $0x00, K, X; \
	PCLMULQDQ $0x11, K, T; \
	PXOR T, X; \
	PXOR D, X

// func fold64(s uint64, p []byte, k *[8]uint64) (lo, hi uint64)
TEXT ·fold64(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVQ k+32(FP), DX

	// Four accumulators, one per 16 bytes of each 64.
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVQ  AX, X8 // (s, 0): the register goes on the first 8 bytes
	PXOR  X8, X0
	ADDQ  $64, SI
	SUBQ  $64, CX
	MOVOU 0(DX), X9 // 512 bits on

loop:
	CMPQ  CX, $64
	JB    combine
	MOVOU 0(SI), X4
	MOVOU 16(SI), X5
	MOVOU 32(SI), X6
	MOVOU 48(SI), X7
	FOLD(X0, X9, X10, X4)
	FOLD(X1, X9, X11, X5)
	FOLD(X2, X9, X12, X6)
	FOLD(X3, X9, X13, X7)
	ADDQ  $64, SI
	SUBQ  $64, CX
	JMP   loop

combine:
	// X0 is 48 bytes before the end, X1 32, X2 16: fold each onto X3.
	MOVOU 16(DX), X9
	FOLD(X0, X9, X10, X3)
	MOVOU 32(DX), X9
	FOLD(X1, X9, X11, X0)
	MOVOU 48(DX), X9
	FOLD(X2, X9, X12, X1)
	MOVQ   X2, AX
	PSRLDQ $8, X2
	MOVQ   X2, BX
	MOVQ   AX, lo+40(FP)
	MOVQ   BX, hi+48(FP)
	RET
