package nn

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// u32 is the unit round-off of float32, 2⁻²⁴.
const u32 = 1.0 / (1 << 24)

// randVec returns n values uniform on [lo, hi), rounded to float32 so that
// float32 and float64 runs see identical inputs.
func randVec(rng *rand.Rand, n int, lo, hi float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(lo + (hi-lo)*rng.Float64()))
	}
	return x
}

func to32(x []float64) []float32 {
	if x == nil {
		return nil
	}
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func clone(x []float64) []float64 {
	if x == nil {
		return nil
	}
	return append([]float64(nil), x...)
}

func sub(a, b []float64) []float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

// dotLoss returns Σ cot_i·y_i.
func dotLoss(cot, y []float64) float64 {
	var s float64
	for i := range y {
		s += cot[i] * y[i]
	}
	return s
}

// fdStep is the central-difference step. With |f”'| = O(1) the truncation
// error is h²/6 ≈ 2e-11, and the cancellation error is about
// ε·|L|/h ≈ 1e-16·10/1e-5 = 1e-10, so derivatives of order 1 are found to
// about 1e-10.
const fdStep = 1e-5

// fdTol is the gradient-check tolerance, |analytic − numeric| ≤ fdTol·(1 + |numeric|):
// about 1000× the ~1e-10 error of the central difference (fdStep), and far
// below the O(0.1–1) error a wrong formula gives.
const fdTol = 1e-7

// checkGrad compares grad, the analytic gradient of loss with respect to x,
// with central differences of loss, perturbing x in place.
func checkGrad(t *testing.T, what string, x, grad []float64, loss func() float64) {
	t.Helper()
	if len(grad) != len(x) {
		t.Fatalf("%s: gradient has %d elements, want %d", what, len(grad), len(x))
	}
	worst := 0.0
	for i := range x {
		x0 := x[i]
		x[i] = x0 + fdStep
		lp := loss()
		x[i] = x0 - fdStep
		lm := loss()
		x[i] = x0
		fd := (lp - lm) / (2 * fdStep)
		e := math.Abs(grad[i]-fd) / (1 + math.Abs(fd))
		worst = max(worst, e)
		if e > fdTol {
			t.Errorf("%s[%d]: analytic %.12g, finite difference %.12g", what, i, grad[i], fd)
		}
	}
	t.Logf("%s: max scaled error %.2g (tolerance %g)", what, worst, fdTol)
}

// expectShapePanic checks that f panics with an error wrapping num.ErrShape.
func expectShapePanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic", name)
			return
		}
		err, ok := r.(error)
		if !ok || !errors.Is(err, num.ErrShape) {
			t.Errorf("%s: panic %v, want an error wrapping num.ErrShape", name, r)
		}
	}()
	f()
}
