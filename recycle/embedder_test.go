package recycle

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
)

// smallConfig has AF2's bins with small widths.
func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.CM, cfg.CZ = 5, 4
	return cfg
}

// randomParams returns an embedder with non-degenerate random parameters,
// as the reference cases draw them: weights ~ N(0, 1/fan_in), biases ~
// N(0, 0.1²), layer-norm scales ~ 1 + N(0, 0.2²), offsets ~ N(0, 0.1²).
func randomParams[T num.Float](t testing.TB, cfg Config, seed uint64) *Params[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	p, err := NewParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range p.tensors() {
		sd, mean := 0.1, 0.0
		switch {
		case len(ts.shape) == 2:
			sd = 1 / math.Sqrt(float64(ts.shape[0]))
		case ts.name == PrevMSAFirstRowNormName+"//scale" || ts.name == PrevPairNormName+"//scale":
			sd, mean = 0.2, 1
		}
		for i := range *ts.data {
			(*ts.data)[i] = T(mean + sd*rng.NormFloat64())
		}
	}
	return p
}

// randv returns n normal values with standard deviation sd.
func randv(rng *rand.Rand, n int, sd float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = sd * rng.NormFloat64()
	}
	return x
}

// TestDistogram checks AF2's bins at and around their edges: 15 lower edges
// 3.25 + 1.25·k Å (exact binary fractions, so the squared edges are exact),
// strict inequalities on both sides, an open last bin up to d² = 1e8, and no
// bin for d < 3.25 Å, the diagonal included.
func TestDistogram(t *testing.T) {
	cfg := DefaultConfig()
	for _, tc := range []struct {
		d    float64
		want int
	}{
		{0, -1}, {3.2, -1}, {3.25, -1}, {3.26, 0}, {4.49, 0}, {4.5, -1}, {4.51, 1},
		{10.5, 5}, {20.74, 13}, {20.75, -1}, {20.76, 14}, {1000, 14}, {9999, 14}, {10001, -1},
	} {
		for _, dt := range []string{"float64", "float32"} {
			var got int
			if dt == "float64" {
				got = Distogram(cfg, []float64{0, 0, 0, tc.d, 0, 0}, 2)[1]
			} else {
				got = Distogram(cfg, []float32{0, 0, 0, float32(tc.d), 0, 0}, 2)[1]
			}
			if got != tc.want {
				t.Errorf("%s: d = %v Å: bin %d, want %d", dt, tc.d, got, tc.want)
			}
		}
	}
	bins := Distogram(cfg, []float64{1, 2, 3, 4, 6, 8}, 2)
	if bins[0] != -1 || bins[3] != -1 || bins[1] != bins[2] {
		t.Errorf("bins %v: want no bin on the diagonal and a symmetric pair", bins)
	}
	lower, upper := cfg.SquaredEdges()
	if lower[0] != 3.25*3.25 || lower[14] != 20.75*20.75 || upper[13] != lower[14] || upper[14] != 1e8 {
		t.Errorf("squared edges %v, %v", lower, upper)
	}
}

// TestFirstPass checks what the first pass sees: with all-zero previous
// outputs (AF2's start) the updates are the layer-norm offsets (a zero row
// normalises to 0) and, for the pair, the offset plus prev_pos_linear's
// bias, since d = 0 falls in no bin.
func TestFirstPass(t *testing.T) {
	cfg := smallConfig()
	p := randomParams[float64](t, cfg, 3)
	const n = 3
	st := NewState[float64](n, cfg.CM, cfg.CZ)
	msa, pair := make([]float64, n*cfg.CM), make([]float64, n*n*cfg.CZ)
	if err := Forward(p, st.MSAFirstRow, st.Pair, st.PseudoBeta, msa, pair, nil); err != nil {
		t.Fatal(err)
	}
	for i := range msa {
		if want := p.PrevMSAFirstRowNorm.Offset[i%cfg.CM]; msa[i] != want {
			t.Fatalf("msa[%d] = %v, want offset %v", i, msa[i], want)
		}
	}
	for i := range pair {
		c := i % cfg.CZ
		// One rounding: offset + bias, as Forward adds them.
		if want := p.PrevPairNorm.Offset[c] + p.PrevPosLinear.B[c]; math.Abs(pair[i]-want) > 1e-15 {
			t.Fatalf("pair[%d] = %v, want offset + bias = %v", i, pair[i], want)
		}
	}
}

// TestEmbedderGradient checks Backward against central differences in
// float64 with respect to both previous representations and every
// parameter. Positions are kept away from bin edges (the distogram is
// piecewise constant, so its derivative is 0 wherever it is defined).
//
// Step 1e-6: the function is a layer norm plus a constant, with third
// derivatives of order 10, so the truncation error ~h²·10/6 ≈ 2e-12 and the
// cancellation error ~1e-16·10/h = 1e-9 are far below the tolerance
// 1e-6·(1 + |fd|).
func TestEmbedderGradient(t *testing.T) {
	cfg := smallConfig()
	p := randomParams[float64](t, cfg, 5)
	const n = 4
	rng := rand.New(rand.NewPCG(6, 6))
	row := randv(rng, n*cfg.CM, 1)
	pair := randv(rng, n*n*cfg.CZ, 1)
	pb := []float64{0, 0, 0, 3.8, 0, 0, 7.1, 2.2, 0, 12.3, 5.1, 8.7}
	cotRow, cotPair := randv(rng, n*cfg.CM, 1), randv(rng, n*n*cfg.CZ, 1)
	loss := func() float64 {
		mo, po := make([]float64, n*cfg.CM), make([]float64, n*n*cfg.CZ)
		if err := Forward(p, row, pair, pb, mo, po, nil); err != nil {
			t.Fatal(err)
		}
		var l float64
		for i, v := range mo {
			l += v * cotRow[i]
		}
		for i, v := range po {
			l += v * cotPair[i]
		}
		return l
	}
	var c Cache[float64]
	if err := Forward(p, row, pair, pb, make([]float64, n*cfg.CM), make([]float64, n*n*cfg.CZ), &c); err != nil {
		t.Fatal(err)
	}
	dRow, dPair := make([]float64, len(row)), make([]float64, len(pair))
	g := p.ZerosLike()
	if err := Backward(p, &c, cotRow, cotPair, dRow, dPair, g); err != nil {
		t.Fatal(err)
	}
	check := func(what string, x, grad []float64) {
		const h, tol = 1e-6, 1e-6
		for i := range x {
			x0 := x[i]
			x[i] = x0 + h
			lp := loss()
			x[i] = x0 - h
			lm := loss()
			x[i] = x0
			fd := (lp - lm) / (2 * h)
			if math.Abs(grad[i]-fd) > tol*(1+math.Abs(fd)) {
				t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", what, i, grad[i], fd)
			}
		}
	}
	check("prevMSAFirstRow", row, dRow)
	check("prevPair", pair, dPair)
	gt := g.tensors()
	for k, pt := range p.tensors() {
		check(pt.name, *pt.data, *gt[k].data)
	}
	// The positions: every pair is at least 0.3 Å from an edge, so a
	// perturbation of 1e-6 changes nothing.
	l0 := loss()
	for i := range pb {
		pb[i] += 1e-6
		if loss() != l0 {
			t.Errorf("moving prevPseudoBeta[%d] by 1e-6 Å changed the loss", i)
		}
		pb[i] -= 1e-6
	}
}

// TestEmbedderErrors checks the documented errors.
func TestEmbedderErrors(t *testing.T) {
	cfg := smallConfig()
	p := randomParams[float64](t, cfg, 7)
	const n = 2
	row, pair, pb := make([]float64, n*cfg.CM), make([]float64, n*n*cfg.CZ), make([]float64, n*3)
	mo, po := make([]float64, n*cfg.CM), make([]float64, n*n*cfg.CZ)
	nan := append([]float64(nil), pair...)
	nan[1] = math.Inf(1)
	badCfg := cfg
	badCfg.UpperLast = 10
	for _, tc := range []struct {
		name string
		err  error
		got  error
	}{
		{"short row", num.ErrShape, Forward(p, row[1:], pair, pb, mo, po, nil)},
		{"pseudo-β not [N 3]", num.ErrShape, Forward(p, row, pair, pb[:5], mo, po, nil)},
		{"short pair output", num.ErrShape, Forward(p, row, pair, pb, mo, po[1:], nil)},
		{"infinite pair", num.ErrNaN, Forward(p, row, nan, pb, mo, po, nil)},
		{"upper edge below the last bin", ErrConfig, badCfg.Validate()},
		{"backward without forward", ErrConfig, Backward(p, new(Cache[float64]), mo, po, nil, nil, nil)},
	} {
		if !errors.Is(tc.got, tc.err) {
			t.Errorf("%s: error %v, want one wrapping %v", tc.name, tc.got, tc.err)
		}
	}
}
