package triangle

import (
	"math"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/simd"
)

// The fused gate kernels of the triangle updates. Each has a float32 fast
// path (AVX2 assembly on amd64, package simd) and a portable loop that also
// serves float64; the float32 loop uses the same exp approximation as the
// assembly, so both paths give the same values to within a float32 ulp.

// sigmoid returns 1/(1+exp(−x)): through math.Exp for float64, and through
// exp32 (Cephes' expf, the algorithm of the assembly kernels) for float32.
func sigmoid[T num.Float](x T) T {
	if num.Is32[T]() {
		return T(1 / (1 + exp32(-float32(x))))
	}
	return num.Sigmoid(x)
}

// exp32 returns e^x for float32 with a relative error below 2e-7 (Cephes'
// expf): x is clamped to [−87, 88], so the result is finite and normal.
func exp32(x float32) float32 {
	x = min(max(x, -87), 88)
	const log2e = 1.44269504088896341
	// Round x·log2e to the nearest integer with the 1.5·2^23 trick.
	const shift = 12582912.0
	t := x*log2e + shift
	fn := t - shift
	n := int32(math.Float32bits(t)) - 0x4B400000
	r := x - fn*0.693359375 + fn*2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// gateMask sets dst[i] = m[i]·(x[i]+bx)·σ(y[i]+by): the masked, gated
// projection of Algorithms 11 and 12 (lines 2–3) on one channel row.
// All slices have len(dst) elements.
func gateMask[T num.Float](dst, x, y, m []T, bx, by T) {
	i := 0
	if num.Is32[T]() {
		i = simd.GateMask(num.As32(dst), num.As32(x), num.As32(y), num.As32(m), float32(bx), float32(by))
	}
	x, y, m = x[:len(dst)], y[:len(dst)], m[:len(dst)]
	for ; i < len(dst); i++ {
		dst[i] = m[i] * (x[i] + bx) * sigmoid(y[i]+by)
	}
}

// gateVec sets dst[i] = (x[i]+bx[i])·σ(y[i]+by[i]): the output gate of
// Algorithms 11 and 12 (line 4) on one pair row. dst may be x or y.
func gateVec[T num.Float](dst, x, y, bx, by []T) {
	i := 0
	if num.Is32[T]() {
		i = simd.GateVec(num.As32(dst), num.As32(x), num.As32(y), num.As32(bx), num.As32(by))
	}
	x, y, bx, by = x[:len(dst)], y[:len(dst)], bx[:len(dst)], by[:len(dst)]
	for ; i < len(dst); i++ {
		dst[i] = (x[i] + bx[i]) * sigmoid(y[i]+by[i])
	}
}

// sigmoidVec sets dst[i] = σ(x[i]+b[i]). dst may be x.
func sigmoidVec[T num.Float](dst, x, b []T) {
	i := 0
	if num.Is32[T]() {
		i = simd.SigmoidVec(num.As32(dst), num.As32(x), num.As32(b))
	}
	x, b = x[:len(dst)], b[:len(dst)]
	for ; i < len(dst); i++ {
		dst[i] = sigmoid(x[i] + b[i])
	}
}

// sigmoidScalar sets dst[i] = σ(x[i]+b). dst may be x.
func sigmoidScalar[T num.Float](dst, x []T, b T) {
	i := 0
	if num.Is32[T]() {
		i = simd.SigmoidScalar(num.As32(dst), num.As32(x), float32(b))
	}
	x = x[:len(dst)]
	for ; i < len(dst); i++ {
		dst[i] = sigmoid(x[i] + b)
	}
}

// moments adds, with d = x[i] − k[i], d to s1[i] and d² to s2[i]: the
// shifted sums of a layer norm's one-pass statistics. All slices have
// len(s1) elements.
func moments[T num.Float](s1, s2, x, k []T) {
	i := 0
	if num.Is32[T]() {
		i = simd.Moments(num.As32(s1), num.As32(s2), num.As32(x), num.As32(k))
	}
	s2, x, k = s2[:len(s1)], x[:len(s1)], k[:len(s1)]
	for ; i < len(s1); i++ {
		d := x[i] - k[i]
		s1[i] += d
		s2[i] += d * d
	}
}

// normAffine sets dst[i] = (x[i] − m[i])·r[i]·s + o: a layer norm's affine
// map on one channel row.
func normAffine[T num.Float](dst, x, m, r []T, s, o T) {
	i := 0
	if num.Is32[T]() {
		i = simd.NormAffine(num.As32(dst), num.As32(x), num.As32(m), num.As32(r), float32(s), float32(o))
	}
	x, m, r = x[:len(dst)], m[:len(dst)], r[:len(dst)]
	for ; i < len(dst); i++ {
		dst[i] = (x[i]-m[i])*r[i]*s + o
	}
}

// add sets dst[i] += x[i].
func add[T num.Float](dst, x []T) {
	i := 0
	if num.Is32[T]() {
		i = simd.Add(num.As32(dst), num.As32(x))
	}
	x = x[:len(dst)]
	for ; i < len(dst); i++ {
		dst[i] += x[i]
	}
}
