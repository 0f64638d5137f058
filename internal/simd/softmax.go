package simd

// ExpShiftSum replaces the first n8 = len(x)&^7 elements of x by
// e^(x − shift) and returns their sum; the caller handles the last
// len(x) − n8 elements. The exponential is Cephes' expf (under 2 ulp),
// with arguments below −87.33654 giving 0. Call it only when Available.
func ExpShiftSum(x []float32, shift float32) float32 {
	n := len(x) &^ 7
	if n == 0 {
		return 0
	}
	return expShiftSum(&x[0], n, shift)
}

// ExpShiftScale replaces the first len(x)&^7 elements of x by
// e^(x − shift)·scale, with ExpShiftSum's exponential. Call it only when
// Available.
func ExpShiftScale(x []float32, shift, scale float32) {
	if n := len(x) &^ 7; n > 0 {
		expShiftScale(&x[0], n, shift, scale)
	}
}

// Max returns the largest of m and the first len(x)&^7 elements of x, for
// finite values (a NaN's effect is unspecified). Call it only when
// Available.
func Max(x []float32, m float32) float32 {
	if n := len(x) &^ 7; n > 0 {
		return maxOf(&x[0], n, m)
	}
	return m
}
