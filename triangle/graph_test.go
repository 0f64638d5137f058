package triangle

import (
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGraph builds, for every module, the graph z → module → Σ(out ⊙ cot),
// takes gorgonia.Grad with respect to z and every parameter node, runs it on
// a TapeMachine, and compares the forward value and every gradient with
// MulForward/AttForward and MulBackward/AttBackward called directly.
// float64; the graph runs the same code (plus one recomputed forward pass),
// so 1e-12 relative to the largest entry bounds the difference.
func TestGraph(t *testing.T) {
	const n = 5
	for _, tc := range []struct {
		name  string
		cz    int
		nodes func(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error)
		apply func(z, mask *gorgonia.Node, params []*gorgonia.Node) (*gorgonia.Node, error)
		ref   func(z, mask, cot []float64) map[string][]float64
		names []string
	}{
		{
			name: "outgoing", cz: smallMul(false).PairChannels,
			nodes: func(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
				return MulParamNodes(g, testMulParams[float64](t, smallMul(false), 3))
			},
			apply: func(z, mask *gorgonia.Node, ps []*gorgonia.Node) (*gorgonia.Node, error) {
				return ApplyMul[float64](smallMul(false), z, mask, ps)
			},
			ref: func(z, mask, cot []float64) map[string][]float64 {
				return runMul(t, testMulParams[float64](t, smallMul(false), 3), z, mask, cot, n)
			},
			names: MulParamNames(smallMul(false)),
		},
		{
			name: "incoming", cz: smallMul(true).PairChannels,
			nodes: func(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
				return MulParamNodes(g, testMulParams[float64](t, smallMul(true), 3))
			},
			apply: func(z, mask *gorgonia.Node, ps []*gorgonia.Node) (*gorgonia.Node, error) {
				return ApplyMul[float64](smallMul(true), z, mask, ps)
			},
			ref: func(z, mask, cot []float64) map[string][]float64 {
				return runMul(t, testMulParams[float64](t, smallMul(true), 3), z, mask, cot, n)
			},
			names: MulParamNames(smallMul(true)),
		},
		{
			name: "starting", cz: smallAtt(false).PairChannels,
			nodes: func(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
				return AttParamNodes(g, testAttParams[float64](t, smallAtt(false), 3))
			},
			apply: func(z, mask *gorgonia.Node, ps []*gorgonia.Node) (*gorgonia.Node, error) {
				return ApplyAtt[float64](smallAtt(false), z, mask, ps)
			},
			ref: func(z, mask, cot []float64) map[string][]float64 {
				return runAtt(t, testAttParams[float64](t, smallAtt(false), 3), z, mask, cot, n)
			},
			names: AttParamNames(smallAtt(false)),
		},
		{
			name: "ending", cz: smallAtt(true).PairChannels,
			nodes: func(g *gorgonia.ExprGraph) ([]*gorgonia.Node, error) {
				return AttParamNodes(g, testAttParams[float64](t, smallAtt(true), 3))
			},
			apply: func(z, mask *gorgonia.Node, ps []*gorgonia.Node) (*gorgonia.Node, error) {
				return ApplyAtt[float64](smallAtt(true), z, mask, ps)
			},
			ref: func(z, mask, cot []float64) map[string][]float64 {
				return runAtt(t, testAttParams[float64](t, smallAtt(true), 3), z, mask, cot, n)
			},
			names: AttParamNames(smallAtt(true)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, mask := testPair(n, tc.cz, 12)
			cot := randn(len(z), 13)
			g := gorgonia.NewGraph()
			zn := gorgonia.NewTensor(g, tensor.Float64, 3, gorgonia.WithShape(n, n, tc.cz), gorgonia.WithName("z"),
				gorgonia.WithValue(tensor.New(tensor.WithShape(n, n, tc.cz), tensor.WithBacking(append([]float64(nil), z...)))))
			mn := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(n, n), gorgonia.WithName("mask"),
				gorgonia.WithValue(tensor.New(tensor.WithShape(n, n), tensor.WithBacking(append([]float64(nil), mask...)))))
			cn := gorgonia.NewTensor(g, tensor.Float64, 3, gorgonia.WithShape(n, n, tc.cz), gorgonia.WithName("cot"),
				gorgonia.WithValue(tensor.New(tensor.WithShape(n, n, tc.cz), tensor.WithBacking(append([]float64(nil), cot...)))))
			ps, err := tc.nodes(g)
			if err != nil {
				t.Fatal(err)
			}
			out, err := tc.apply(zn, mn, ps)
			if err != nil {
				t.Fatal(err)
			}
			cost := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(out, cn))))
			wrt := append([]*gorgonia.Node{zn}, ps...)
			grads, err := gorgonia.Grad(cost, wrt...)
			if err != nil {
				t.Fatal(err)
			}
			var outVal gorgonia.Value
			gorgonia.Read(out, &outVal)
			vm := gorgonia.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			ref := tc.ref(z, mask, cot)
			check := func(what string, got gorgonia.Value, want []float64) {
				t.Helper()
				if got == nil {
					t.Fatalf("%s: no value", what)
				}
				d, s := maxDiff(got.Data().([]float64)[:got.Size()], want)
				if d > 1e-12*s || s == 0 {
					t.Errorf("%s: max difference %.3g (max |value| %.3g)", what, d, s)
				}
			}
			check("out", outVal, ref["out"])
			check("∂/∂z", grads[0].Value(), ref["dz"])
			for i, name := range tc.names {
				check("∂/∂"+name, grads[i+1].Value(), ref[name])
			}
		})
	}
}
