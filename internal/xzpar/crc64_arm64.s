#include "textflag.h"

// FOLD is crc64_amd64.s's: X = clmul(X.lo, K.lo) ^ clmul(X.hi, K.hi) ^ D, using T and U.
#define FOLD(X, K, T, U, D) \
	VPMULL  K.D1, X.D1, T.Q1; \
	VPMULL2 K.D2, X.D2, U.Q1; \
	VEOR    T.B16, U.B16, X.B16; \
	VEOR    D.B16, X.B16, X.B16

// func fold64(s uint64, p []byte, k *[8]uint64) (lo, hi uint64)
TEXT ·fold64(SB), NOSPLIT, $0-56
	MOVD s+0(FP), R0
	MOVD p_base+8(FP), R1
	MOVD p_len+16(FP), R2
	MOVD k+32(FP), R3

	// Four accumulators, one per 16 bytes of each 64; the register on the first 8 bytes.
	VLD1.P 64(R1), [V0.B16, V1.B16, V2.B16, V3.B16]
	VEOR   V8.B16, V8.B16, V8.B16
	VMOV   R0, V8.D[0]
	VEOR   V8.B16, V0.B16, V0.B16
	SUB    $64, R2
	VLD1   (R3), [V9.D2, V10.D2, V11.D2, V12.D2] // 512, 384, 256 and 128 bits on

loop:
	CMP    $64, R2
	BLT    combine
	VLD1.P 64(R1), [V4.B16, V5.B16, V6.B16, V7.B16]
	FOLD(V0, V9, V13, V14, V4)
	FOLD(V1, V9, V15, V16, V5)
	FOLD(V2, V9, V17, V18, V6)
	FOLD(V3, V9, V19, V20, V7)
	SUB    $64, R2
	B      loop

combine:
	// V0 is 48 bytes before the end, V1 32, V2 16: fold each onto V3.
	FOLD(V0, V10, V13, V14, V3)
	FOLD(V1, V11, V15, V16, V0)
	FOLD(V2, V12, V17, V18, V1)
	VMOV V2.D[0], R0
	VMOV V2.D[1], R1
	MOVD R0, lo+40(FP)
	MOVD R1, hi+48(FP)
	RET
