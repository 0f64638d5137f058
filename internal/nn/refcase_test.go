package nn

import (
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// TestTransitionRefcase composes the kernels into AF2's transition
// (Algorithms 9 and 15: out = relu(LN(x)·W1 + b1)·W2 + b2) and checks the
// forward values and every gradient against the msa_transition and
// pair_transition reference cases, which fixes the parameter layouts, the
// layer-norm epsilon and the biased variance. The tolerances are the
// cases' own (refcases README §5 and meta.tolerance).
func TestTransitionRefcase(t *testing.T) {
	for _, tc := range []struct {
		file, module, in, mask, out string
		c                           int
	}{
		{"pair_transition.npz", "pair_transition", "z", "pair_mask", "z_update", 128},
		{"msa_transition.npz", "msa_transition", "msa", "msa_mask", "msa_update", 256},
	} {
		t.Run(tc.module, func(t *testing.T) {
			cs := refcase.Open(t, tc.file)
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("float64", func(t *testing.T) {
				runTransition[float64](t, cs, meta, tc.module, tc.in, tc.mask, tc.out, tc.c)
			})
			t.Run("float32", func(t *testing.T) {
				runTransition[float32](t, cs, meta, tc.module, tc.in, tc.mask, tc.out, tc.c)
			})
		})
	}
}

func runTransition[T num.Float](t *testing.T, cs *params.Set, meta refcase.Meta, module, inName, maskName, outName string, c int) {
	ps := cs.Sub("params/" + module + "/")
	ln, err := LoadLayerNorm[T](ps, "input_layer_norm", c)
	if err != nil {
		t.Fatal(err)
	}
	l1, err := LoadLinear[T](ps, "transition1", c, 4*c, true)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := LoadLinear[T](ps, "transition2", 4*c, c, true)
	if err != nil {
		t.Fatal(err)
	}
	shape, err := cs.Shape("in/" + inName)
	if err != nil {
		t.Fatal(err)
	}
	rows := 1
	for _, d := range shape[:len(shape)-1] {
		rows *= d
	}
	get := func(name string, shape ...int) []T {
		x, err := params.Get[T](cs, name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	get64 := func(name string) []float64 {
		x, err := params.Get[float64](cs, name)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x := get("in/"+inName, shape...)
	mask := get("in/"+maskName, shape[:len(shape)-1]...)

	// Forward, keeping what the backward pass needs.
	h := make([]T, rows*c)
	mean, rstd := make([]T, rows), make([]T, rows)
	ln.Forward(h, x, rows, mean, rstd)
	a := make([]T, rows*4*c)
	l1.Forward(a, h, rows)
	ReLU(a, a) // a ≥ 0 marks the positions where the pre-activation was > 0
	out := make([]T, rows*c)
	l2.Forward(out, a, rows)

	abs, rel := meta.Tol(1e-9, "float64", "abs"), meta.Tol(1e-7, "float64", "rel")
	gabs, grel := meta.Tol(1e-8, "grad", "grad/in (float64)", "abs"), meta.Tol(1e-6, "grad", "grad/in (float64)", "rel")
	prel := meta.Tol(1e-6, "grad", "grad/params (stored float32)", "rel_to_max_abs")
	if isFloat32[T]() {
		abs, rel = meta.Tol(1e-4, "float32", "abs"), meta.Tol(1e-3, "float32", "rel")
		prel = meta.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs")
	}
	refcase.Compare(t, "out/"+outName+"_nomask", out, get64("out/"+outName+"_nomask"), abs, rel)

	// Backward of L = Σ cot_nomask ⊙ out + Σ cot ⊙ (mask·out).
	cotN, cotM := get("in/cot_"+outName+"_nomask"), get("in/cot_"+outName)
	dout := make([]T, rows*c)
	for r := range rows {
		for j := range c {
			i := r*c + j
			dout[i] = cotN[i] + mask[r]*cotM[i]
		}
	}
	da := make([]T, rows*4*c)
	g2 := l2.ZerosLike()
	l2.Backward(da, &g2, a, dout, rows)
	dpre := make([]T, rows*4*c)
	ReLUBackward(dpre, a, da) // relu'(pre) = [pre > 0] = [a > 0]
	dh := make([]T, rows*c)
	g1 := l1.ZerosLike()
	l1.Backward(dh, &g1, h, dpre, rows)
	dx := make([]T, rows*c)
	gln := ln.ZerosLike()
	ln.Backward(dx, &gln, x, mean, rstd, dh, rows)

	if isFloat32[T]() {
		want := get64("grad/in/" + inName)
		refcase.Compare(t, "grad/in/"+inName, dx, want, prel*refcase.MaxAbs(want), 0)
	} else {
		refcase.Compare(t, "grad/in/"+inName, dx, get64("grad/in/"+inName), gabs, grel)
	}
	gp := "grad/params/" + module + "/"
	for _, p := range []struct {
		name string
		got  []T
	}{
		{"input_layer_norm//scale", gln.Scale}, {"input_layer_norm//offset", gln.Offset},
		{"transition1//weights", g1.W}, {"transition1//bias", g1.B},
		{"transition2//weights", g2.W}, {"transition2//bias", g2.B},
	} {
		want := get64(gp + p.name)
		refcase.Compare(t, gp+p.name, p.got, want, prel*refcase.MaxAbs(want), 0)
	}
}

// isFloat32 reports whether T is float32 (or a type based on it).
func isFloat32[T num.Float]() bool { return num.Eps[T]() > 1e-10 }
