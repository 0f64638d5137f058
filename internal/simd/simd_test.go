package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSoftmaxKernels checks ExpShiftSum, ExpShiftScale and Max against
// float64 references on arguments spread over the whole range the softmax
// meets (logit minus row maximum, from 0 down past the flush point, and the
// −1e9 of masked keys). The exponential must be within 2.5e-7 relative
// (Cephes' expf is within 2 ulp = 2.4e-7 of the exact value, 2^-22); the
// sum of n terms within n·2^-24 of its float64 value on top of that; the
// maximum exact. Elements past the last multiple of 8 must be untouched.
func TestSoftmaxKernels(t *testing.T) {
	if !Available {
		t.Skip("no AVX2/FMA on this machine or purego build")
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{0, 7, 8, 9, 64, 131, 1000} {
		x := make([]float32, n)
		for i := range x {
			switch i % 5 {
			case 0:
				x[i] = -float32(rng.Float64() * 100) // reaches past the flush point
			case 1:
				x[i] = -1e9 // a masked key
			default:
				x[i] = -float32(rng.Float64() * 10)
			}
		}
		const shift = -0.75
		n8 := n &^ 7
		y := append([]float32(nil), x...)
		sum := ExpShiftSum(y, shift)
		var want float64
		for i := range x {
			if i >= n8 {
				if y[i] != x[i] {
					t.Fatalf("n=%d: tail element %d written", n, i)
				}
				continue
			}
			v := float64(x[i]) - shift
			e := math.Exp(float64(float32(v)))
			if float32(v) < -87.33654 {
				e = 0
			}
			if err := math.Abs(float64(y[i]) - e); err > 2.5e-7*e {
				t.Fatalf("n=%d: exp(%v) = %v, want %v (relative error %.3g)", n, v, y[i], e, err/e)
			}
			want += e
		}
		if err := math.Abs(float64(sum) - want); err > (2.5e-7+float64(n)*0x1p-24)*want+1e-45 {
			t.Errorf("n=%d: sum %v, want %v", n, sum, want)
		}

		z := append([]float32(nil), x...)
		ExpShiftScale(z, shift, 0.5)
		for i := 0; i < n8; i++ {
			if d := math.Abs(float64(z[i]) - 0.5*float64(y[i])); d > 1e-7*float64(y[i]) {
				t.Fatalf("n=%d: ExpShiftScale[%d] = %v, want %v", n, i, z[i], 0.5*y[i])
			}
		}
		for i := n8; i < n; i++ {
			if z[i] != x[i] {
				t.Fatalf("n=%d: ExpShiftScale wrote tail element %d", n, i)
			}
		}

		m := float32(math.Inf(-1))
		for _, v := range x[:n8] {
			m = max(m, v)
		}
		if got := Max(x, float32(math.Inf(-1))); got != m {
			t.Errorf("n=%d: Max = %v, want %v", n, got, m)
		}
		if got := Max(x, 5); got != 5 {
			t.Errorf("n=%d: Max with a larger start = %v, want 5", n, got)
		}
	}
}
