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
