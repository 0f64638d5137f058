//go:build !purego

#include "textflag.h"

// Vectorised pieces of the streamed softmax, eight float32 lanes at a time.
// n is a multiple of 8 (the Go wrappers do the tails).
//
// exp is Cephes' expf: v clamped to [-87.3, 88.7], k = round(v·log2 e),
// r = v − k·ln 2 (ln 2 in two parts), e^r = 1 + r + r²·P(r) with P of
// degree 5, times 2^k built in the exponent bits. Its error is below 2 ulp
// over the range. Arguments below −87.33654 (e^v under float32's smallest
// normal) give exactly 0, as num.Exp32 does.

#define CONST8(name, bits) \
	DATA name<>+0(SB)/4, $bits; \
	DATA name<>+4(SB)/4, $bits; \
	DATA name<>+8(SB)/4, $bits; \
	DATA name<>+12(SB)/4, $bits; \
	DATA name<>+16(SB)/4, $bits; \
	DATA name<>+20(SB)/4, $bits; \
	DATA name<>+24(SB)/4, $bits; \
	DATA name<>+28(SB)/4, $bits; \
	GLOBL name<>(SB), RODATA|NOPTR, $32

CONST8(exphi, 0x42b17218)   // 88.72283: e^v stays finite
CONST8(explo, 0xc2aeac50)   // -87.33654: below it e^v is flushed to 0
CONST8(log2e, 0x3fb8aa3b)   // 1.44269504088896341
CONST8(ln2hi, 0x3f318000)   // 0.693359375
CONST8(ln2lo, 0xb95e8083)   // -2.12194440e-4
CONST8(p0, 0x3950696f)      // 1.9875691500e-4
CONST8(p1, 0x3ab743ce)      // 1.3981999507e-3
CONST8(p2, 0x3c088908)      // 8.3334519073e-3
CONST8(p3, 0x3d2aa9c1)      // 4.1665795894e-2
CONST8(p4, 0x3e2aaaaa)      // 1.6666665459e-1
CONST8(p5, 0x3f000000)      // 5.0000001201e-1
CONST8(one, 0x3f800000)     // 1
CONST8(bias127, 0x0000007f) // exponent bias (int32)

// EXP replaces the eight lanes of X by e^X, using T1, T2, T3 and M.
#define EXP(X, T1, T2, T3, M) \
	VCMPPS       $1, explo<>(SB), X, M; \
	VMINPS       exphi<>(SB), X, X; \
	VMAXPS       explo<>(SB), X, X; \
	VMULPS       log2e<>(SB), X, T1; \
	VROUNDPS     $0, T1, T1; \
	VFNMADD231PS ln2hi<>(SB), T1, X; \
	VFNMADD231PS ln2lo<>(SB), T1, X; \
	VMOVUPS      p0<>(SB), T2; \
	VFMADD213PS  p1<>(SB), X, T2; \
	VFMADD213PS  p2<>(SB), X, T2; \
	VFMADD213PS  p3<>(SB), X, T2; \
	VFMADD213PS  p4<>(SB), X, T2; \
	VFMADD213PS  p5<>(SB), X, T2; \
	VMULPS       X, X, T3; \
	VFMADD213PS  X, T3, T2; \
	VADDPS       one<>(SB), T2, T2; \
	VCVTPS2DQ    T1, T1; \
	VPADDD       bias127<>(SB), T1, T1; \
	VPSLLD       $23, T1, T1; \
	VMULPS       T1, T2, X; \
	VANDNPS      X, M, X

// HSUM leaves the sum of the eight lanes of Y (X its low half) in the low
// lane of X, using T (XT its low half).
#define HSUM(Y, X, T, XT) \
	VEXTRACTF128 $1, Y, XT; \
	VADDPS       XT, X, X; \
	VMOVHLPS     X, XT, XT; \
	VADDPS       XT, X, X; \
	VMOVSHDUP    X, XT; \
	VADDSS       XT, X, X

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
	HSUM(Y15, X15, Y1, X1)
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
