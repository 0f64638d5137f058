package ipa

import (
	"math"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// TestGorgonia builds the graph loss = Σ IPA(s, z, rot, trans, mask)·cot in
// gorgonia, takes gorgonia.Grad with respect to every differentiable input
// and parameter node, runs it on a TapeMachine, and compares the loss and
// each gradient with Forward and Backward called directly.
func TestGorgonia(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGorgonia[float64](t, tensor.Float64) })
	t.Run("float32", func(t *testing.T) { testGorgonia[float32](t, tensor.Float32) })
}

func testGorgonia[T num.Float](t *testing.T, dt tensor.Dtype) {
	cfg := smallConfig()
	const n = 4
	in := randomInputs(cfg, n, 2, 31)
	p := randomParams[T](cfg, 32)
	s, z, mask, cot := convert[T](in.s), convert[T](in.z), convert[T](in.mask), convert[T](in.cot)
	frames := convertFrames[T](in.frames)
	rot := make([]T, 9*n)
	trans := make([]T, 3*n)
	for i, f := range frames {
		copy(rot[9*i:], f.Rot[:])
		copy(trans[3*i:], f.Trans[:])
	}

	g := gorgonia.NewGraph()
	node := func(name string, x []T, shape ...int) *gorgonia.Node {
		return gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(x)), gorgonia.WithName(name))
	}
	sN := node("s", s, n, cfg.CS)
	zN := node("z", z, n, n, cfg.CZ)
	rotN := node("rot", rot, n, 3, 3)
	transN := node("trans", trans, n, 3)
	maskN := node("mask", mask, n)
	cotN := node("cot", cot, n, cfg.CS)
	pN, err := ParamNodes(g, p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Apply(cfg, sN, zN, rotN, transN, maskN, pN)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := gorgonia.HadamardProd(out, cotN)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := gorgonia.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	wrt := append(gorgonia.Nodes{sN, zN, rotN, transN}, pN...)
	grads, err := gorgonia.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}

	// Direct calls.
	var c Cache[T]
	o := make([]T, n*cfg.CS)
	if err := Forward(p, s, z, frames, mask, o, &c); err != nil {
		t.Fatal(err)
	}
	ds, dz := make([]T, len(s)), make([]T, len(z))
	dframes := make([]rigid.Rigid[T], n)
	gp := p.ZerosLike()
	if err := Backward(p, &c, cot, ds, dz, dframes, gp); err != nil {
		t.Fatal(err)
	}
	var want float64
	for i := range o {
		want += float64(o[i]) * float64(cot[i])
	}
	// gorgonia sums the products in its own order: round-off of ~N·c_s
	// terms of size O(1) in T.
	tol := 1e-12
	if dt == tensor.Float32 {
		tol = 1e-4
	}
	if got := float64(loss.Value().Data().(T)); math.Abs(got-want) > tol*(1+math.Abs(want)) {
		t.Errorf("loss: graph %v, direct %v", got, want)
	}
	drot, dtrans := make([]T, 9*n), make([]T, 3*n)
	for i, f := range dframes {
		copy(drot[9*i:], f.Rot[:])
		copy(dtrans[3*i:], f.Trans[:])
	}
	wantGrads := append([][]T{ds, dz, drot, dtrans}, gp.arrays()...)
	names := append([]string{"s", "z", "rot", "trans"}, ParamNames()...)
	for k, gn := range grads {
		got := gn.Value().Data().([]T)
		if len(got) != len(wantGrads[k]) {
			t.Fatalf("%s: gradient has %d elements, want %d", names[k], len(got), len(wantGrads[k]))
		}
		var worst float64
		for i := range got {
			worst = math.Max(worst, math.Abs(float64(got[i]-wantGrads[k][i])))
		}
		// The gradient op runs the same Forward and Backward: the results
		// agree exactly (gorgonia adds nothing when a node has one consumer).
		if worst != 0 {
			t.Errorf("%s: graph gradient differs from Backward by %.3g", names[k], worst)
		}
	}

	// One step of gorgonia's vanilla SGD moves each parameter node by
	// −lr·gradient: the gradients reach gorgonia's solvers.
	const lr = 0.5
	before := make([][]T, len(pN))
	for k, pn := range pN {
		before[k] = append([]T(nil), pn.Value().Data().([]T)...)
	}
	solver := gorgonia.NewVanillaSolver(gorgonia.WithLearnRate(lr))
	if err := solver.Step(gorgonia.NodesToValueGrads(pN)); err != nil {
		t.Fatal(err)
	}
	for k, pn := range pN {
		after := pn.Value().Data().([]T)
		gk := wantGrads[4+k]
		for i := range after {
			// One multiply-add in T.
			if d := math.Abs(float64(after[i] - (before[k][i] - lr*gk[i]))); d > 4*float64(num.Eps[T]())*(1+math.Abs(float64(before[k][i]))) {
				t.Fatalf("%s[%d]: after a step %v, want %v − %v·%v", ParamNames()[k], i, after[i], before[k][i], lr, gk[i])
			}
		}
	}
}
