package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSoftmaxMasked checks AF2's additive −1e9 masks (refcases §3) in both
// element types: masked entries beside unmasked ones are exactly 0, the rest
// sum to 1, a fully masked row is uniform, and nothing is NaN.
func TestSoftmaxMasked(t *testing.T) {
	const n = 5
	rows := [][]float64{
		{0.3, -1e9, 1.2, -1e9 + 0.7, -0.4}, // partly masked
		{-1e9, -1e9, -1e9, -1e9, -1e9},     // fully masked
		{1e4, -1e4, 3e4, 0, 3e4},           // large logits: no overflow
		{math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)},
		{math.Inf(-1), 0, 0, math.Inf(-1), 0},
	}
	want := [][]float64{
		nil, // computed below
		{0.2, 0.2, 0.2, 0.2, 0.2},
		{0, 0, 0.5, 0, 0.5},
		{0.2, 0.2, 0.2, 0.2, 0.2},
		{0, 1.0 / 3, 1.0 / 3, 0, 1.0 / 3},
	}
	e0, e2, e4 := math.Exp(0.3-1.2), 1.0, math.Exp(-0.4-1.2)
	s := e0 + e2 + e4
	want[0] = []float64{e0 / s, 0, e2 / s, 0, e4 / s}
	var x []float64
	for _, r := range rows {
		x = append(x, r...)
	}
	y64 := clone(x)
	SoftmaxRows(y64, len(rows), n)
	y32 := to32(x)
	SoftmaxRows(y32, len(rows), n)
	for r := range rows {
		for j := range n {
			w := want[r][j]
			// float64: a few roundings of values ≤ 1: 4e-16.
			// float32: exp and the sum are rounded to float32: 4u.
			for _, c := range []struct {
				name string
				got  float64
				tol  float64
			}{{"float64", y64[r*n+j], 4e-16}, {"float32", float64(y32[r*n+j]), 4 * u32}} {
				if math.IsNaN(c.got) || math.Abs(c.got-w) > c.tol {
					t.Errorf("%s row %d: y[%d] = %v, want %v", c.name, r, j, c.got, w)
				}
				if w == 0 && c.got != 0 {
					t.Errorf("%s row %d: masked y[%d] = %v, want exactly 0", c.name, r, j, c.got)
				}
			}
		}
	}
}

var softmaxCases = []struct{ rows, n int }{
	{1, 1},
	{3, 6},
	{2, 9},
}

func TestSoftmaxRowsBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	for _, tc := range softmaxCases {
		t.Run(fmt.Sprintf("%dx%d", tc.rows, tc.n), func(t *testing.T) {
			rows, n := tc.rows, tc.n
			x := randVec(rng, rows*n, -3, 3)
			if n > 2 {
				x[1] = -1e9 // a masked entry: its gradient is 0
			}
			cot := randVec(rng, rows*n, -1, 1)
			y := make([]float64, rows*n)
			loss := func() float64 {
				copy(y, x)
				SoftmaxRows(y, rows, n)
				return dotLoss(cot, y)
			}
			loss()
			dx0 := randVec(rng, rows*n, -1, 1)
			dx := clone(dx0)
			SoftmaxRowsBackward(dx, y, cot, rows, n)
			checkGrad(t, "dx", x, sub(dx, dx0), loss)
			SoftmaxRowsBackward(nil, y, cot, rows, n) // nothing wanted: no-op
		})
	}
}

// TestSoftmaxFloat32 checks float32 against float64 on identical logits.
// x_j − max is rounded (relative error u, so exp(x_j − max) gains
// u·|x_j − max|), exp and each of the n−1 additions add u, and the final
// scaling u: |Δy_j| ≤ (n + 2 + |x_j − max|)·u·y_j, doubled for safety.
func TestSoftmaxFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 2))
	const rows, n = 20, 100
	x := randVec(rng, rows*n, -8, 8)
	y64 := clone(x)
	SoftmaxRows(y64, rows, n)
	y32 := to32(x)
	SoftmaxRows(y32, rows, n)
	worst := 0.0
	for r := range rows {
		mx := math.Inf(-1)
		for j := range n {
			mx = max(mx, x[r*n+j])
		}
		for j := range n {
			i := r*n + j
			bound := 2 * (n + 2 + math.Abs(x[i]-mx)) * u32 * y64[i]
			e := math.Abs(float64(y32[i]) - y64[i])
			worst = max(worst, e/bound)
			if e > bound {
				t.Errorf("y[%d]: float32 %v, float64 %v, bound %g", i, y32[i], y64[i], bound)
			}
		}
	}
	t.Logf("max error / bound = %.3f", worst)
}

// TestSoftmaxMaskedLogits checks a fully masked row whose logits are
// −1e9 + x (AF2 adds the mask bias to the logits): in float32 the −1e9
// swallows x (its ulp is 64) and the row is uniform; float64 keeps about
// 1e-7 of x's resolution (refcases §3), so the row is softmax(x).
func TestSoftmaxMaskedLogits(t *testing.T) {
	x := []float64{0.5, -1, 2, 0.25}
	masked := make([]float64, len(x))
	for i, v := range x {
		masked[i] = -1e9 + v
	}
	y32 := to32(masked)
	SoftmaxRows(y32, 1, len(x))
	for j, v := range y32 {
		if v != 0.25 {
			t.Errorf("float32: y[%d] = %v, want 0.25", j, v)
		}
	}
	y64, want := clone(masked), clone(x)
	SoftmaxRows(y64, 1, len(x))
	SoftmaxRows(want, 1, len(x))
	for j := range y64 {
		// x is resolved to ulp(1e9) = 1.2e-7 in float64: y is off by ≲ 2.4e-7·y.
		if math.Abs(y64[j]-want[j]) > 2.4e-7*want[j] {
			t.Errorf("float64: y[%d] = %v, want %v", j, y64[j], want[j])
		}
	}
}

// TestSoftmaxParallel checks that a size split across goroutines gives
// exactly the per-row results.
func TestSoftmaxParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const rows, n = 1031, 256
	if workers(rows, n) < 2 {
		t.Fatalf("rows·n = %d does not split", rows*n)
	}
	x := randVec(rng, rows*n, -5, 5)
	dy := randVec(rng, rows*n, -1, 1)
	y := clone(x)
	SoftmaxRows(y, rows, n)
	dx := make([]float64, rows*n)
	SoftmaxRowsBackward(dx, y, dy, rows, n)
	for r := range rows {
		yr := clone(x[r*n : (r+1)*n])
		SoftmaxRows(yr, 1, n)
		dxr := make([]float64, n)
		SoftmaxRowsBackward(dxr, yr, dy[r*n:(r+1)*n], 1, n)
		for j := range n {
			if yr[j] != y[r*n+j] || dxr[j] != dx[r*n+j] {
				t.Fatalf("row %d, %d: parallel and serial differ", r, j)
			}
		}
	}
}
