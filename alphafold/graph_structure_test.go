package alphafold

import (
	"math"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// TestStructureModuleGorgonia builds loss = Σ positions·c₁ + Σ single·c₂ +
// Σ frames·c₃ from three of the structure module's output nodes, takes
// gorgonia.Grad with respect to single, pair and every parameter, runs it
// on a TapeMachine and compares the loss and each gradient with Forward and
// Backward called directly.
func TestStructureModuleGorgonia(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testStructureModuleGorgonia[float64](t, tensor.Float64, 1e-12) })
	// float32: the graph's loss is summed by gorgonia in its own order.
	t.Run("float32", func(t *testing.T) { testStructureModuleGorgonia[float32](t, tensor.Float32, 1e-4) })
}

func testStructureModuleGorgonia[T num.Float](t *testing.T, dt tensor.Dtype, lossTol float64) {
	cfg := smSmallConfig(3)
	const n = 4
	p := smRandomParams[T](t, cfg, 61)
	in := smRandomInputs(cfg, n, 1, false, 62)
	single, pair, mask := smConvert[T](in.single), smConvert[T](in.pair), smConvert[T](in.mask)
	c1, c2, c3 := smConvert[T](in.cot.Positions), smConvert[T](in.cot.Single), smConvert[T](in.cot.Frames)

	g := gorgonia.NewGraph()
	node := func(name string, x []T, shape ...int) *gorgonia.Node {
		return gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(x)), gorgonia.WithName(name))
	}
	cs, cz := cfg.IPA.CS, cfg.IPA.CZ
	sN := node("single", single, n, cs)
	zN := node("pair", pair, n, n, cz)
	mN := node("seq_mask", mask, n)
	pN, err := StructureModuleParamNodes(g, p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ApplyStructureModule(cfg, sN, zN, mN, in.aatype, pN)
	if err != nil {
		t.Fatal(err)
	}
	term := func(x *gorgonia.Node, c []T) *gorgonia.Node {
		cn := node("cot_"+x.Name(), c, x.Shape()...)
		prod, err := gorgonia.HadamardProd(x, cn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := gorgonia.Sum(prod)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	loss, err := gorgonia.Add(term(out.Positions, c1), term(out.Single, c2))
	if err != nil {
		t.Fatal(err)
	}
	if loss, err = gorgonia.Add(loss, term(out.Frames, c3)); err != nil {
		t.Fatal(err)
	}
	wrt := append(gorgonia.Nodes{sN, zN}, pN...)
	grads, err := gorgonia.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}

	var c StructureModuleCache[T]
	o, err := p.Forward(&StructureModuleInput[T]{Single: single, Pair: pair, AAType: in.aatype, SeqMask: mask}, &c)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, x := range []struct{ a, b []T }{{o.Positions, c1}, {o.Single, c2}, {o.Frames, c3}} {
		for i := range x.a {
			want += float64(x.a[i]) * float64(x.b[i])
		}
	}
	if got := float64(loss.Value().Data().(T)); math.Abs(got-want) > lossTol*(1+math.Abs(want)) {
		t.Errorf("loss: graph %v, direct %v", got, want)
	}
	ds, dz := make([]T, len(single)), make([]T, len(pair))
	gp := p.ZerosLike()
	if err := p.Backward(&c, &StructureModuleOutput[T]{Positions: c1, Single: c2, Frames: c3}, ds, dz, nil, gp); err != nil {
		t.Fatal(err)
	}
	wantGrads := [][]T{ds, dz}
	names := []string{"single", "pair"}
	for _, tt := range gp.tensors() {
		wantGrads = append(wantGrads, *tt.data)
		names = append(names, tt.name)
	}
	for k, gn := range grads {
		got := gn.Value().Data().([]T)
		if len(got) != len(wantGrads[k]) {
			t.Fatalf("%s: gradient has %d elements, want %d", names[k], len(got), len(wantGrads[k]))
		}
		var worst, scale float64
		for i := range got {
			worst = math.Max(worst, math.Abs(float64(got[i]-wantGrads[k][i])))
			scale = math.Max(scale, math.Abs(float64(wantGrads[k][i])))
		}
		// The gradient op runs the same Backward; the graph passes zero
		// cotangents for the unused outputs where the direct call passes
		// nil, which adds exact zeros: the results agree to round-off.
		if worst > 1e-12*(1+scale) {
			t.Errorf("%s: graph gradient differs from Backward by %.3g (scale %.3g)", names[k], worst, scale)
		}
	}
}
