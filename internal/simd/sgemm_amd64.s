//go:build !purego

#include "textflag.h"

// func sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha float32, acc int)
//
// C[0:4, 0:16] = alpha·A[0:4, 0:k]·B[0:k, 0:16]          (acc == 0)
// C[0:4, 0:16] = C[0:4, 0:16] + alpha·A·B                 (acc != 0)
//
// for row-major A, B and C with row strides lda, ldb and ldc (elements),
// with AVX2 and FMA: eight 8-lane accumulators (4 rows × 16 columns); each
// step of the k loop loads one row of B (two vectors), broadcasts one
// element of each row of A and issues eight fused multiply-adds.
TEXT ·Sgemm4x16(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

	TESTQ CX, CX
	JE    done

loop:
	VMOVUPS      (DX), Y8
	VMOVUPS      32(DX), Y9
	VBROADCASTSS (SI), Y10
	VBROADCASTSS (R10), Y11
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y9, Y10, Y1
	VFMADD231PS  Y8, Y11, Y2
	VFMADD231PS  Y9, Y11, Y3
	VBROADCASTSS (R11), Y12
	VBROADCASTSS (R12), Y13
	VFMADD231PS  Y8, Y12, Y4
	VFMADD231PS  Y9, Y12, Y5
	VFMADD231PS  Y8, Y13, Y6
	VFMADD231PS  Y9, Y13, Y7
	ADDQ         $4, SI
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $4, R12
	ADDQ         R9, DX
	DECQ         CX
	JNE          loop

done:
	VBROADCASTSS alpha+56(FP), Y10
	VMULPS       Y10, Y0, Y0
	VMULPS       Y10, Y1, Y1
	VMULPS       Y10, Y2, Y2
	VMULPS       Y10, Y3, Y3
	VMULPS       Y10, Y4, Y4
	VMULPS       Y10, Y5, Y5
	VMULPS       Y10, Y6, Y6
	VMULPS       Y10, Y7, Y7

	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12

	MOVQ  acc+64(FP), AX
	TESTQ AX, AX
	JE    store

	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VADDPS (R10), Y2, Y2
	VADDPS 32(R10), Y3, Y3
	VADDPS (R11), Y4, Y4
	VADDPS 32(R11), Y5, Y5
	VADDPS (R12), Y6, Y6
	VADDPS 32(R12), Y7, Y7

store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (R10)
	VMOVUPS Y3, 32(R10)
	VMOVUPS Y4, (R11)
	VMOVUPS Y5, 32(R11)
	VMOVUPS Y6, (R12)
	VMOVUPS Y7, 32(R12)
	VZEROUPPER
	RET

// func Sgemm4x8(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha float32, acc int)
//
// Sgemm4x16 for a 4×8 block of C: four 8-lane accumulators.
TEXT ·Sgemm4x8(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	MOVQ b+24(FP), DX
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12

	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2
	VXORPS Y4, Y4, Y4
	VXORPS Y6, Y6, Y6

	TESTQ CX, CX
	JE    done48

loop48:
	VMOVUPS      (DX), Y8
	VBROADCASTSS (SI), Y10
	VBROADCASTSS (R10), Y11
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y8, Y11, Y2
	VBROADCASTSS (R11), Y12
	VBROADCASTSS (R12), Y13
	VFMADD231PS  Y8, Y12, Y4
	VFMADD231PS  Y8, Y13, Y6
	ADDQ         $4, SI
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $4, R12
	ADDQ         R9, DX
	DECQ         CX
	JNE          loop48

done48:
	VBROADCASTSS alpha+56(FP), Y10
	VMULPS       Y10, Y0, Y0
	VMULPS       Y10, Y2, Y2
	VMULPS       Y10, Y4, Y4
	VMULPS       Y10, Y6, Y6

	MOVQ c+40(FP), DI
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12

	MOVQ  acc+64(FP), AX
	TESTQ AX, AX
	JE    store48

	VADDPS (DI), Y0, Y0
	VADDPS (R10), Y2, Y2
	VADDPS (R11), Y4, Y4
	VADDPS (R12), Y6, Y6

store48:
	VMOVUPS Y0, (DI)
	VMOVUPS Y2, (R10)
	VMOVUPS Y4, (R11)
	VMOVUPS Y6, (R12)
	VZEROUPPER
	RET

// func Sgemm1x16(k int, a *float32, b *float32, ldb int, c *float32, alpha float32, acc int)
//
// One row of C, 16 columns: C[0, 0:16] (+)= alpha·A[0, 0:k]·B[0:k, 0:16],
// with four accumulators over k (split by k mod 2 and by column half) to
// hide the FMA latency.
TEXT ·Sgemm1x16(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ ldb+24(FP), R9
	SHLQ $2, R9

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

	MOVQ CX, BX
	SHRQ $1, BX
	JE   tail116

loop116:
	VBROADCASTSS (SI), Y10
	VBROADCASTSS 4(SI), Y11
	VFMADD231PS  (DX), Y10, Y0
	VFMADD231PS  32(DX), Y10, Y1
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y11, Y2
	VFMADD231PS  32(DX), Y11, Y3
	ADDQ         R9, DX
	ADDQ         $8, SI
	DECQ         BX
	JNE          loop116

tail116:
	ANDQ $1, CX
	JE   done116
	VBROADCASTSS (SI), Y10
	VFMADD231PS  (DX), Y10, Y0
	VFMADD231PS  32(DX), Y10, Y1

done116:
	VADDPS       Y2, Y0, Y0
	VADDPS       Y3, Y1, Y1
	VBROADCASTSS alpha+40(FP), Y10
	VMULPS       Y10, Y0, Y0
	VMULPS       Y10, Y1, Y1
	MOVQ         c+32(FP), DI
	MOVQ         acc+48(FP), AX
	TESTQ        AX, AX
	JE           store116
	VADDPS       (DI), Y0, Y0
	VADDPS       32(DI), Y1, Y1

store116:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VZEROUPPER
	RET

// func Sgemm1x8(k int, a *float32, b *float32, ldb int, c *float32, alpha float32, acc int)
//
// Sgemm1x16 for 8 columns.
TEXT ·Sgemm1x8(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ ldb+24(FP), R9
	SHLQ $2, R9

	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2

	MOVQ CX, BX
	SHRQ $1, BX
	JE   tail18

loop18:
	VBROADCASTSS (SI), Y10
	VBROADCASTSS 4(SI), Y11
	VFMADD231PS  (DX), Y10, Y0
	ADDQ         R9, DX
	VFMADD231PS  (DX), Y11, Y2
	ADDQ         R9, DX
	ADDQ         $8, SI
	DECQ         BX
	JNE          loop18

tail18:
	ANDQ $1, CX
	JE   done18
	VBROADCASTSS (SI), Y10
	VFMADD231PS  (DX), Y10, Y0

done18:
	VADDPS       Y2, Y0, Y0
	VBROADCASTSS alpha+40(FP), Y10
	VMULPS       Y10, Y0, Y0
	MOVQ         c+32(FP), DI
	MOVQ         acc+48(FP), AX
	TESTQ        AX, AX
	JE           store18
	VADDPS       (DI), Y0, Y0

store18:
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET
