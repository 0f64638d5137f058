package alphafold

import (
	"math"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// graphLoss adds Σ out·cot to g.
func graphLoss(t *testing.T, g *gorgonia.ExprGraph, outs []*gorgonia.Node, cots []*gorgonia.Node) *gorgonia.Node {
	t.Helper()
	var loss *gorgonia.Node
	for k, o := range outs {
		prod, err := gorgonia.HadamardProd(o, cots[k])
		if err != nil {
			t.Fatal(err)
		}
		s, err := gorgonia.Sum(prod)
		if err != nil {
			t.Fatal(err)
		}
		if loss == nil {
			loss = s
		} else if loss, err = gorgonia.Add(loss, s); err != nil {
			t.Fatal(err)
		}
	}
	return loss
}

// gradCase is one adapter under test: it builds its nodes on g and returns
// the output nodes, the nodes to differentiate, and the direct results:
// the outputs and the gradients (in wrt order) for the cotangents.
type gradCase[T num.Float] func(t *testing.T, g *gorgonia.ExprGraph, node func(string, []T, ...int) *gorgonia.Node) (
	outs, cots, wrt []*gorgonia.Node, wantOut, wantCot [][]T, wantGrad [][]T)

// TestGraphAdapters builds loss = Σ out·cot in gorgonia for the outer
// product mean, the MSA transition and a whole Evoformer block, takes
// gorgonia.Grad with respect to the differentiable inputs and every
// parameter node, runs the graph on a TapeMachine, and compares the loss
// and every gradient with Forward and Backward called directly. The
// gradient op runs the same Backward, and gorgonia only adds exact zeros
// when it merges the block's two outputs, so the gradients agree exactly;
// the loss is summed in gorgonia's order, a round-off of ~1e-12 (float64)
// or ~1e-4 (float32) relative for these O(100)-term sums.
func TestGraphAdapters(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGraphAdapters[float64](t, tensor.Float64) })
	t.Run("float32", func(t *testing.T) { testGraphAdapters[float32](t, tensor.Float32) })
}

func testGraphAdapters[T num.Float](t *testing.T, dt tensor.Dtype) {
	cfg := smallEvoConfig(false)
	const s, n = 3, 4
	in := randomEvoInputs(cfg, s, n, 71)
	msa, pair := convertEvo[T](in.msa), convertEvo[T](in.pair)
	msaMask, pairMask := convertEvo[T](in.msaMask), convertEvo[T](in.pairMask)
	cotM, cotZ := convertEvo[T](in.cotMSA), convertEvo[T](in.cotPair)
	block := randomBlock[T](t, cfg, 72)
	cm, cz := cfg.MSAChannels, cfg.PairChannels

	cases := map[string]gradCase[T]{
		"outer product mean": func(t *testing.T, g *gorgonia.ExprGraph, node func(string, []T, ...int) *gorgonia.Node) (outs, cots, wrt []*gorgonia.Node, wantOut, wantCot, wantGrad [][]T) {
			p := block.OuterProductMean
			mN := node("msa", msa, s, n, cm)
			maskN := node("mask", msaMask, s, n)
			pN, err := p.ParamNodes(g)
			if err != nil {
				t.Fatal(err)
			}
			out, err := ApplyOuterProductMean(p.Config, mN, maskN, pN)
			if err != nil {
				t.Fatal(err)
			}
			var c OuterProductMeanCache[T]
			o := make([]T, n*n*cz)
			if err := p.Forward(msa, msaMask, s, n, o, &c); err != nil {
				t.Fatal(err)
			}
			dm := make([]T, len(msa))
			gp := p.ZerosLike()
			if err := p.Backward(&c, cotZ, dm, gp); err != nil {
				t.Fatal(err)
			}
			return []*gorgonia.Node{out}, []*gorgonia.Node{node("cot", cotZ, n, n, cz)}, append([]*gorgonia.Node{mN}, pN...),
				[][]T{o}, [][]T{cotZ}, append([][]T{dm}, evoArrays(gp.tensors())...)
		},
		"msa transition": func(t *testing.T, g *gorgonia.ExprGraph, node func(string, []T, ...int) *gorgonia.Node) (outs, cots, wrt []*gorgonia.Node, wantOut, wantCot, wantGrad [][]T) {
			p := block.MSATransition
			mN := node("msa", msa, s, n, cm)
			pN, err := p.ParamNodes(g, MSATransitionName)
			if err != nil {
				t.Fatal(err)
			}
			out, err := ApplyTransition(p.Config, MSATransitionName, mN, pN)
			if err != nil {
				t.Fatal(err)
			}
			var c TransitionCache[T]
			o := make([]T, len(msa))
			if err := p.Forward(msa, s*n, nil, o, &c); err != nil {
				t.Fatal(err)
			}
			dm := make([]T, len(msa))
			gp := p.ZerosLike()
			if err := p.Backward(&c, cotM, dm, gp); err != nil {
				t.Fatal(err)
			}
			return []*gorgonia.Node{out}, []*gorgonia.Node{node("cot", cotM, s, n, cm)}, append([]*gorgonia.Node{mN}, pN...),
				[][]T{o}, [][]T{cotM}, append([][]T{dm}, evoArrays(gp.tensors(MSATransitionName))...)
		},
		"Evoformer block": func(t *testing.T, g *gorgonia.ExprGraph, node func(string, []T, ...int) *gorgonia.Node) (outs, cots, wrt []*gorgonia.Node, wantOut, wantCot, wantGrad [][]T) {
			mN := node("msa", msa, s, n, cm)
			zN := node("pair", pair, n, n, cz)
			mmN := node("msaMask", msaMask, s, n)
			pmN := node("pairMask", pairMask, n, n)
			pN, err := block.ParamNodes(g)
			if err != nil {
				t.Fatal(err)
			}
			mo, zo, err := ApplyEvoformerBlock(cfg, mN, zN, mmN, pmN, pN)
			if err != nil {
				t.Fatal(err)
			}
			m2, z2 := append([]T(nil), msa...), append([]T(nil), pair...)
			var c EvoformerBlockCache[T]
			if err := block.Forward(m2, z2, msaMask, pairMask, s, n, nil, &c); err != nil {
				t.Fatal(err)
			}
			dm, dz := append([]T(nil), cotM...), append([]T(nil), cotZ...)
			gp := block.ZerosLike()
			if err := block.Backward(&c, dm, dz, gp); err != nil {
				t.Fatal(err)
			}
			return []*gorgonia.Node{mo, zo}, []*gorgonia.Node{node("cotM", cotM, s, n, cm), node("cotZ", cotZ, n, n, cz)},
				append([]*gorgonia.Node{mN, zN}, pN...), [][]T{m2, z2}, [][]T{cotM, cotZ}, append([][]T{dm, dz}, evoArrays(gp.tensors())...)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			g := gorgonia.NewGraph()
			node := func(label string, x []T, shape ...int) *gorgonia.Node {
				return gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]T(nil), x...))), gorgonia.WithName(label))
			}
			outs, cots, wrt, wantOut, wantCot, wantGrad := build(t, g, node)
			loss := graphLoss(t, g, outs, cots)
			grads, err := gorgonia.Grad(loss, wrt...)
			if err != nil {
				t.Fatal(err)
			}
			vm := gorgonia.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			var want float64
			for k := range wantOut {
				for i, v := range wantOut[k] {
					want += float64(v) * float64(wantCot[k][i])
				}
			}
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-4
			}
			if got := float64(loss.Value().Data().(T)); math.Abs(got-want) > tol*(1+math.Abs(want)) {
				t.Errorf("loss: graph %v, direct %v", got, want)
			}
			if len(grads) != len(wantGrad) {
				t.Fatalf("%d gradients, want %d", len(grads), len(wantGrad))
			}
			for k, gn := range grads {
				got := gn.Value().Data().([]T)
				if len(got) != len(wantGrad[k]) {
					t.Fatalf("%s: gradient has %d elements, want %d", wrt[k].Name(), len(got), len(wantGrad[k]))
				}
				for i := range got {
					if got[i] != wantGrad[k][i] {
						t.Fatalf("%s[%d]: graph gradient %v, Backward %v", wrt[k].Name(), i, got[i], wantGrad[k][i])
					}
				}
			}
		})
	}
}
