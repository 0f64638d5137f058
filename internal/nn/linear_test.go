package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// linearRef is y = x·w + b computed with plain loops in float64.
func linearRef(x []float64, rows, in, out int, w, b []float64) []float64 {
	y := make([]float64, rows*out)
	for r := range rows {
		for j := range out {
			var s float64
			if b != nil {
				s = b[j]
			}
			for k := range in {
				s += x[r*in+k] * w[k*out+j]
			}
			y[r*out+j] = s
		}
	}
	return y
}

type linearCase struct {
	rows, in, out int
	bias          bool
}

var linearCases = []linearCase{
	{3, 4, 5, true},
	{1, 7, 3, false},
	{5, 1, 2, true},
	{2, 3, 1, false},
	{300, 3, 2, true}, // more than blockRows rows: the bias gradient is summed in blocks
}

func TestLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	// in = 0 gives y = b (or 0): an empty product.
	for _, tc := range append(linearCases, linearCase{4, 0, 3, true}, linearCase{4, 0, 3, false}) {
		x := randVec(rng, tc.rows*tc.in, -1, 1)
		w := randVec(rng, tc.in*tc.out, -1, 1)
		var b []float64
		if tc.bias {
			b = randVec(rng, tc.out, -1, 1)
		}
		y := make([]float64, tc.rows*tc.out)
		for i := range y {
			y[i] = math.NaN() // overwritten, also where in = 0 or there is no bias
		}
		Linear(y, x, tc.rows, tc.in, tc.out, w, b)
		want := linearRef(x, tc.rows, tc.in, tc.out, w, b)
		for i := range y {
			// float64 round-off over in+1 terms of size ≤ 1: 1e-14 is ~50 ulp.
			if math.Abs(y[i]-want[i]) > 1e-14 {
				t.Errorf("%+v: y[%d] = %v, want %v", tc, i, y[i], want[i])
			}
		}
	}
}

func TestLinearBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range linearCases {
		t.Run(fmt.Sprintf("%dx%dx%d_bias=%v", tc.rows, tc.in, tc.out, tc.bias), func(t *testing.T) {
			rows, in, out := tc.rows, tc.in, tc.out
			x := randVec(rng, rows*in, -1, 1)
			w := randVec(rng, in*out, -1, 1)
			var b []float64
			if tc.bias {
				b = randVec(rng, out, -1, 1)
			}
			cot := randVec(rng, rows*out, -1, 1)
			y := make([]float64, rows*out)
			loss := func() float64 {
				Linear(y, x, rows, in, out, w, b)
				return dotLoss(cot, y)
			}
			// Start from non-zero gradients to check that Backward accumulates.
			dx0, dw0, db0 := randVec(rng, rows*in, -1, 1), randVec(rng, in*out, -1, 1), randVec(rng, out, -1, 1)
			dx, dw, db := clone(dx0), clone(dw0), clone(db0)
			LinearBackward(dx, dw, db, x, w, cot, rows, in, out)
			checkGrad(t, "dx", x, sub(dx, dx0), loss)
			checkGrad(t, "dw", w, sub(dw, dw0), loss)
			if tc.bias {
				checkGrad(t, "db", b, sub(db, db0), loss)
			}

			// Each output alone (the others nil) gives the same values.
			dxa, dwa, dba := clone(dx0), clone(dw0), clone(db0)
			LinearBackward(dxa, nil, nil, x, w, cot, rows, in, out)
			LinearBackward(nil, dwa, nil, x, w, cot, rows, in, out)
			LinearBackward(nil, nil, dba, x, w, cot, rows, in, out)
			for _, p := range []struct {
				name      string
				got, want []float64
			}{{"dx", dxa, dx}, {"dw", dwa, dw}, {"db", dba, db}} {
				for i := range p.got {
					if p.got[i] != p.want[i] {
						t.Errorf("%s[%d] alone = %v, with the others %v", p.name, i, p.got[i], p.want[i])
						break
					}
				}
			}
		})
	}
}

// TestLinearFloat32 checks float32 against float64 on identical inputs with
// the standard bound for a dot product of n terms, |error| ≤ γ·Σ_k|x_k w_kj|
// with γ = (n+2)·u (Higham, Accuracy and Stability, §3.1, plus one rounding
// each for the bias and the conversion); it holds for any summation order.
func TestLinearFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 3))
	const rows, in, out = 37, 64, 19
	x := randVec(rng, rows*in, -2, 2)
	w := randVec(rng, in*out, -1, 1)
	b := randVec(rng, out, -1, 1)
	y64 := make([]float64, rows*out)
	y32 := make([]float32, rows*out)
	Linear(y64, x, rows, in, out, w, b)
	Linear(y32, to32(x), rows, in, out, to32(w), to32(b))
	absX, absW := make([]float64, len(x)), make([]float64, len(w))
	for i := range x {
		absX[i] = math.Abs(x[i])
	}
	for i := range w {
		absW[i] = math.Abs(w[i])
	}
	mag := linearRef(absX, rows, in, out, absW, nil)
	worst := 0.0
	for i := range y64 {
		bound := float64(in+2)*u32*mag[i] + u32*math.Abs(b[i%out])
		e := math.Abs(float64(y32[i]) - y64[i])
		worst = max(worst, e/bound)
		if e > bound {
			t.Errorf("y[%d]: float32 %v, float64 %v, bound %g", i, y32[i], y64[i], bound)
		}
	}
	t.Logf("max error / bound = %.3f", worst)

	// Backward: the same bound for each product, and (blockRows + rows/blockRows + 2)·u·Σ|dy|
	// for the blocked bias gradient.
	const brows = 1000
	xb := randVec(rng, brows*in, -2, 2)
	dy := randVec(rng, brows*out, -1, 1)
	dw64, db64 := make([]float64, in*out), make([]float64, out)
	dw32, db32 := make([]float32, in*out), make([]float32, out)
	LinearBackward(nil, dw64, db64, xb, w, dy, brows, in, out)
	LinearBackward(nil, dw32, db32, to32(xb), to32(w), to32(dy), brows, in, out)
	for j := range out {
		var sa float64
		for r := range brows {
			sa += math.Abs(dy[r*out+j])
		}
		bound := float64(blockRows+brows/blockRows+2) * u32 * sa
		if e := math.Abs(float64(db32[j]) - db64[j]); e > bound {
			t.Errorf("db[%d]: float32 %v, float64 %v, bound %g", j, db32[j], db64[j], bound)
		}
	}
	for k := range in {
		for j := range out {
			var sa float64
			for r := range brows {
				sa += math.Abs(xb[r*in+k] * dy[r*out+j])
			}
			bound := float64(brows+2) * u32 * sa
			if e := math.Abs(float64(dw32[k*out+j]) - dw64[k*out+j]); e > bound {
				t.Errorf("dw[%d,%d]: float32 %v, float64 %v, bound %g", k, j, dw32[k*out+j], dw64[k*out+j], bound)
			}
		}
	}
}

func TestLinearParams(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 4))
	p := NewLinear[float64](rng, 3, 2, InitLinear, true)
	p.B[0], p.B[1] = 0.5, -0.25
	x := []float64{1, 2, 3, -1, 0, 1}
	y := make([]float64, 4)
	p.Forward(y, x, 2)
	want := linearRef(x, 2, 3, 2, p.W, p.B)
	for i := range y {
		if math.Abs(y[i]-want[i]) > 1e-15 { // 4-term float64 sums of O(1) values
			t.Errorf("Forward: y[%d] = %v, want %v", i, y[i], want[i])
		}
	}
	dy := []float64{1, -1, 0.5, 2}
	g := p.ZerosLike()
	dx := make([]float64, 6)
	p.Backward(dx, &g, x, dy, 2)
	dx2, dw2, db2 := make([]float64, 6), make([]float64, 6), make([]float64, 2)
	LinearBackward(dx2, dw2, db2, x, p.W, dy, 2, 3, 2)
	for i := range dx {
		if dx[i] != dx2[i] || g.W[i] != dw2[i] {
			t.Errorf("Backward differs from LinearBackward at %d", i)
		}
	}
	if g.B[0] != db2[0] || g.B[1] != db2[1] {
		t.Errorf("Backward: dB = %v, want %v", g.B, db2)
	}
	p.Backward(nil, nil, x, dy, 2) // nothing wanted: must not panic
}
