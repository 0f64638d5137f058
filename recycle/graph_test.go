package recycle

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// graphFixture holds the values of the graph tests.
type graphFixture struct {
	p             *Params[float64]
	n             int
	row, pair, pb []float64
	featM, featZ  []float64
	cotM, cotZ    []float64
}

func newGraphFixture(t *testing.T) graphFixture {
	cfg := smallConfig()
	rng := rand.New(rand.NewPCG(8, 8))
	const n = 4
	return graphFixture{
		p: randomParams[float64](t, cfg, 9), n: n,
		row: randv(rng, n*cfg.CM, 1), pair: randv(rng, n*n*cfg.CZ, 1),
		pb:    []float64{0, 0, 0, 3.8, 0, 0, 7.1, 2.2, 0, 12.3, 5.1, 8.7},
		featM: randv(rng, n*cfg.CM, 1), featZ: randv(rng, n*n*cfg.CZ, 1),
		cotM: randv(rng, n*cfg.CM, 1), cotZ: randv(rng, n*n*cfg.CZ, 1),
	}
}

// graphNodes builds loss = Σ cot·(m, z) on g after passes of the embedder
// from (row, pair): each pass's outputs plus the features feed the next
// pass, through StopGradient when stop is set. It returns the loss and the
// parameter nodes.
func (f graphFixture) graph(t *testing.T, g *gorgonia.ExprGraph, passes int, stop bool) (*gorgonia.Node, []*gorgonia.Node, *gorgonia.Node, *gorgonia.Node) {
	t.Helper()
	cfg := f.p.Config
	n := f.n
	node := func(name string, x []float64, shape ...int) *gorgonia.Node {
		return gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), x...))), gorgonia.WithName(name))
	}
	pN, err := f.p.ParamNodes(g)
	if err != nil {
		t.Fatal(err)
	}
	rowIn, pairIn := node("row", f.row, n, cfg.CM), node("pair", f.pair, n, n, cfg.CZ)
	row, pair := rowIn, pairIn
	pb := node("pb", f.pb, n, 3)
	featM, featZ := node("featM", f.featM, n, cfg.CM), node("featZ", f.featZ, n, n, cfg.CZ)
	for k := range passes {
		if k > 0 && stop {
			if row, err = StopGradient(row); err != nil {
				t.Fatal(err)
			}
			if pair, err = StopGradient(pair); err != nil {
				t.Fatal(err)
			}
		}
		mo, zo, err := Apply(cfg, row, pair, pb, pN)
		if err != nil {
			t.Fatal(err)
		}
		if row, err = gorgonia.Add(mo, featM); err != nil {
			t.Fatal(err)
		}
		if pair, err = gorgonia.Add(zo, featZ); err != nil {
			t.Fatal(err)
		}
	}
	lm, err := gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(row, node("cotM", f.cotM, n, cfg.CM))))
	if err != nil {
		t.Fatal(err)
	}
	lz, err := gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(pair, node("cotZ", f.cotZ, n, n, cfg.CZ))))
	if err != nil {
		t.Fatal(err)
	}
	loss, err := gorgonia.Add(lm, lz)
	if err != nil {
		t.Fatal(err)
	}
	return loss, pN, rowIn, pairIn
}

// run differentiates loss with respect to wrt and runs the graph.
func runGraph(t *testing.T, g *gorgonia.ExprGraph, loss *gorgonia.Node, wrt []*gorgonia.Node) [][]float64 {
	t.Helper()
	grads, err := gorgonia.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(grads))
	for k, gn := range grads {
		out[k] = append([]float64(nil), gn.Value().Data().([]float64)...)
	}
	return out
}

// TestGraph checks the gorgonia adapter on one pass: the gradients with
// respect to the previous first row, the previous pair and every parameter
// equal Backward's exactly (the gradient op runs Backward, and gorgonia
// merges the two outputs' gradients by adding exact zeros).
func TestGraph(t *testing.T) {
	f := newGraphFixture(t)
	g := gorgonia.NewGraph()
	loss, pN, rowN, pairN := f.graph(t, g, 1, true)
	got := runGraph(t, g, loss, append([]*gorgonia.Node{rowN, pairN}, pN...))

	var c Cache[float64]
	if err := Forward(f.p, f.row, f.pair, f.pb, make([]float64, len(f.row)), make([]float64, len(f.pair)), &c); err != nil {
		t.Fatal(err)
	}
	dRow, dPair := make([]float64, len(f.row)), make([]float64, len(f.pair))
	gp := f.p.ZerosLike()
	if err := Backward(f.p, &c, f.cotM, f.cotZ, dRow, dPair, gp); err != nil {
		t.Fatal(err)
	}
	want := [][]float64{dRow, dPair}
	for _, ts := range gp.tensors() {
		want = append(want, *ts.data)
	}
	names := append([]string{"prevMSAFirstRow", "prevPair"}, ParamNames(f.p.Config)...)
	for k := range want {
		for i := range want[k] {
			if got[k][i] != want[k][i] {
				t.Fatalf("%s[%d]: graph %v, Backward %v", names[k], i, got[k][i], want[k][i])
			}
		}
	}
}

// TestGraphStopGradient unrolls two recycling passes in a gorgonia graph
// with StopGradient between them. The parameters' gradients are then
// exactly those of the second pass alone, Backward on the first pass's
// outputs taken as constants; without StopGradient gorgonia also follows
// the parameters through the first pass and the gradients differ.
func TestGraphStopGradient(t *testing.T) {
	f := newGraphFixture(t)
	g := gorgonia.NewGraph()
	loss, pN, _, _ := f.graph(t, g, 2, true)
	got := runGraph(t, g, loss, pN)

	// Direct: pass 1, then pass 2 with its input fixed.
	cfg := f.p.Config
	row1, pair1 := make([]float64, len(f.row)), make([]float64, len(f.pair))
	if err := Forward(f.p, f.row, f.pair, f.pb, row1, pair1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range row1 {
		row1[i] += f.featM[i]
	}
	for i := range pair1 {
		pair1[i] += f.featZ[i]
	}
	var c Cache[float64]
	if err := Forward(f.p, row1, pair1, f.pb, make([]float64, len(row1)), make([]float64, len(pair1)), &c); err != nil {
		t.Fatal(err)
	}
	gp := f.p.ZerosLike()
	if err := Backward(f.p, &c, f.cotM, f.cotZ, nil, nil, gp); err != nil {
		t.Fatal(err)
	}
	names := ParamNames(cfg)
	for k, ts := range gp.tensors() {
		// The second pass's input is computed by gorgonia's Add in the
		// graph and by a Go loop here: the same float64 sums.
		for i, w := range *ts.data {
			if math.Abs(got[k][i]-w) > 1e-13*(1+math.Abs(w)) {
				t.Fatalf("%s[%d]: graph with StopGradient %v, last pass alone %v", names[k], i, got[k][i], w)
			}
		}
	}

	g2 := gorgonia.NewGraph()
	loss2, pN2, _, _ := f.graph(t, g2, 2, false)
	full := runGraph(t, g2, loss2, pN2)
	var diff2, norm2 float64
	for k := range full {
		for i := range full[k] {
			d := full[k][i] - got[k][i]
			diff2 += d * d
			norm2 += full[k][i] * full[k][i]
		}
	}
	rel := math.Sqrt(diff2 / norm2)
	t.Logf("without StopGradient the gradient moves by %.3g (relative)", rel)
	if rel < 1e-2 {
		t.Errorf("removing StopGradient changed the gradient by only %.3g: the test cannot tell", rel)
	}
}
