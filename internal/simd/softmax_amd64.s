//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// Vectorised pieces of the streamed softmax, eight float32 lanes at a time,
// with vec_amd64.h's exp; arguments below −87.33654 (e^v under float32's
// smallest normal) give exactly 0, as num.Exp32 does. n is a multiple of 8
// (the Go wrappers do the tails).

// func expShiftSum(x *float32, n int, shift float32) float32
TEXT ·expShiftSum(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y14
	VXORPS       Y15, Y15, Y15
	SHRQ         $3, CX
	JZ           sumdone

sumloop:
	VMOVUPS (SI), Y0
	VSUBPS  Y14, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS Y0, (SI)
	VADDPS  Y0, Y15, Y15
	ADDQ    $32, SI
	DECQ    CX
	JNZ     sumloop

sumdone:
	HSUM(Y15, X15, X1)
	MOVSS X15, ret+24(FP)
	VZEROUPPER
	RET

// func expShiftScale(x *float32, n int, shift, scale float32)
TEXT ·expShiftScale(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y14
	VBROADCASTSS scale+20(FP), Y13
	SHRQ         $3, CX
	JZ           scaledone

scaleloop:
	VMOVUPS (SI), Y0
	VSUBPS  Y14, Y0, Y0
	EXP(Y0, Y1, Y2, Y3, Y4)
	VMULPS  Y13, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     scaleloop

scaledone:
	VZEROUPPER
	RET

// func maxOf(x *float32, n int, m float32) float32
TEXT ·maxOf(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y15
	SHRQ         $3, CX
	JZ           maxdone

maxloop:
	VMAXPS (SI), Y15, Y15
	ADDQ   $32, SI
	DECQ   CX
	JNZ    maxloop

maxdone:
	VEXTRACTF128 $1, Y15, X1
	VMAXPS       X1, X15, X15
	VMOVHLPS     X15, X1, X1
	VMAXPS       X1, X15, X15
	VMOVSHDUP    X15, X1
	VMAXSS       X1, X15, X15
	MOVSS        X15, ret+24(FP)
	VZEROUPPER
	RET
