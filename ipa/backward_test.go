package ipa

import (
	"fmt"
	"math"
	"testing"

	"github.com/foldkit/foldkit/rigid"
)

// TestBackwardFiniteDifferences checks every gradient of Backward (s, z, the
// nine rotation entries and the translation of every frame, every parameter)
// against central finite differences of L = Σ out·cot in float64, on a
// reduced configuration with one masked residue.
func TestBackwardFiniteDifferences(t *testing.T) {
	cfg := smallConfig()
	const n = 5
	in := randomInputs(cfg, n, 3, 11)
	p := randomParams[float64](cfg, 12)

	loss := func() float64 {
		out := make([]float64, n*cfg.CS)
		if err := Forward(p, in.s, in.z, in.frames, in.mask, out, nil); err != nil {
			t.Fatal(err)
		}
		var l float64
		for i, v := range out {
			l += v * in.cot[i]
		}
		return l
	}

	var c Cache[float64]
	out := make([]float64, n*cfg.CS)
	if err := Forward(p, in.s, in.z, in.frames, in.mask, out, &c); err != nil {
		t.Fatal(err)
	}
	ds := make([]float64, len(in.s))
	dz := make([]float64, len(in.z))
	dframes := make([]rigid.Rigid[float64], n)
	g := p.ZerosLike()
	if err := Backward(p, &c, in.cot, ds, dz, dframes, g); err != nil {
		t.Fatal(err)
	}

	type target struct {
		name string
		x    []float64 // the values to perturb
		grad []float64 // Backward's gradient for them
	}
	targets := []target{{"s", in.s, ds}, {"z", in.z, dz}}
	for i := range in.frames {
		targets = append(targets,
			target{fmt.Sprintf("frames[%d].Rot", i), in.frames[i].Rot[:], dframes[i].Rot[:]},
			target{fmt.Sprintf("frames[%d].Trans", i), in.frames[i].Trans[:], dframes[i].Trans[:]})
	}
	gl := g.linears(cfg)
	for k, l := range p.linears(cfg) {
		targets = append(targets,
			target{l.name + "//weights", l.p.W, gl[k].p.W},
			target{l.name + "//bias", l.p.B, gl[k].p.B})
	}
	targets = append(targets, target{"trainable_point_weights", p.TrainablePointWeights, g.TrainablePointWeights})

	// Central differences with step 1e-5 have truncation error ~1e-10·|L'''|
	// and round-off ~1e-16·|L|/1e-5 ≈ 1e-11·|L| (|L| ~ 10 here), so 1e-7
	// absolute plus 1e-6 relative leaves a wide margin while a wrong term
	// (errors of order |grad| ≥ 1e-3 typically) fails. The rotation entries
	// are perturbed off the rotation group by 1e-5, well within RotationTol.
	const h = 1e-5
	for _, tg := range targets {
		var worst float64
		for k := range tg.x {
			x0 := tg.x[k]
			tg.x[k] = x0 + h
			lp := loss()
			tg.x[k] = x0 - h
			lm := loss()
			tg.x[k] = x0
			fd := (lp - lm) / (2 * h)
			d := math.Abs(fd - tg.grad[k])
			worst = math.Max(worst, d)
			if d > 1e-7+1e-6*math.Abs(fd) {
				t.Errorf("%s[%d]: backward %.10g, finite difference %.10g", tg.name, k, tg.grad[k], fd)
			}
		}
		t.Logf("%s: max |backward − finite difference| = %.3g over %d entries", tg.name, worst, len(tg.x))
	}
}

// TestBackwardAccumulates checks that Backward adds to its outputs (two
// calls give twice one call) and that nil outputs are skipped.
func TestBackwardAccumulates(t *testing.T) {
	cfg := smallConfig()
	const n = 4
	in := randomInputs(cfg, n, -1, 3)
	p := randomParams[float64](cfg, 4)
	var c Cache[float64]
	out := make([]float64, n*cfg.CS)
	if err := Forward(p, in.s, in.z, in.frames, in.mask, out, &c); err != nil {
		t.Fatal(err)
	}
	ds1 := make([]float64, len(in.s))
	if err := Backward(p, &c, in.cot, ds1, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	ds2 := make([]float64, len(in.s))
	g := p.ZerosLike()
	for range 2 {
		if err := Backward(p, &c, in.cot, ds2, nil, nil, g); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ds1 {
		// ds sums four projections' contributions; accumulating them twice
		// differs from doubling by a few roundings: 1e-13 relative (~500 ulp)
		// is loose for that and far below a missing or doubled term.
		if math.Abs(ds2[i]-2*ds1[i]) > 1e-13*math.Abs(ds1[i]) {
			t.Fatalf("ds[%d]: two calls give %v, one call %v", i, ds2[i], ds1[i])
		}
	}
}
