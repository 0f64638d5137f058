package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLayerNormHand checks LayerNorm against values worked out by hand.
// Row [1 2 3 4]: μ = 2.5, σ² = (2.25+0.25+0.25+2.25)/4 = 1.25,
// rstd = 1/√(1.25 + 1e-5) = 0.894423613312618; y_j = scale_j·(x_j − μ)·rstd + offset_j.
// Row [3 3 3 3] (constant): x − μ = 0 exactly, so y = offset and rstd = 1/√1e-5.
func TestLayerNormHand(t *testing.T) {
	x := []float64{1, 2, 3, 4, 3, 3, 3, 3}
	scale := []float64{1, 2, 0.5, -1}
	offset := []float64{0, 0.1, 0, -1}
	want := []float64{
		-1.3416354199689269, -0.794423613312618, 0.2236059033281545, -2.341635419968927,
		0, 0.1, 0, -1,
	}
	wantMean := []float64{2.5, 3}
	wantRstd := []float64{0.894423613312618, 316.22776601683796}
	for _, inPlace := range []bool{false, true} {
		xs := clone(x)
		y := make([]float64, len(x))
		if inPlace {
			y = xs
		}
		mean, rstd := make([]float64, 2), make([]float64, 2)
		LayerNorm(y, xs, 2, 4, scale, offset, LayerNormEps, mean, rstd)
		// Each value is a handful of float64 operations on O(1) numbers: 4e-16 is ~2 ulp.
		for i := range want {
			if math.Abs(y[i]-want[i]) > 4e-16*(1+math.Abs(want[i])) {
				t.Errorf("in place %v: y[%d] = %.17g, want %.17g", inPlace, i, y[i], want[i])
			}
		}
		for r := range 2 {
			if mean[r] != wantMean[r] || math.Abs(rstd[r]-wantRstd[r]) > 4e-16*wantRstd[r] {
				t.Errorf("in place %v: row %d: mean, rstd = %v, %.17g, want %v, %.17g", inPlace, r, mean[r], rstd[r], wantMean[r], wantRstd[r])
			}
		}
	}
	// float32 on the same rows: rstd·(x−μ) is then good to a few float32 ulp.
	y32 := make([]float32, len(x))
	LayerNorm(y32, to32(x), 2, 4, to32(scale), to32(offset), LayerNormEps, nil, nil)
	for i := range want {
		if math.Abs(float64(y32[i])-want[i]) > 4*u32*(1+math.Abs(want[i])) {
			t.Errorf("float32: y[%d] = %v, want %v", i, y32[i], want[i])
		}
	}
}

// TestLayerNormShiftedRow checks the two-pass variance on a row with a large
// common offset, where the one-pass Σx² − (Σx)²/c loses every digit in float32.
func TestLayerNormShiftedRow(t *testing.T) {
	const c = 64
	rng := rand.New(rand.NewPCG(2, 1))
	base := randVec(rng, c, -1, 1)
	shifted := make([]float32, c)
	for i, v := range base {
		shifted[i] = float32(1000 + v)
	}
	x64 := to64(shifted) // the float32 values exactly
	ones, zeros := make([]float64, c), make([]float64, c)
	for i := range ones {
		ones[i] = 1
	}
	y64 := make([]float64, c)
	LayerNorm(y64, x64, 1, c, ones, zeros, LayerNormEps, nil, nil)
	y32 := make([]float32, c)
	LayerNorm(y32, shifted, 1, c, to32(ones), to32(zeros), LayerNormEps, nil, nil)
	// With the mean 1000 subtracted first, the float32 deviations x−μ are exact
	// to the rounding of μ (≈ c/4·u·1000 ≈ 1e-3 at worst, 1e-4 typically), so y
	// (σ ≈ 0.58) is good to ~2e-3; one-pass would give garbage (σ² off by ~1000²·u·c).
	for i := range y64 {
		if e := math.Abs(float64(y32[i]) - y64[i]); e > 5e-3 {
			t.Errorf("y[%d]: float32 %v, float64 %v", i, y32[i], y64[i])
		}
	}
}

var layerNormCases = []struct{ rows, c int }{
	{1, 1},
	{3, 7}, // c not a multiple of the 4-way unrolling
	{2, 16},
	{4, 5},
}

func TestLayerNormBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, tc := range layerNormCases {
		t.Run(fmt.Sprintf("%dx%d", tc.rows, tc.c), func(t *testing.T) {
			rows, c := tc.rows, tc.c
			x := randVec(rng, rows*c, -2, 2)
			scale := randVec(rng, c, 0.5, 1.5)
			offset := randVec(rng, c, -0.5, 0.5)
			cot := randVec(rng, rows*c, -1, 1)
			y := make([]float64, rows*c)
			loss := func() float64 {
				LayerNorm(y, x, rows, c, scale, offset, LayerNormEps, nil, nil)
				return dotLoss(cot, y)
			}
			mean, rstd := make([]float64, rows), make([]float64, rows)
			LayerNorm(y, x, rows, c, scale, offset, LayerNormEps, mean, rstd)
			dx0, ds0, do0 := randVec(rng, rows*c, -1, 1), randVec(rng, c, -1, 1), randVec(rng, c, -1, 1)
			dx, ds, do := clone(dx0), clone(ds0), clone(do0)
			LayerNormBackward(dx, ds, do, x, scale, mean, rstd, cot, rows, c)
			checkGrad(t, "dx", x, sub(dx, dx0), loss)
			checkGrad(t, "dscale", scale, sub(ds, ds0), loss)
			checkGrad(t, "doffset", offset, sub(do, do0), loss)

			// Without saved statistics (recomputed with LayerNormEps), and one
			// output at a time, the results are the same to round-off.
			dxa, dsa, doa := clone(dx0), clone(ds0), clone(do0)
			LayerNormBackward(dxa, nil, nil, x, scale, nil, nil, cot, rows, c)
			LayerNormBackward(nil, dsa, nil, x, scale, mean, rstd, cot, rows, c)
			LayerNormBackward(nil, nil, doa, x, scale, mean, nil, cot, rows, c)
			for _, p := range []struct {
				name      string
				got, want []float64
			}{{"dx", dxa, dx}, {"dscale", dsa, ds}, {"doffset", doa, do}} {
				for i := range p.got {
					// Identical formulas on identical statistics: equal to a few ulp.
					if math.Abs(p.got[i]-p.want[i]) > 1e-14*(1+math.Abs(p.want[i])) {
						t.Errorf("%s[%d] alone = %v, with the others %v", p.name, i, p.got[i], p.want[i])
					}
				}
			}
		})
	}
}

// TestLayerNormParallel runs sizes large enough to split across goroutines
// and checks them against one-row calls, which run serially.
func TestLayerNormParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	const rows, c = 2051, 128 // rows·c > parallelMin, odd rows
	if workers(rows, c) < 2 {
		t.Fatalf("rows·c = %d does not split; raise rows", rows*c)
	}
	x := randVec(rng, rows*c, -3, 3)
	scale := randVec(rng, c, 0.5, 1.5)
	offset := randVec(rng, c, -0.5, 0.5)
	dy := randVec(rng, rows*c, -1, 1)
	y := make([]float64, rows*c)
	mean, rstd := make([]float64, rows), make([]float64, rows)
	LayerNorm(y, x, rows, c, scale, offset, LayerNormEps, mean, rstd)
	dx, ds, do := make([]float64, rows*c), make([]float64, c), make([]float64, c)
	LayerNormBackward(dx, ds, do, x, scale, mean, rstd, dy, rows, c)

	y1, dx1, ds1, do1 := make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c)
	ws, wo := make([]float64, c), make([]float64, c)
	for r := range rows {
		xr, dyr := x[r*c:(r+1)*c], dy[r*c:(r+1)*c]
		m, s := make([]float64, 1), make([]float64, 1)
		LayerNorm(y1, xr, 1, c, scale, offset, LayerNormEps, m, s)
		clear(dx1)
		LayerNormBackward(dx1, ds1, do1, xr, scale, m, s, dyr, 1, c)
		// Per-row work is the same code on the same data: bitwise equal.
		if m[0] != mean[r] || s[0] != rstd[r] {
			t.Fatalf("row %d: statistics differ", r)
		}
		for j := range c {
			if y1[j] != y[r*c+j] || dx1[j] != dx[r*c+j] {
				t.Fatalf("row %d: y or dx differs at %d", r, j)
			}
			ws[j] += math.Abs(dyr[j] * (xr[j] - m[0]) * s[0])
			wo[j] += math.Abs(dyr[j])
		}
	}
	// Parameter gradients are summed in another order: float64 round-off over
	// `rows` terms, bounded by rows·ε·Σ|terms| (≈ 5e-13 relative).
	for j := range c {
		if e := math.Abs(ds[j] - ds1[j]); e > float64(rows)*0x1p-52*ws[j] {
			t.Errorf("dscale[%d] = %v, serial %v", j, ds[j], ds1[j])
		}
		if e := math.Abs(do[j] - do1[j]); e > float64(rows)*0x1p-52*wo[j] {
			t.Errorf("doffset[%d] = %v, serial %v", j, do[j], do1[j])
		}
	}
}

// TestLayerNormFloat32 checks float32 against float64 on identical inputs.
// The mean and the sum of squares are c-term sums, each good to about
// (c/4 + 2)·u relative to the sum of magnitudes (four interleaved partial
// sums); x − μ then carries an error ≲ (c/4+2)·u·mean|x|, rstd a relative
// error ≲ (c/4+4)·u, so |Δy_j| ≲ (c/4+4)·u·(|scale_j|·(|x̂_j| + mean|x|/σ) ) + 2u·|y_j|.
// The test uses twice that.
func TestLayerNormFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 4))
	const rows, c = 64, 128
	x := randVec(rng, rows*c, -3, 5) // a non-zero mean
	scale := randVec(rng, c, -1.5, 1.5)
	offset := randVec(rng, c, -0.5, 0.5)
	y64, mean, rstd := make([]float64, rows*c), make([]float64, rows), make([]float64, rows)
	y32 := make([]float32, rows*c)
	LayerNorm(y64, x, rows, c, scale, offset, LayerNormEps, mean, rstd)
	LayerNorm(y32, to32(x), rows, c, to32(scale), to32(offset), LayerNormEps, nil, nil)
	worst := 0.0
	for r := range rows {
		var ma float64
		for j := range c {
			ma += math.Abs(x[r*c+j]) / c
		}
		for j := range c {
			i := r*c + j
			xh := (x[i] - mean[r]) * rstd[r]
			bound := 2 * ((c/4+4)*u32*math.Abs(scale[j])*(math.Abs(xh)+ma*rstd[r]) + 2*u32*math.Abs(y64[i]))
			e := math.Abs(float64(y32[i]) - y64[i])
			worst = max(worst, e/bound)
			if e > bound {
				t.Errorf("y[%d]: float32 %v, float64 %v, bound %g", i, y32[i], y64[i], bound)
			}
		}
	}
	t.Logf("forward: max error / bound = %.3f", worst)

	// Backward: dx is rstd·(g − mean g − x̂·mean(g x̂)), whose sums use two
	// interleaved partial sums; the same reasoning gives a bound of
	// (c/2+8)·u·rstd·(|g_j| + mean|g| + (|x̂_j| + mean|x|·rstd)·mean|g x̂|),
	// the last term carrying the forward statistics' error; the test uses
	// three times it.
	dy := randVec(rng, rows*c, -1, 1)
	dx64, dx32 := make([]float64, rows*c), make([]float32, rows*c)
	m32, s32 := make([]float32, rows), make([]float32, rows)
	LayerNorm(y32, to32(x), rows, c, to32(scale), to32(offset), LayerNormEps, m32, s32)
	LayerNormBackward(dx64, nil, nil, x, scale, mean, rstd, dy, rows, c)
	LayerNormBackward(dx32, nil, nil, to32(x), to32(scale), m32, s32, to32(dy), rows, c)
	worst = 0
	for r := range rows {
		var mg, mgx, ma float64
		for j := range c {
			i := r*c + j
			g := math.Abs(dy[i] * scale[j])
			mg += g / c
			mgx += g * math.Abs((x[i]-mean[r])*rstd[r]) / c
			ma += math.Abs(x[i]) / c
		}
		for j := range c {
			i := r*c + j
			xh := math.Abs((x[i] - mean[r]) * rstd[r])
			g := math.Abs(dy[i] * scale[j])
			bound := 3 * (c/2 + 8) * u32 * rstd[r] * (g + mg + (xh+ma*rstd[r])*mgx)
			e := math.Abs(float64(dx32[i]) - dx64[i])
			worst = max(worst, e/bound)
			if e > bound {
				t.Errorf("dx[%d]: float32 %v, float64 %v, bound %g", i, dx32[i], dx64[i], bound)
			}
		}
	}
	t.Logf("backward: max error / bound = %.3f", worst)
}

func TestLayerNormParams(t *testing.T) {
	p := NewLayerNorm[float32](3)
	if p.C != 3 || len(p.Scale) != 3 || len(p.Offset) != 3 {
		t.Fatalf("NewLayerNorm(3) = %+v", p)
	}
	for j := range 3 {
		if p.Scale[j] != 1 || p.Offset[j] != 0 {
			t.Fatalf("NewLayerNorm(3) = %+v, want scale 1, offset 0", p)
		}
	}
	x := []float32{1, 2, 6, -1, 0, 1}
	y := make([]float32, 6)
	m, s := make([]float32, 2), make([]float32, 2)
	p.Forward(y, x, 2, m, s)
	dy := []float32{1, 0, -1, 0.5, 0.5, 2}
	g := p.ZerosLike()
	dx := make([]float32, 6)
	p.Backward(dx, &g, x, m, s, dy, 2)
	dx2, ds2, do2 := make([]float32, 6), make([]float32, 3), make([]float32, 3)
	LayerNormBackward(dx2, ds2, do2, x, p.Scale, m, s, dy, 2, 3)
	for i := range dx {
		if dx[i] != dx2[i] {
			t.Errorf("Backward: dx differs from LayerNormBackward at %d", i)
		}
	}
	for j := range 3 {
		if g.Scale[j] != ds2[j] || g.Offset[j] != do2[j] {
			t.Errorf("Backward: parameter gradients differ from LayerNormBackward at %d", j)
		}
	}
	// The second row, [-1 0 1]: σ² = 2/3, y = x/√(2/3 + 1e-5).
	want := float32(1 / math.Sqrt(2.0/3+1e-5))
	if math.Abs(float64(y[5]-want)) > 2*u32*float64(want) { // a few float32 roundings
		t.Errorf("y[5] = %v, want %v", y[5], want)
	}
}
