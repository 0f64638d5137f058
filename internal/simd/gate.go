package simd

// The gate, layer-norm and sum kernels of the triangle modules. Each does
// the first len(dst)&^7 elements and returns how many it did (0 when the
// kernels are not Available); the caller does the rest with its Go loop.
// The other slices must be at least that long.

// GateMask sets dst[i] = m[i]·(x[i] + bx)·sigmoid(y[i] + by).
func GateMask(dst, x, y, m []float32, bx, by float32) int {
	n := len(dst) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_, _, _ = x[n-1], y[n-1], m[n-1]
	gateMaskAVX2(&dst[0], &x[0], &y[0], &m[0], n, bx, by)
	return n
}

// GateVec sets dst[i] = (x[i] + bx[i])·sigmoid(y[i] + by[i]).
func GateVec(dst, x, y, bx, by []float32) int {
	n := len(dst) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_, _, _, _ = x[n-1], y[n-1], bx[n-1], by[n-1]
	gateVecAVX2(&dst[0], &x[0], &y[0], &bx[0], &by[0], n)
	return n
}

// SigmoidVec sets dst[i] = sigmoid(x[i] + b[i]).
func SigmoidVec(dst, x, b []float32) int {
	n := len(dst) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_, _ = x[n-1], b[n-1]
	sigmoidVecAVX2(&dst[0], &x[0], &b[0], n)
	return n
}

// SigmoidScalar sets dst[i] = sigmoid(x[i] + b).
func SigmoidScalar(dst, x []float32, b float32) int {
	n := len(dst) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_ = x[n-1]
	sigmoidScalarAVX2(&dst[0], &x[0], n, b)
	return n
}

// Moments adds d = x[i] − k[i] to s1[i] and d² to s2[i] (over len(s1)).
func Moments(s1, s2, x, k []float32) int {
	n := len(s1) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_, _, _ = s2[n-1], x[n-1], k[n-1]
	momentsAVX2(&s1[0], &s2[0], &x[0], &k[0], n)
	return n
}

// NormAffine sets dst[i] = (x[i] − m[i])·r[i]·s + o.
func NormAffine(dst, x, m, r []float32, s, o float32) int {
	n := len(dst) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_, _, _ = x[n-1], m[n-1], r[n-1]
	normAffineAVX2(&dst[0], &x[0], &m[0], &r[0], n, s, o)
	return n
}

// Add sets dst[i] += x[i].
func Add(dst, x []float32) int {
	n := len(dst) &^ 7
	if !Available || n == 0 {
		return 0
	}
	_ = x[n-1]
	addAVX2(&dst[0], &x[0], n)
	return n
}

// LayerNormRow normalises one row x of c channels into dst (the forward
// pass of nn.LayerNorm: mean, then the biased variance of x − mean,
// rstd = 1/√(var + eps), dst = (x − mean)·rstd·scale + offset) and returns
// its mean and rstd. c must be a positive multiple of 8 and every slice at
// least c long; it reports ok = false, doing nothing, otherwise or when the
// kernels are not Available.
func LayerNormRow(dst, x, scale, offset []float32, eps float32) (mean, rstd float32, ok bool) {
	c := len(x)
	if !Available || c == 0 || c%8 != 0 {
		return 0, 0, false
	}
	_, _, _ = dst[c-1], scale[c-1], offset[c-1]
	mean, rstd = layerNormRowAVX2(&dst[0], &x[0], &scale[0], &offset[0], c, eps)
	return mean, rstd, true
}
