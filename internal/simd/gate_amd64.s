//go:build !purego

#include "textflag.h"
#include "vec_amd64.h"

// Vectorised float32 kernels of the triangle modules (eight lanes, AVX2
// with FMA): sigmoid gates with masks and biases, layer-norm moments and
// rows, and sums. sigmoid(t) = 1/(1 + e^−t) with vec_amd64.h's exp, exact
// to about two float32 ulp.

// func gateMaskAVX2(dst, x, y, m *float32, n int, bx, by float32)
// dst[i] = m[i]·(x[i]+bx)·sigmoid(y[i]+by) for i < n, n a multiple of 8.
// Two vectors per iteration give the out-of-order core two independent
// chains of the long sigmoid.
TEXT ·gateMaskAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ m+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS bx+40(FP), Y14
	VBROADCASTSS by+44(FP), Y15
	VMOVUPS one<>(SB), Y13
	XORQ AX, AX
	SHLQ $2, CX
	MOVQ CX, R9
	ANDQ $-64, R9

gm2loop:
	CMPQ AX, R9
	JGE  gmloop
	VMOVUPS (DX)(AX*1), Y0
	VMOVUPS 32(DX)(AX*1), Y5
	VADDPS  Y15, Y0, Y0
	VADDPS  Y15, Y5, Y5
	SIGMOID(Y0, Y1, Y2, Y3)
	SIGMOID(Y5, Y6, Y7, Y8)
	VMOVUPS (SI)(AX*1), Y4
	VMOVUPS 32(SI)(AX*1), Y9
	VADDPS  Y14, Y4, Y4
	VADDPS  Y14, Y9, Y9
	VMULPS  Y4, Y0, Y0
	VMULPS  Y9, Y5, Y5
	VMULPS  (R8)(AX*1), Y0, Y0
	VMULPS  32(R8)(AX*1), Y5, Y5
	VMOVUPS Y0, (DI)(AX*1)
	VMOVUPS Y5, 32(DI)(AX*1)
	ADDQ    $64, AX
	JMP     gm2loop

gmloop:
	CMPQ AX, CX
	JGE  gmdone
	VMOVUPS (DX)(AX*1), Y0
	VADDPS  Y15, Y0, Y0
	SIGMOID(Y0, Y1, Y2, Y3)
	VMOVUPS (SI)(AX*1), Y4
	VADDPS  Y14, Y4, Y4
	VMULPS  Y4, Y0, Y0
	VMULPS  (R8)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     gmloop

gmdone:
	VZEROUPPER
	RET

// func gateVecAVX2(dst, x, y, bx, by *float32, n int)
// dst[i] = (x[i]+bx[i])·sigmoid(y[i]+by[i]) for i < n, n a multiple of 8.
TEXT ·gateVecAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ bx+24(FP), R8
	MOVQ by+32(FP), R9
	MOVQ n+40(FP), CX
	VMOVUPS one<>(SB), Y13
	XORQ AX, AX
	SHLQ $2, CX

gvloop:
	CMPQ AX, CX
	JGE  gvdone
	VMOVUPS (DX)(AX*1), Y0
	VADDPS  (R9)(AX*1), Y0, Y0
	SIGMOID(Y0, Y1, Y2, Y3)
	VMOVUPS (SI)(AX*1), Y4
	VADDPS  (R8)(AX*1), Y4, Y4
	VMULPS  Y4, Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     gvloop

gvdone:
	VZEROUPPER
	RET

// func sigmoidVecAVX2(dst, x, b *float32, n int)
// dst[i] = sigmoid(x[i]+b[i]) for i < n, n a multiple of 8.
TEXT ·sigmoidVecAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ n+24(FP), CX
	VMOVUPS one<>(SB), Y13
	XORQ AX, AX
	SHLQ $2, CX

svloop:
	CMPQ AX, CX
	JGE  svdone
	VMOVUPS (SI)(AX*1), Y0
	VADDPS  (R8)(AX*1), Y0, Y0
	SIGMOID(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     svloop

svdone:
	VZEROUPPER
	RET

// func sigmoidScalarAVX2(dst, x *float32, n int, b float32)
// dst[i] = sigmoid(x[i]+b) for i < n, n a multiple of 8.
TEXT ·sigmoidScalarAVX2(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS b+24(FP), Y15
	VMOVUPS one<>(SB), Y13
	XORQ AX, AX
	SHLQ $2, CX

ssloop:
	CMPQ AX, CX
	JGE  ssdone
	VMOVUPS (SI)(AX*1), Y0
	VADDPS  Y15, Y0, Y0
	SIGMOID(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     ssloop

ssdone:
	VZEROUPPER
	RET

// func momentsAVX2(s1, s2, x, k *float32, n int)
// With d = x[i] − k[i]: s1[i] += d, s2[i] += d² for i < n, n a multiple of 8.
TEXT ·momentsAVX2(SB), NOSPLIT, $0-40
	MOVQ s1+0(FP), DI
	MOVQ s2+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ k+24(FP), R8
	MOVQ n+32(FP), CX
	XORQ AX, AX
	SHLQ $2, CX

moloop:
	CMPQ AX, CX
	JGE  modone
	VMOVUPS (DX)(AX*1), Y0
	VSUBPS  (R8)(AX*1), Y0, Y0
	VADDPS  (DI)(AX*1), Y0, Y1
	VMOVUPS Y1, (DI)(AX*1)
	VMOVUPS (SI)(AX*1), Y2
	VFMADD231PS Y0, Y0, Y2
	VMOVUPS Y2, (SI)(AX*1)
	ADDQ    $32, AX
	JMP     moloop

modone:
	VZEROUPPER
	RET

// func normAffineAVX2(dst, x, m, r *float32, n int, s, o float32)
// dst[i] = (x[i] − m[i])·r[i]·s + o for i < n, n a multiple of 8.
TEXT ·normAffineAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ r+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSS s+40(FP), Y14
	VBROADCASTSS o+44(FP), Y15
	XORQ AX, AX
	SHLQ $2, CX

naloop:
	CMPQ AX, CX
	JGE  nadone
	VMOVUPS (SI)(AX*1), Y0
	VSUBPS  (DX)(AX*1), Y0, Y0
	VMULPS  (R8)(AX*1), Y0, Y0
	VMOVUPS Y15, Y1
	VFMADD231PS Y14, Y0, Y1
	VMOVUPS Y1, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     naloop

nadone:
	VZEROUPPER
	RET

// func addAVX2(dst, x *float32, n int)
// dst[i] += x[i] for i < n, n a multiple of 8.
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX
	SHLQ $2, CX

adloop:
	CMPQ AX, CX
	JGE  addone
	VMOVUPS (SI)(AX*1), Y0
	VADDPS  (DI)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     adloop

addone:
	VZEROUPPER
	RET

// func layerNormRowAVX2(dst, x, scale, offset *float32, n int, eps float32) (mean, rstd float32)
// A layer norm of one row of n elements (n a multiple of 8, n ≥ 8):
// mean μ = Σx/n, then σ² = Σ(x−μ)²/n, rstd = 1/√(σ² + eps), and
// dst = (x − μ)·rstd·scale + offset.
TEXT ·layerNormRowAVX2(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ scale+16(FP), DX
	MOVQ offset+24(FP), R8
	MOVQ n+32(FP), CX
	SHLQ $2, CX

	// Σx in two accumulators.
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ   AX, AX
	MOVQ   CX, R9
	ANDQ   $-64, R9

ln1a:
	CMPQ   AX, R9
	JGE    ln1b
	VADDPS (SI)(AX*1), Y0, Y0
	VADDPS 32(SI)(AX*1), Y1, Y1
	ADDQ   $64, AX
	JMP    ln1a

ln1b:
	CMPQ   AX, CX
	JGE    ln1c
	VADDPS (SI)(AX*1), Y0, Y0
	ADDQ   $32, AX

ln1c:
	VADDPS Y1, Y0, Y0
	HSUM(Y0, X0, X1)
	MOVQ   n+32(FP), R10
	VCVTSI2SSQ R10, X2, X2 // n as float32
	VDIVSS X2, X0, X0      // μ
	VBROADCASTSS X0, Y3
	VMOVSS X0, mean+48(FP)

	// Σ(x − μ)² in two accumulators.
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ   AX, AX

ln2a:
	CMPQ   AX, R9
	JGE    ln2b
	VMOVUPS (SI)(AX*1), Y4
	VSUBPS  Y3, Y4, Y4
	VFMADD231PS Y4, Y4, Y0
	VMOVUPS 32(SI)(AX*1), Y5
	VSUBPS  Y3, Y5, Y5
	VFMADD231PS Y5, Y5, Y1
	ADDQ    $64, AX
	JMP     ln2a

ln2b:
	CMPQ    AX, CX
	JGE     ln2c
	VMOVUPS (SI)(AX*1), Y4
	VSUBPS  Y3, Y4, Y4
	VFMADD231PS Y4, Y4, Y0
	ADDQ    $32, AX

ln2c:
	VADDPS Y1, Y0, Y0
	HSUM(Y0, X0, X1)
	VDIVSS X2, X0, X0          // σ²
	VADDSS eps+40(FP), X0, X0  // σ² + eps
	VSQRTSS X0, X0, X0
	VMOVSS one<>(SB), X1
	VDIVSS X0, X1, X0          // rstd
	VMOVSS X0, rstd+52(FP)
	VBROADCASTSS X0, Y6

	// dst = (x − μ)·rstd·scale + offset.
	XORQ AX, AX

ln3:
	CMPQ    AX, CX
	JGE     ln3done
	VMOVUPS (SI)(AX*1), Y4
	VSUBPS  Y3, Y4, Y4
	VMULPS  Y6, Y4, Y4
	VMOVUPS (R8)(AX*1), Y5
	VFMADD231PS (DX)(AX*1), Y4, Y5
	VMOVUPS Y5, (DI)(AX*1)
	ADDQ    $32, AX
	JMP     ln3

ln3done:
	VZEROUPPER
	RET
