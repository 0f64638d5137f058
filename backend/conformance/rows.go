package conformance

import (
	"math"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// checkBound checks |got − want| ≤ tol·bound elementwise (bound: the sum of
// the absolute values of the terms of each result).
func checkBound[T num.Float](t testing.TB, what string, got []T, want, bound []float64, tol float64) {
	t.Helper()
	worst := 0.0
	for i := range got {
		e := math.Abs(float64(got[i]) - want[i])
		if e > tol*bound[i]+1e-300 {
			t.Errorf("%s[%d] = %v, want %v (error %.3g > %g·%.3g)", what, i, got[i], want[i], e, tol, bound[i])
			return
		}
		if bound[i] > 0 {
			worst = max(worst, e/bound[i])
		}
	}
	t.Logf("%s: max error / Σ|terms| = %.3g (tolerance %g)", what, worst, tol)
}

// Linear checks Linear (with and without bias, in = 0) and LinearBackward
// (accumulating into non-zero gradients, each output optional) against
// float64 sums, with the Gemm tolerance relative to the sum of the terms'
// absolute values.
func Linear[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	rng := newRNG(3)
	for _, c := range []struct {
		name          string
		rows, in, out int
		bias          bool
		dx, dw, db    bool
	}{
		{"bias", 37, 48, 24, true, true, true, true},
		{"no bias", 5, 16, 65, false, true, false, false},
		{"in=0", 4, 0, 3, true, false, false, true},
		{"rows=300", 300, 8, 16, true, false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := randVec[T](rng, c.rows*c.in, -1, 1)
			w := randVec[T](rng, c.in*c.out, -1, 1)
			var b []T
			if c.bias {
				b = randVec[T](rng, c.out, -1, 1)
			}
			want := make([]float64, c.rows*c.out)
			bound := make([]float64, c.rows*c.out)
			for r := 0; r < c.rows; r++ {
				for j := 0; j < c.out; j++ {
					var s, a float64
					if b != nil {
						s, a = float64(b[j]), math.Abs(float64(b[j]))
					}
					for l := 0; l < c.in; l++ {
						p := float64(x[r*c.in+l]) * float64(w[l*c.out+j])
						s += p
						a += math.Abs(p)
					}
					want[r*c.out+j], bound[r*c.out+j] = s, a
				}
			}
			dx, dw := put(t, k, x), put(t, k, w)
			defer k.Free(dx)
			defer k.Free(dw)
			var db backend.Tensor[T]
			if b != nil {
				db = put(t, k, b)
				defer k.Free(db)
			}
			y := put(t, k, randVec[T](rng, c.rows*c.out, -1, 1)) // overwritten
			defer k.Free(y)
			must(t, "Linear", k.Linear(y, dx, c.rows, c.in, c.out, dw, db))
			checkBound(t, "y", get(t, k, y), want, bound, tol.Gemm)

			// Backward, from gradients that start at g0 (accumulation).
			dy := randVec[T](rng, c.rows*c.out, -1, 1)
			g0x := randVec[T](rng, c.rows*c.in, -1, 1)
			g0w := randVec[T](rng, c.in*c.out, -1, 1)
			g0b := randVec[T](rng, c.out, -1, 1)
			var gx, gw, gb backend.Tensor[T]
			if c.dx {
				gx = put(t, k, g0x)
				defer k.Free(gx)
			}
			if c.dw {
				gw = put(t, k, g0w)
				defer k.Free(gw)
			}
			if c.db {
				gb = put(t, k, g0b)
				defer k.Free(gb)
			}
			ddy := put(t, k, dy)
			defer k.Free(ddy)
			must(t, "LinearBackward", k.LinearBackward(gx, gw, gb, dx, dw, ddy, c.rows, c.in, c.out))
			if c.dx {
				want, bound := make([]float64, len(g0x)), make([]float64, len(g0x))
				for r := 0; r < c.rows; r++ {
					for l := 0; l < c.in; l++ {
						s, a := float64(g0x[r*c.in+l]), math.Abs(float64(g0x[r*c.in+l]))
						for j := 0; j < c.out; j++ {
							p := float64(dy[r*c.out+j]) * float64(w[l*c.out+j])
							s += p
							a += math.Abs(p)
						}
						want[r*c.in+l], bound[r*c.in+l] = s, a
					}
				}
				checkBound(t, "dx", get(t, k, gx), want, bound, tol.Gemm)
			}
			if c.dw {
				want, bound := make([]float64, len(g0w)), make([]float64, len(g0w))
				for l := 0; l < c.in; l++ {
					for j := 0; j < c.out; j++ {
						s, a := float64(g0w[l*c.out+j]), math.Abs(float64(g0w[l*c.out+j]))
						for r := 0; r < c.rows; r++ {
							p := float64(x[r*c.in+l]) * float64(dy[r*c.out+j])
							s += p
							a += math.Abs(p)
						}
						want[l*c.out+j], bound[l*c.out+j] = s, a
					}
				}
				checkBound(t, "dw", get(t, k, gw), want, bound, tol.Gemm)
			}
			if c.db {
				want, bound := make([]float64, c.out), make([]float64, c.out)
				for j := 0; j < c.out; j++ {
					s, a := float64(g0b[j]), math.Abs(float64(g0b[j]))
					for r := 0; r < c.rows; r++ {
						s += float64(dy[r*c.out+j])
						a += math.Abs(float64(dy[r*c.out+j]))
					}
					want[j], bound[j] = s, a
				}
				checkBound(t, "db", get(t, k, gb), want, bound, tol.Gemm)
			}
		})
	}
}

// LayerNorm checks LayerNorm (saving statistics or not, in place) and
// LayerNormBackward (with saved and recomputed statistics, optional
// outputs) against nn's kernels, with tolerance tol.Rows.
func LayerNorm[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	rng := newRNG(4)
	for _, c := range []struct {
		name    string
		rows, c int
		stats   bool
		inPlace bool
	}{
		{"c=128 with stats", 50, 128, true, false},
		{"c=77 in place", 9, 77, false, true},
		{"c=384", 20, 384, true, false},
		{"c=1", 6, 1, true, false},
		{"rows=0", 0, 8, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := randVec[T](rng, c.rows*c.c, -2, 4)
			scale := randVec[T](rng, c.c, 0.5, 1.5)
			offset := randVec[T](rng, c.c, -1, 1)
			eps := T(nn.LayerNormEps)
			y, mean, rstd := make([]T, len(x)), make([]T, c.rows), make([]T, c.rows)
			nn.LayerNorm(y, x, c.rows, c.c, scale, offset, eps, mean, rstd)

			dx, ds, do := put(t, k, x), put(t, k, scale), put(t, k, offset)
			defer k.Free(dx)
			defer k.Free(ds)
			defer k.Free(do)
			dy := dx
			if !c.inPlace {
				dy = put(t, k, make([]T, len(x)))
				defer k.Free(dy)
			}
			var dm, dr backend.Tensor[T]
			if c.stats {
				dm, dr = put(t, k, make([]T, c.rows)), put(t, k, make([]T, c.rows))
				defer k.Free(dm)
				defer k.Free(dr)
			}
			must(t, "LayerNorm", k.LayerNorm(dy, dx, c.rows, c.c, ds, do, eps, dm, dr))
			compare(t, "y", get(t, k, dy), y, tol.Rows)
			if c.stats {
				compare(t, "mean", get(t, k, dm), mean, tol.Rows)
				compare(t, "rstd", get(t, k, dr), rstd, tol.Rows)
			}
			if c.inPlace {
				return
			}

			// Backward from non-zero starting gradients, with the saved
			// statistics (or without, when the case saves none).
			g := randVec[T](rng, len(x), -1, 1)
			gx0, gs0, go0 := randVec[T](rng, len(x), -1, 1), randVec[T](rng, c.c, -1, 1), randVec[T](rng, c.c, -1, 1)
			wx, ws, wo := clone(gx0), clone(gs0), clone(go0)
			var m, r []T
			if c.stats {
				m, r = mean, rstd
			}
			nn.LayerNormBackward(wx, ws, wo, x, scale, m, r, g, c.rows, c.c)
			dg := put(t, k, g)
			defer k.Free(dg)
			gx, gs, gof := put(t, k, gx0), put(t, k, gs0), put(t, k, go0)
			defer k.Free(gx)
			defer k.Free(gs)
			defer k.Free(gof)
			must(t, "LayerNormBackward", k.LayerNormBackward(gx, gs, gof, dx, ds, dm, dr, dg, c.rows, c.c))
			compare(t, "dx", get(t, k, gx), wx, tol.Rows)
			compare(t, "dscale", get(t, k, gs), ws, tol.Rows)
			compare(t, "doffset", get(t, k, gof), wo, tol.Rows)

			// dx alone.
			wx2 := clone(gx0)
			nn.LayerNormBackward(wx2, nil, nil, x, scale, m, r, g, c.rows, c.c)
			must(t, "Upload", k.Upload(gx, gx0))
			must(t, "LayerNormBackward(dx only)", k.LayerNormBackward(gx, nil, nil, dx, ds, dm, dr, dg, c.rows, c.c))
			compare(t, "dx only", get(t, k, gx), wx2, tol.Rows)
		})
	}
}

// Softmax checks Softmax (with −1e9-masked entries, a fully masked row and
// a row of −Inf) and SoftmaxBackward against nn's kernels, with tolerance
// tol.Rows.
func Softmax[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	rng := newRNG(5)
	for _, c := range []struct{ rows, n int }{{40, 64}, {7, 513}, {3, 1}, {33, 31}} {
		x := randVec[T](rng, c.rows*c.n, -8, 8)
		x[0] = -1e9 // a masked entry
		if c.rows > 2 {
			for j := 0; j < c.n; j++ {
				x[c.n+j] = -1e9              // a fully masked row: uniform
				x[2*c.n+j] = T(math.Inf(-1)) // a row of −Inf: uniform
			}
		}
		y := clone(x)
		nn.SoftmaxRows(y, c.rows, c.n)
		d := put(t, k, x)
		must(t, "Softmax", k.Softmax(d, c.rows, c.n))
		compare(t, "softmax", get(t, k, d), y, tol.Rows)

		dy := randVec[T](rng, len(x), -1, 1)
		g0 := randVec[T](rng, len(x), -1, 1)
		want := clone(g0)
		nn.SoftmaxRowsBackward(want, y, dy, c.rows, c.n)
		dd, gy, gx := put(t, k, dy), put(t, k, y), put(t, k, g0)
		must(t, "SoftmaxBackward", k.SoftmaxBackward(gx, gy, dd, c.rows, c.n))
		compare(t, "softmax backward", get(t, k, gx), want, tol.Rows)
		for _, z := range []backend.Tensor[T]{d, dd, gy, gx} {
			k.Free(z)
		}
	}
}

// Elementwise checks Sigmoid, ReLU, Mul, MulAdd, Add, Gate and the
// backward passes against nn's kernels (Gate against nn.Sigmoid then
// nn.Mul), with tolerance tol.Elementwise, on values spanning the
// sigmoid's saturation (|x| up to 40) and including zeros.
func Elementwise[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	rng := newRNG(6)
	const n = 3001
	x := randVec[T](rng, n, -40, 40)
	g := randVec[T](rng, n, -40, 40)
	dy := randVec[T](rng, n, -1, 1)
	g0 := randVec[T](rng, n, -1, 1)
	x[0], x[1] = 0, -0
	dx, dg, ddy := put(t, k, x), put(t, k, g), put(t, k, dy)
	defer k.Free(dx)
	defer k.Free(dg)
	defer k.Free(ddy)
	out := func() backend.Tensor[T] {
		o := put(t, k, g0)
		t.Cleanup(func() { k.Free(o) })
		return o
	}

	y := make([]T, n)
	nn.Sigmoid(y, x)
	o := out()
	must(t, "Sigmoid", k.Sigmoid(o, dx))
	compare(t, "Sigmoid", get(t, k, o), y, tol.Elementwise)
	w := clone(g0)
	nn.SigmoidBackward(w, y, dy)
	dyy, gs := put(t, k, y), out()
	defer k.Free(dyy)
	must(t, "SigmoidBackward", k.SigmoidBackward(gs, dyy, ddy))
	compare(t, "SigmoidBackward", get(t, k, gs), w, tol.Elementwise)

	nn.ReLU(y, x)
	o = out()
	must(t, "ReLU", k.ReLU(o, dx))
	compare(t, "ReLU", get(t, k, o), y, 0)
	w = clone(g0)
	nn.ReLUBackward(w, x, dy)
	o = out()
	must(t, "ReLUBackward", k.ReLUBackward(o, dx, ddy))
	compare(t, "ReLUBackward", get(t, k, o), w, 0)

	nn.Mul(y, x, g)
	o = out()
	must(t, "Mul", k.Mul(o, dx, dg))
	compare(t, "Mul", get(t, k, o), y, 0)
	w = clone(g0)
	nn.MulAdd(w, x, g)
	o = out()
	must(t, "MulAdd", k.MulAdd(o, dx, dg))
	// A backend may fuse the multiply and the add (one rounding, not two).
	compare(t, "MulAdd", get(t, k, o), w, tol.Elementwise)
	w = clone(g0)
	for i := range w {
		w[i] += x[i]
	}
	o = out()
	must(t, "Add", k.Add(o, dx))
	compare(t, "Add", get(t, k, o), w, 0)

	// Gate = Sigmoid then Mul; its gradient = MulAdd then SigmoidBackward.
	s := make([]T, n)
	nn.Sigmoid(s, g)
	nn.Mul(y, s, x)
	o = out()
	must(t, "Gate", k.Gate(o, dg, dx))
	compare(t, "Gate", get(t, k, o), y, tol.Elementwise)
	wx := clone(g0)
	nn.MulAdd(wx, dy, s)
	ds := make([]T, n)
	nn.MulAdd(ds, dy, x)
	wg := clone(g0)
	nn.SigmoidBackward(wg, s, ds)
	ox, og := out(), out()
	must(t, "GateBackward", k.GateBackward(og, ox, dg, dx, ddy))
	compare(t, "GateBackward dx", get(t, k, ox), wx, tol.Elementwise)
	compare(t, "GateBackward dg", get(t, k, og), wg, tol.Elementwise)
	ox = out()
	must(t, "GateBackward(dx only)", k.GateBackward(nil, ox, dg, dx, ddy))
	compare(t, "GateBackward dx only", get(t, k, ox), wx, tol.Elementwise)

	// In place: y = x.
	inplace := put(t, k, x)
	defer k.Free(inplace)
	nn.Sigmoid(y, x)
	must(t, "Sigmoid in place", k.Sigmoid(inplace, inplace))
	compare(t, "Sigmoid in place", get(t, k, inplace), y, tol.Elementwise)
}
