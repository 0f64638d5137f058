package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestActivationValues(t *testing.T) {
	nan := math.NaN()
	x := []float64{-1000, -30, -1, 0, 1, 30, 1000, nan}
	// 1/(1+e^−x) to 17 digits (40-digit decimal arithmetic).
	wantSig := []float64{0, 9.357622968839299e-14, 0.2689414213699951, 0.5, 0.7310585786300049, 0.9999999999999065, 1, nan}
	wantRelu := []float64{0, 0, 0, 0, 1, 30, 1000, nan}
	same := func(a, b float64, tol float64) bool {
		if math.IsNaN(b) {
			return math.IsNaN(a)
		}
		return math.Abs(a-b) <= tol*math.Abs(b)
	}
	y := make([]float64, len(x))
	Sigmoid(y, x)
	y32 := make([]float32, len(x))
	Sigmoid(y32, to32(x))
	for i := range x {
		// float64: math.Exp is within 1 ulp, then two more roundings: 4e-16 relative.
		// float32: computed in float64 and rounded once: u relative (2u for safety).
		if !same(y[i], wantSig[i], 4e-16) || !same(float64(y32[i]), wantSig[i], 2*u32) {
			t.Errorf("Sigmoid(%v) = %v (float32 %v), want %v", x[i], y[i], y32[i], wantSig[i])
		}
	}
	ReLU(y, x)
	for i := range x {
		if !same(y[i], wantRelu[i], 0) || math.Signbit(y[i]) {
			t.Errorf("ReLU(%v) = %v, want %v", x[i], y[i], wantRelu[i])
		}
	}
	// In place.
	z := clone(x)
	Sigmoid(z, z)
	for i := range x {
		if !same(z[i], wantSig[i], 4e-16) {
			t.Errorf("Sigmoid in place (%v) = %v, want %v", x[i], z[i], wantSig[i])
		}
	}
	a, b := []float64{1, -2, 3}, []float64{0.5, 4, -1}
	Mul(a, a, b)
	if a[0] != 0.5 || a[1] != -8 || a[2] != -3 {
		t.Errorf("Mul in place = %v, want [0.5 -8 -3]", a)
	}
	MulAdd(a, b, b)
	if a[0] != 0.75 || a[1] != 8 || a[2] != -2 {
		t.Errorf("MulAdd = %v, want [0.75 8 -2]", a)
	}
}

func TestActivationBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 1))
	const n = 23
	x := randVec(rng, n, -4, 4)
	for i := range x {
		if math.Abs(x[i]) < 0.01 { // keep ReLU's kink farther than fdStep from any x
			x[i] = 0.5
		}
	}
	cot := randVec(rng, n, -1, 1)
	y := make([]float64, n)

	for _, tc := range []struct {
		name     string
		forward  func(y, x []float64)
		backward func(dx, x, y, dy []float64)
	}{
		{"Sigmoid", Sigmoid[float64], func(dx, x, y, dy []float64) { SigmoidBackward(dx, y, dy) }},
		{"ReLU", ReLU[float64], func(dx, x, y, dy []float64) { ReLUBackward(dx, x, dy) }},
	} {
		loss := func() float64 {
			tc.forward(y, x)
			return dotLoss(cot, y)
		}
		loss()
		dx0 := randVec(rng, n, -1, 1)
		dx := clone(dx0)
		tc.backward(dx, x, y, cot)
		checkGrad(t, tc.name, x, sub(dx, dx0), loss)
		tc.backward(nil, x, y, cot) // nothing wanted: no-op
	}

	// Mul's gradients through MulAdd: da += dy ⊙ b, db += dy ⊙ a.
	a, b := randVec(rng, n, -2, 2), randVec(rng, n, -2, 2)
	loss := func() float64 {
		Mul(y, a, b)
		return dotLoss(cot, y)
	}
	da, db := make([]float64, n), make([]float64, n)
	MulAdd(da, cot, b)
	MulAdd(db, cot, a)
	checkGrad(t, "Mul a", a, da, loss)
	checkGrad(t, "Mul b", b, db, loss)
}

// TestElementwiseParallel checks sizes split across goroutines against a
// plain loop: each element is computed by the same expression, so the
// results are bitwise equal.
func TestElementwiseParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	const n = parallelMin + 12345
	x := to32(randVec(rng, n, -10, 10))
	dy := to32(randVec(rng, n, -1, 1))
	y, dx := make([]float32, n), make([]float32, n)
	Sigmoid(y, x)
	SigmoidBackward(dx, y, dy)
	for i := range x {
		s := float32(1 / (1 + math.Exp(-float64(x[i]))))
		if y[i] != s || dx[i] != dy[i]*(s*(1-s)) {
			t.Fatalf("Sigmoid at %d: %v, %v, want %v, %v", i, y[i], dx[i], s, dy[i]*(s*(1-s)))
		}
	}
	ReLU(y, x)
	clear(dx)
	ReLUBackward(dx, x, dy)
	for i := range x {
		if y[i] != max(x[i], 0) || (x[i] > 0 && dx[i] != dy[i]) || (x[i] <= 0 && dx[i] != 0) {
			t.Fatalf("ReLU at %d: %v, %v", i, y[i], dx[i])
		}
	}
	Mul(y, x, dy)
	copy(dx, y)
	MulAdd(dx, x, dy)
	for i := range x {
		if y[i] != x[i]*dy[i] || dx[i] != 2*x[i]*dy[i] {
			t.Fatalf("Mul at %d: %v, %v", i, y[i], dx[i])
		}
	}
}
