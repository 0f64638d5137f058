// Constants and macros shared by the AVX2 kernels of package simd
// (included by gate_amd64.s and softmax_amd64.s; the <> symbols are local
// to each including file).
//
// exp is Cephes' expf: v clamped to [-87.33654, 88], k = round(v·log2 e),
// r = v − k·ln 2 (ln 2 in two parts), e^r = 1 + r + r²·P(r) with P of
// degree 5, times 2^k built in the exponent bits: under 2 ulp over the
// range.

// Each constant is replicated eight times so that it can be a 256-bit memory
// operand.
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

CONST8(sgnmask, 0x80000000)
CONST8(exphi, 0x42b00000)   // 88: e^v and 2^n stay finite
CONST8(explo, 0xc2aeac50)   // -87.33654: 2^n stays normal; e^v below it is under float32's smallest normal
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

// SIGMOID replaces the eight lanes of X by sigmoid(X). It uses T1, T2, T3
// and needs Y13 = 1.0 in every lane.
#define SIGMOID(X, T1, T2, T3) \
	VXORPS     sgnmask<>(SB), X, X; \
	VMINPS     exphi<>(SB), X, X; \
	VMAXPS     explo<>(SB), X, X; \
	VMULPS     log2e<>(SB), X, T1; \
	VROUNDPS   $0, T1, T1; \
	VFNMADD231PS ln2hi<>(SB), T1, X; \
	VFNMADD231PS ln2lo<>(SB), T1, X; \
	VMOVUPS    p0<>(SB), T2; \
	VFMADD213PS p1<>(SB), X, T2; \
	VFMADD213PS p2<>(SB), X, T2; \
	VFMADD213PS p3<>(SB), X, T2; \
	VFMADD213PS p4<>(SB), X, T2; \
	VFMADD213PS p5<>(SB), X, T2; \
	VMULPS     X, X, T3; \
	VFMADD213PS X, T3, T2; \
	VADDPS     Y13, T2, T2; \
	VCVTPS2DQ  T1, T1; \
	VPADDD     bias127<>(SB), T1, T1; \
	VPSLLD     $23, T1, T1; \
	VMULPS     T1, T2, T2; \
	VADDPS     Y13, T2, T2; \
	VDIVPS     T2, Y13, X

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

// HSUM reduces the eight lanes of Y to their sum in the low lane of X
// (X is Y's lower half); T is a scratch XMM register.
#define HSUM(Y, X, T) \
	VEXTRACTF128 $1, Y, T; \
	VADDPS       T, X, X; \
	VMOVHLPS     X, X, T; \
	VADDPS       T, X, X; \
	VMOVSHDUP    X, T; \
	VADDSS       T, X, X
