package triangle_test

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/triangle"
)

// A fresh multiplicative update, initialised as AF2 does, adds nothing to
// the pair representation: its output projection starts at zero.
func ExampleNewMulParams() {
	cfg := triangle.DefaultMulConfig() // outgoing edges, Algorithm 11
	p, err := triangle.NewMulParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const n = 8
	z := make([]float32, n*n*cfg.PairChannels)
	for i := range z {
		z[i] = float32(i%17) - 8
	}
	mask := make([]float32, n*n)
	for i := range mask {
		mask[i] = 1
	}
	out := make([]float32, len(z))
	if err := triangle.MulForward(p, z, mask, n, out, nil); err != nil {
		fmt.Println(err)
		return
	}
	var m float32
	for _, v := range out {
		m = max(m, v, -v)
	}
	fmt.Println(cfg.Name(), len(p.LeftProjection.W), "max |update| =", m)
	// Output: triangle_multiplication_outgoing 16384 max |update| = 0
}

// The attention around the ending node is Algorithm 14; fresh parameters
// (zero output weights) also give a zero update.
func ExampleNewAttParams() {
	cfg := triangle.DefaultAttConfig()
	cfg.Ending = true
	p, err := triangle.NewAttParams[float64](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const n = 6
	z := make([]float64, n*n*cfg.PairChannels)
	for i := range z {
		z[i] = float64(i%11) / 10
	}
	mask := make([]float64, n*n)
	for i := range mask {
		mask[i] = 1
	}
	mask[0] = 0
	out := make([]float64, len(z))
	var cache triangle.AttCache[float64]
	if err := triangle.AttForward(p, z, mask, n, out, &cache); err != nil {
		fmt.Println(err)
		return
	}
	dz := make([]float64, len(z))
	g := p.ZerosLike()
	if err := triangle.AttBackward(p, &cache, out, dz, g); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Name(), "heads", cfg.Heads, "feat_2d_weights", len(p.FeatTwoDWeights), "update", out[0])
	// Output: triangle_attention_ending_node heads 4 feat_2d_weights 512 update 0
}

// ApplyMul puts a triangle update into a gorgonia graph; gorgonia.Grad then
// reaches z and every parameter through MulBackward.
func ExampleApplyMul() {
	cfg := triangle.MulConfig{PairChannels: 4, HiddenChannels: 3, Incoming: true}
	p, err := triangle.NewMulParams[float64](cfg, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const n = 3
	g := gorgonia.NewGraph()
	z := gorgonia.NewTensor(g, tensor.Float64, 3, gorgonia.WithShape(n, n, 4), gorgonia.WithName("z"), gorgonia.WithInit(gorgonia.GlorotN(1)))
	mask := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(n, n), gorgonia.WithName("mask"), gorgonia.WithInit(gorgonia.Ones()))
	ps, err := triangle.MulParamNodes(g, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := triangle.ApplyMul[float64](cfg, z, mask, ps)
	if err != nil {
		fmt.Println(err)
		return
	}
	cost := gorgonia.Must(gorgonia.Sum(out))
	grads, err := gorgonia.Grad(cost, append([]*gorgonia.Node{z}, ps...)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		fmt.Println(err)
		return
	}
	names := triangle.MulParamNames(cfg)
	fmt.Println(out.Shape(), len(grads), names[len(names)-2], grads[len(grads)-2].Shape())
	// Output: (3, 3, 4) 17 gating_linear//weights (4, 4)
}

// LoadMulParams reads AF2's names relative to the module's parent, here
// from a set written by Save (a released AF2 file would be narrowed with
// Sub and Layer first).
func ExampleLoadMulParams() {
	cfg := triangle.MulConfig{PairChannels: 8, HiddenChannels: 4, Incoming: true}
	p, err := triangle.NewMulParams[float32](cfg, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := params.New()
	if err := p.Save(s, "evoformer_iteration/"); err != nil {
		fmt.Println(err)
		return
	}
	q, err := triangle.LoadMulParams[float32](s.Sub("evoformer_iteration/"), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Keys()[0])
	fmt.Println(q.OutputProjection.In, q.OutputProjection.Out, len(s.Unused()))
	// Output:
	// evoformer_iteration/triangle_multiplication_incoming/center_layer_norm//offset
	// 4 8 0
}

// LoadAttParams reads the attention's parameters the same way.
func ExampleLoadAttParams() {
	cfg := triangle.AttConfig{PairChannels: 8, Heads: 2, HeadChannels: 3}
	p, err := triangle.NewAttParams[float64](cfg, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := params.New()
	if err := p.Save(s, ""); err != nil {
		fmt.Println(err)
		return
	}
	q, err := triangle.LoadAttParams[float64](s, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(s.Keys()), q.Attention.Heads, q.Attention.C, triangle.AttParamNames(cfg)[2])
	// Output: 10 2 3 /feat_2d_weights
}

// NewBench builds a module at AF2's widths for timing; flops counts its
// matrix products.
func ExampleNewBench() {
	run, flops, err := triangle.NewBench("tri_mul_outgoing", 16, 0, "float32", false)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(run(), flops == triangle.MulFlops(triangle.DefaultMulConfig(), 16, false))
	// Output: <nil> true
}
