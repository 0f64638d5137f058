//go:build !purego

package triangle

// The AVX2 kernels of gate_amd64.s. n is a multiple of 8; the pointers
// address at least n elements.

//go:noescape
func gateMaskAVX2(dst, x, y, m *float32, n int, bx, by float32)

//go:noescape
func gateVecAVX2(dst, x, y, bx, by *float32, n int)

//go:noescape
func sigmoidVecAVX2(dst, x, b *float32, n int)

//go:noescape
func sigmoidScalarAVX2(dst, x *float32, n int, b float32)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// hasAVX2 reports whether the processor and the operating system support
// AVX2 and FMA (the kernels of gate_amd64.s). It is read once at start-up
// and never changes.
var hasAVX2 = detectAVX2()

func detectAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	// The OS must save the XMM and YMM state (XCR0 bits 1 and 2).
	if xcr0, _ := xgetbv(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

// vecGateMask32 is gateMask on float32 slices of equal length through the
// AVX2 kernel, leaving the last len%8 elements to the caller. It returns the
// number of elements done.
func vecGateMask32(dst, x, y, m []float32, bx, by float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = x[n-1], y[n-1], m[n-1]
	gateMaskAVX2(&dst[0], &x[0], &y[0], &m[0], n, bx, by)
	return n
}

// vecGateVec32 is gateVec through the AVX2 kernel (see vecGateMask32).
func vecGateVec32(dst, x, y, bx, by []float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _, _ = x[n-1], y[n-1], bx[n-1], by[n-1]
	gateVecAVX2(&dst[0], &x[0], &y[0], &bx[0], &by[0], n)
	return n
}

// vecSigmoidVec32 is sigmoidVec through the AVX2 kernel (see vecGateMask32).
func vecSigmoidVec32(dst, x, b []float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = x[n-1], b[n-1]
	sigmoidVecAVX2(&dst[0], &x[0], &b[0], n)
	return n
}

// vecSigmoidScalar32 is sigmoidScalar through the AVX2 kernel (see
// vecGateMask32).
func vecSigmoidScalar32(dst, x []float32, b float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = x[n-1]
	sigmoidScalarAVX2(&dst[0], &x[0], n, b)
	return n
}

//go:noescape
func momentsAVX2(s1, s2, x, k *float32, n int)

//go:noescape
func normAffineAVX2(dst, x, m, r *float32, n int, s, o float32)

// vecMoments32 is moments through the AVX2 kernel (see vecGateMask32).
func vecMoments32(s1, s2, x, k []float32) int {
	n := len(s1) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = s2[n-1], x[n-1], k[n-1]
	momentsAVX2(&s1[0], &s2[0], &x[0], &k[0], n)
	return n
}

// vecNormAffine32 is normAffine through the AVX2 kernel (see
// vecGateMask32).
func vecNormAffine32(dst, x, m, r []float32, s, o float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = x[n-1], m[n-1], r[n-1]
	normAffineAVX2(&dst[0], &x[0], &m[0], &r[0], n, s, o)
	return n
}

//go:noescape
func addAVX2(dst, x *float32, n int)

// vecAdd32 is add through the AVX2 kernel (see vecGateMask32).
func vecAdd32(dst, x []float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = x[n-1]
	addAVX2(&dst[0], &x[0], n)
	return n
}

//go:noescape
func layerNormRowAVX2(dst, x, scale, offset *float32, n int, eps float32) (mean, rstd float32)

// vecLayerNorm32 is a layer norm of rows rows of c channels (the forward
// pass of nn.LayerNorm, same two-pass statistics) through the AVX2 row
// kernel, split across goroutines. It reports false, doing nothing, when
// the kernel cannot run (no AVX2, or c not a multiple of 8).
func vecLayerNorm32(y, x []float32, rows, c int, scale, offset []float32, eps float32, mean, rstd []float32) bool {
	if !hasAVX2 || c%8 != 0 || c == 0 {
		return false
	}
	if rows == 0 {
		return true
	}
	_, _ = x[rows*c-1], y[rows*c-1]
	_, _ = scale[c-1], offset[c-1]
	_, _ = mean[rows-1], rstd[rows-1]
	parallelFor(rows, rows*c, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			mean[r], rstd[r] = layerNormRowAVX2(&y[r*c], &x[r*c], &scale[0], &offset[0], c, eps)
		}
	})
	return true
}
