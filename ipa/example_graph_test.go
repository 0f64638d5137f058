package ipa_test

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/ipa"
)

// ExampleApply puts IPA into a gorgonia graph, takes the gradient of the sum
// of its output with respect to s and to every parameter, and runs the graph
// on a TapeMachine.
func ExampleApply() {
	cfg := ipa.Config{CS: 8, CZ: 4, Heads: 2, Channels: 4, QueryPoints: 2, ValuePoints: 2, Eps: 1e-8, Inf: 1e5}
	const n = 3
	rng := rand.New(rand.NewPCG(1, 1))
	p, err := ipa.NewParams[float64](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	g := gorgonia.NewGraph()
	input := func(name string, shape ...int) *gorgonia.Node {
		t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
		data := t.Data().([]float64)
		for i := range data {
			data[i] = rng.NormFloat64()
		}
		return gorgonia.NodeFromAny(g, t, gorgonia.WithName(name))
	}
	s := input("s", n, cfg.CS)
	z := input("z", n, n, cfg.CZ)
	trans := input("trans", n, 3)
	identity := tensor.New(tensor.WithShape(n, 3, 3), tensor.WithBacking([]float64{
		1, 0, 0, 0, 1, 0, 0, 0, 1,
		1, 0, 0, 0, 1, 0, 0, 0, 1,
		1, 0, 0, 0, 1, 0, 0, 0, 1,
	}))
	rot := gorgonia.NodeFromAny(g, identity, gorgonia.WithName("rot"))
	mask := gorgonia.NodeFromAny(g, tensor.New(tensor.WithBacking([]float64{1, 1, 1})), gorgonia.WithName("mask"))
	pn, err := ipa.ParamNodes(g, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := ipa.Apply(cfg, s, z, rot, trans, mask, pn)
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := gorgonia.Must(gorgonia.Sum(out))
	grads, err := gorgonia.Grad(loss, append(gorgonia.Nodes{s}, pn...)...)
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
	fmt.Println("out", out.Shape())
	fmt.Println("d/ds", grads[0].Shape())
	fmt.Println("d/d"+pn[0].Name(), grads[1].Shape())
	// Output:
	// out (3, 8)
	// d/ds (3, 8)
	// d/dinvariant_point_attention/q_scalar//weights (8, 8)
}
