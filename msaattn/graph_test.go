package msaattn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// graphCase is one module wired into a gorgonia graph for TestGorgonia.
type graphCase[T num.Float] struct {
	name  string
	data  [][]T   // data inputs, the mask last
	shape [][]int // their shapes
	// build adds the module to the graph and returns its output node and
	// parameter nodes.
	build func(g *gorgonia.ExprGraph, data []*gorgonia.Node) (out *gorgonia.Node, params []*gorgonia.Node, err error)
	// direct runs Forward and Backward and returns the output and the
	// gradients of every input but the mask, then of every parameter.
	direct func(cot []T) (out []T, grads [][]T, err error)
	names  []string
}

// TestGorgonia builds loss = Σ module(inputs)·cot in gorgonia for each of
// the three modules, takes gorgonia.Grad with respect to every
// differentiable input and parameter node, runs it on a TapeMachine, and
// compares the loss and each gradient with Forward and Backward called
// directly; then one step of gorgonia's vanilla SGD checks that the
// gradients reach its solvers.
func TestGorgonia(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGorgonia[float64](t) })
	t.Run("float32", func(t *testing.T) { testGorgonia[float32](t) })
}

func testGorgonia[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	s, n := 3, 4
	mask := randMask[T](rng, s, n)
	mask[n+1] = 0

	row := newRow[T](t, rng, smallRow)
	rowMSA, rowZ := randn[T](rng, s*n*smallRow.MSAChannels), randn[T](rng, n*n*smallRow.PairChannels)
	col := newColumn[T](t, rng, smallColumn)
	colMSA := randn[T](rng, s*n*smallColumn.MSAChannels)
	glob := newGlobal[T](t, rng, smallGlobal)
	globMSA := randn[T](rng, s*n*smallGlobal.MSAChannels)

	cases := []graphCase[T]{
		{
			name:  "row",
			data:  [][]T{rowMSA, rowZ, mask},
			shape: [][]int{{s, n, smallRow.MSAChannels}, {n, n, smallRow.PairChannels}, {s, n}},
			build: func(g *gorgonia.ExprGraph, d []*gorgonia.Node) (*gorgonia.Node, []*gorgonia.Node, error) {
				p, err := RowParamNodes(g, row.Config, row.Params)
				if err != nil {
					return nil, nil, err
				}
				out, err := ApplyRow(row.Config, d[0], d[1], d[2], p)
				return out, p, err
			},
			direct: func(cot []T) ([]T, [][]T, error) {
				var c RowCache[T]
				out, err := row.Forward(rowMSA, rowZ, mask, s, n, &c)
				if err != nil {
					return nil, nil, err
				}
				g, err := row.Backward(&c, cot)
				if err != nil {
					return nil, nil, err
				}
				return out, append([][]T{g.MSA, g.Z}, tensorData(g.Params.tensors(row.Config))...), nil
			},
			names: append([]string{"msa", "z"}, RowParamNames()...),
		},
		{
			name:  "column",
			data:  [][]T{colMSA, mask},
			shape: [][]int{{s, n, smallColumn.MSAChannels}, {s, n}},
			build: func(g *gorgonia.ExprGraph, d []*gorgonia.Node) (*gorgonia.Node, []*gorgonia.Node, error) {
				p, err := ColumnParamNodes(g, col.Config, col.Params)
				if err != nil {
					return nil, nil, err
				}
				out, err := ApplyColumn(col.Config, d[0], d[1], p)
				return out, p, err
			},
			direct: func(cot []T) ([]T, [][]T, error) {
				var c ColumnCache[T]
				out, err := col.Forward(colMSA, mask, s, n, &c)
				if err != nil {
					return nil, nil, err
				}
				g, err := col.Backward(&c, cot)
				if err != nil {
					return nil, nil, err
				}
				return out, append([][]T{g.MSA}, tensorData(g.Params.tensors(col.Config))...), nil
			},
			names: append([]string{"msa"}, ColumnParamNames()...),
		},
		{
			name:  "global column",
			data:  [][]T{globMSA, mask},
			shape: [][]int{{s, n, smallGlobal.MSAChannels}, {s, n}},
			build: func(g *gorgonia.ExprGraph, d []*gorgonia.Node) (*gorgonia.Node, []*gorgonia.Node, error) {
				p, err := GlobalColumnParamNodes(g, glob.Config, glob.Params)
				if err != nil {
					return nil, nil, err
				}
				out, err := ApplyGlobalColumn(glob.Config, d[0], d[1], p)
				return out, p, err
			},
			direct: func(cot []T) ([]T, [][]T, error) {
				var c GlobalColumnCache[T]
				out, err := glob.Forward(globMSA, mask, s, n, &c)
				if err != nil {
					return nil, nil, err
				}
				g, err := glob.Backward(&c, cot)
				if err != nil {
					return nil, nil, err
				}
				return out, append([][]T{g.MSA}, tensorData(g.Params.tensors(glob.Config))...), nil
			},
			names: append([]string{"msa"}, GlobalColumnParamNames()...),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runGraphCase(t, rng, tc) })
	}
}

func runGraphCase[T num.Float](t *testing.T, rng *rand.Rand, tc graphCase[T]) {
	g := gorgonia.NewGraph()
	var data []*gorgonia.Node
	for k, x := range tc.data {
		v := tensor.New(tensor.WithShape(tc.shape[k]...), tensor.WithBacking(x))
		data = append(data, gorgonia.NodeFromAny(g, v, gorgonia.WithName([]string{"d0", "d1", "d2"}[k])))
	}
	out, pn, err := tc.build(g, data)
	if err != nil {
		t.Fatal(err)
	}
	cot := randn[T](rng, tc.shape[0][0]*tc.shape[0][1]*out.Shape()[2])
	cotN := gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(cot)), gorgonia.WithName("cot"))
	prod, err := gorgonia.HadamardProd(out, cotN)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := gorgonia.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	wrt := append(gorgonia.Nodes{}, data[:len(data)-1]...) // all but the mask
	wrt = append(wrt, pn...)
	grads, err := gorgonia.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}

	y, want, err := tc.direct(cot)
	if err != nil {
		t.Fatal(err)
	}
	var wantLoss float64
	for i := range y {
		wantLoss += float64(y[i]) * float64(cot[i])
	}
	// gorgonia sums the products in T in its own order: round-off of
	// ~100 terms of size O(1).
	tol := 1e-12
	if _, ok := any(T(0)).(float32); ok {
		tol = 1e-4
	}
	if got := float64(loss.Value().Data().(T)); math.Abs(got-wantLoss) > tol*(1+math.Abs(wantLoss)) {
		t.Errorf("loss: graph %v, direct %v", got, wantLoss)
	}
	if len(grads) != len(want) {
		t.Fatalf("%d gradient nodes, want %d", len(grads), len(want))
	}
	for k, gn := range grads {
		got := gn.Value().Data().([]T)
		// The gradient op runs the same Forward and Backward on the same
		// values, and every node has one consumer: the results agree
		// exactly.
		if d := maxDiff(toF64(got), toF64(want[k])); d != 0 {
			t.Errorf("%s: graph gradient differs from Backward by %.3g", tc.names[k], d)
		}
	}

	// One step of vanilla SGD moves each parameter by −lr·gradient.
	const lr = 0.5
	before := make([][]T, len(pn))
	for k, p := range pn {
		before[k] = append([]T(nil), p.Value().Data().([]T)...)
	}
	if err := gorgonia.NewVanillaSolver(gorgonia.WithLearnRate(lr)).Step(gorgonia.NodesToValueGrads(pn)); err != nil {
		t.Fatal(err)
	}
	nd := len(data) - 1
	for k, p := range pn {
		after := p.Value().Data().([]T)
		for i := range after {
			// One multiply-add in T.
			w := before[k][i] - lr*want[nd+k][i]
			if d := math.Abs(float64(after[i] - w)); d > 4*float64(num.Eps[T]())*(1+math.Abs(float64(w))) {
				t.Fatalf("%s[%d]: after a step %v, want %v", tc.names[nd+k], i, after[i], w)
			}
		}
	}
}

func toF64[T num.Float](x []T) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func TestGorgoniaBadNodes(t *testing.T) {
	g := gorgonia.NewGraph()
	msa := gorgonia.NewTensor(g, tensor.Float64, 3, gorgonia.WithShape(2, 3, 8), gorgonia.WithName("msa"))
	mask := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(2, 3), gorgonia.WithName("mask"))
	flat := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithShape(6), gorgonia.WithName("flat"))
	p, err := ColumnParamNodes(g, smallColumn, must(NewColumnParams[float64](smallColumn, rand.New(rand.NewPCG(1, 1)))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyColumn(smallColumn, msa, mask, p[1:]); err == nil {
		t.Error("ApplyColumn with a parameter node missing: no error")
	}
	if _, err := ApplyColumn(smallColumn, msa, flat, p); err == nil {
		t.Error("ApplyColumn with a 1-d mask: no error")
	}
	if _, err := ApplyColumn(ColumnConfig{}, msa, mask, p); err == nil {
		t.Error("ApplyColumn with an invalid config: no error")
	}
	if _, err := ApplyColumn(smallColumn, msa, mask, p); err != nil {
		t.Errorf("ApplyColumn with good nodes: %v", err)
	}
}

func must[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}
