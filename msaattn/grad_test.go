package msaattn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gradVar is one array the loss depends on, with its analytic gradient.
type gradVar struct {
	name string
	x    []float64 // perturbed in place
	grad []float64
}

// Finite-difference step and tolerance. With central differences the
// truncation error is h²·|f⁽³⁾|/6 ≈ 1e-11 for third derivatives of order 1,
// and the round-off error is about eps·|L|/h ≈ 2e-16·10/1e-5 = 2e-10, so a
// correct gradient agrees to ~1e-9; fdTol (abs, plus the same relative to
// the gradient) is ten times that. A wrong term in a gradient is off by
// O(0.01–1), far outside it.
const (
	fdStep = 1e-5
	fdTol  = 1e-8
)

// checkFD compares every element of every variable's analytic gradient with
// the central difference of loss.
func checkFD(t *testing.T, mod string, loss func() float64, vars []gradVar) {
	t.Helper()
	for _, v := range vars {
		worst := 0.0
		for i := range v.x {
			x0 := v.x[i]
			v.x[i] = x0 + fdStep
			lp := loss()
			v.x[i] = x0 - fdStep
			lm := loss()
			v.x[i] = x0
			fd := (lp - lm) / (2 * fdStep)
			d := math.Abs(fd - v.grad[i])
			worst = max(worst, d)
			if d > fdTol*(1+math.Abs(fd)) {
				t.Errorf("%s: d/d%s[%d]: analytic %.10g, finite difference %.10g", mod, v.name, i, v.grad[i], fd)
				break
			}
		}
		t.Logf("%s: %s: max |analytic − finite difference| = %.3g over %d elements", mod, v.name, worst, len(v.x))
	}
}

// dot returns Σ a_i·b_i.
func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestRowGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	m := newRow[float64](t, rng, smallRow)
	s, n := 3, 4
	msa, z := randn[float64](rng, s*n*smallRow.MSAChannels), randn[float64](rng, n*n*smallRow.PairChannels)
	mask := randMask[float64](rng, s, n)
	mask[n+2], mask[2*n+3] = 0, 0
	var cache RowCache[float64]
	out, err := m.Forward(msa, z, mask, s, n, &cache)
	if err != nil {
		t.Fatal(err)
	}
	cot := randn[float64](rng, len(out))
	g, err := m.Backward(&cache, cot)
	if err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		y, err := m.Forward(msa, z, mask, s, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		return dot(y, cot)
	}
	vars := []gradVar{{"msa", msa, g.MSA}, {"z", z, g.Z}}
	gts := g.Params.tensors(m.Config)
	for i, pt := range m.Params.tensors(m.Config) {
		vars = append(vars, gradVar{pt.name, *pt.data, *gts[i].data})
	}
	checkFD(t, "row attention", loss, vars)
}

func TestColumnGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	m := newColumn[float64](t, rng, smallColumn)
	s, n := 4, 3
	msa, mask := randn[float64](rng, s*n*smallColumn.MSAChannels), randMask[float64](rng, s, n)
	mask[n+2], mask[3*n+1] = 0, 0
	var cache ColumnCache[float64]
	out, err := m.Forward(msa, mask, s, n, &cache)
	if err != nil {
		t.Fatal(err)
	}
	cot := randn[float64](rng, len(out))
	g, err := m.Backward(&cache, cot)
	if err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		y, err := m.Forward(msa, mask, s, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		return dot(y, cot)
	}
	vars := []gradVar{{"msa", msa, g.MSA}}
	gts := g.Params.tensors(m.Config)
	for i, pt := range m.Params.tensors(m.Config) {
		vars = append(vars, gradVar{pt.name, *pt.data, *gts[i].data})
	}
	checkFD(t, "column attention", loss, vars)
}

func TestGlobalColumnGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	m := newGlobal[float64](t, rng, smallGlobal)
	s, n := 5, 3
	msa, mask := randn[float64](rng, s*n*smallGlobal.MSAChannels), randMask[float64](rng, s, n)
	mask[n+2], mask[3*n+1] = 0, 0
	var cache GlobalColumnCache[float64]
	out, err := m.Forward(msa, mask, s, n, &cache)
	if err != nil {
		t.Fatal(err)
	}
	cot := randn[float64](rng, len(out))
	g, err := m.Backward(&cache, cot)
	if err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		y, err := m.Forward(msa, mask, s, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		return dot(y, cot)
	}
	vars := []gradVar{{"msa", msa, g.MSA}}
	gts := g.Params.tensors(m.Config)
	for i, pt := range m.Params.tensors(m.Config) {
		vars = append(vars, gradVar{pt.name, *pt.data, *gts[i].data})
	}
	checkFD(t, "global column attention", loss, vars)
}
