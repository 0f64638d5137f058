package graphop

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/foldkit/foldkit/internal/num"
)

// errToy is the ErrConfig of the toy modules.
var errToy = errors.New("toy configuration")

// square is the module y = x² (elementwise) on x of any shape of rank dims.
func square[T num.Float](dims int) *Module[T] {
	return &Module[T]{
		Package: "graphop_test", Name: "Square", Key: "square", ErrConfig: errToy,
		Inputs:  []Input{{Name: "x", Dims: dims}},
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) { return []tensor.Shape{in[0]}, nil },
		Forward: func(in [][]T, _ []tensor.Shape) ([][]T, error) {
			y := make([]T, len(in[0]))
			for i, x := range in[0] {
				y[i] = x * x
			}
			return [][]T{y}, nil
		},
		Backward: func(in [][]T, _ []tensor.Shape, _, dOut [][]T) ([][]T, error) {
			dx := make([]T, len(in[0]))
			for i, x := range in[0] {
				dx[i] = 2 * x * dOut[0][i]
			}
			return [][]T{dx}, nil
		},
	}
}

// scaled is a module with a parameter, a mask and two outputs: for x
// [R, C], w [C] and mask [R] (no gradient), y[i,j] = mask[i]·x[i,j]·w[j]
// and s[i] = Σ_j x[i,j]². Its Backward also checks that out holds Forward's
// outputs.
func scaled[T num.Float]() *Module[T] {
	forward := func(in [][]T, sh []tensor.Shape) ([][]T, error) {
		x, w, mask := in[0], in[1], in[2]
		r, c := sh[0][0], sh[0][1]
		y, s := make([]T, r*c), make([]T, r)
		for i := range r {
			for j := range c {
				y[i*c+j] = mask[i] * x[i*c+j] * w[j]
				s[i] += x[i*c+j] * x[i*c+j]
			}
		}
		return [][]T{y, s}, nil
	}
	return &Module[T]{
		Package: "graphop_test", Name: "Scaled",
		Inputs: []Input{{Name: "x", Dims: 2}, {Name: "w", Dims: 1}, {Name: "mask", Dims: 1, NoGrad: true}},
		Outputs: func(in []tensor.Shape) ([]tensor.Shape, error) {
			if in[1][0] != in[0][1] || in[2][0] != in[0][0] {
				return nil, fmt.Errorf("graphop_test: x %v, w %v, mask %v: %w", in[0], in[1], in[2], num.ErrShape)
			}
			return []tensor.Shape{in[0], {in[0][0]}}, nil
		},
		Forward: forward,
		Backward: func(in [][]T, sh []tensor.Shape, out, dOut [][]T) ([][]T, error) {
			want, _ := forward(in, sh)
			for k := range want {
				for i := range want[k] {
					if out[k][i] != want[k][i] {
						return nil, fmt.Errorf("graphop_test: out[%d][%d] = %v, want %v", k, i, out[k][i], want[k][i])
					}
				}
			}
			x, w, mask := in[0], in[1], in[2]
			dy, ds := dOut[0], dOut[1]
			r, c := sh[0][0], sh[0][1]
			dx, dw := make([]T, r*c), make([]T, c)
			for i := range r {
				for j := range c {
					dx[i*c+j] = dy[i*c+j]*mask[i]*w[j] + 2*x[i*c+j]*ds[i]
					dw[j] += dy[i*c+j] * mask[i] * x[i*c+j]
				}
			}
			return [][]T{dx, dw, nil}, nil
		},
	}
}

func randn[T num.Float](rng *rand.Rand, n int) []T {
	x := make([]T, n)
	for i := range x {
		x[i] = T(rng.NormFloat64())
	}
	return x
}

// node adds a node holding a copy of x to g.
func node[T num.Float](g *gorgonia.ExprGraph, name string, x []T, shape ...int) *gorgonia.Node {
	return gorgonia.NodeFromAny(g, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]T(nil), x...))), gorgonia.WithName(name))
}

// dot adds Σ a⊙b to g.
func dot(t *testing.T, a, b *gorgonia.Node) *gorgonia.Node {
	t.Helper()
	prod, err := gorgonia.HadamardProd(a, b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gorgonia.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run differentiates loss with respect to wrt, runs g and returns the
// gradients' values.
func run[T num.Float](t *testing.T, g *gorgonia.ExprGraph, loss *gorgonia.Node, wrt ...*gorgonia.Node) [][]T {
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
	out := make([][]T, len(grads))
	for k, gn := range grads {
		out[k] = append([]T(nil), gn.Value().Data().([]T)...)
	}
	return out
}

// TestSquare puts y = x² into a graph, takes gorgonia.Grad of Σ y⊙c with
// respect to x and compares the output with x² and the gradient with the
// analytic 2·x⊙c.
func TestSquare(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testSquare[float64](t) })
	t.Run("float32", func(t *testing.T) { testSquare[float32](t) })
}

func testSquare[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, c := randn[T](rng, 6), randn[T](rng, 6)
	g := gorgonia.NewGraph()
	xN, cN := node(g, "x", x, 2, 3), node(g, "c", c, 2, 3)
	out, err := ApplyFloat(square[float32](2), square[float64](2), xN)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !out[0].Shape().Eq(tensor.Shape{2, 3}) {
		t.Fatalf("outputs %v, want one of shape (2, 3)", out)
	}
	grads := run[T](t, g, dot(t, out[0], cN), xN)
	y := out[0].Value().Data().([]T)
	for i := range x {
		// x·x in T on both sides: equal.
		if y[i] != x[i]*x[i] {
			t.Errorf("y[%d] = %v, want %v", i, y[i], x[i]*x[i])
		}
		// gorgonia's gradient of Σ y⊙c with respect to y is c·1, exactly,
		// and Backward forms 2·x·c in the order written here: equal.
		if want := 2 * x[i] * c[i]; grads[0][i] != want {
			t.Errorf("dx[%d] = %v, want 2·x·c = %v", i, grads[0][i], want)
		}
	}
}

// TestScaled checks a module with a parameter, a non-differentiable input
// and two outputs: the gradients of the loss Σ y⊙cy + Σ s⊙cs with respect
// to x and w (split out of one gradient vector) against the analytic ones;
// then, with only s in the loss, that the unused output y contributes zero.
func TestScaled(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testScaled[float64](t, 1e-12) })
	// float32: the analytic sums below run in float64.
	t.Run("float32", func(t *testing.T) { testScaled[float32](t, 1e-5) })
}

func testScaled[T num.Float](t *testing.T, tol float64) {
	const r, c = 3, 4
	rng := rand.New(rand.NewPCG(3, 4))
	x, w := randn[T](rng, r*c), randn[T](rng, c)
	mask := []T{1, 0, 1}
	cy, cs := randn[T](rng, r*c), randn[T](rng, r)
	for _, both := range []bool{true, false} {
		g := gorgonia.NewGraph()
		xN, wN, mN := node(g, "x", x, r, c), node(g, "w", w, c), node(g, "mask", mask, r)
		out, err := ApplyFloat(scaled[float32](), scaled[float64](), xN, wN, mN)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || !out[0].Shape().Eq(tensor.Shape{r, c}) || !out[1].Shape().Eq(tensor.Shape{r}) {
			t.Fatalf("outputs %v, want shapes (3, 4) and (3)", out)
		}
		loss := dot(t, out[1], node(g, "cs", cs, r))
		if both {
			if loss, err = gorgonia.Add(dot(t, out[0], node(g, "cy", cy, r, c)), loss); err != nil {
				t.Fatal(err)
			}
		}
		got := run[T](t, g, loss, xN, wN)
		dx, dw := make([]float64, r*c), make([]float64, c)
		for i := range r {
			for j := range c {
				k := i*c + j
				dx[k] = 2 * float64(x[k]) * float64(cs[i])
				if both {
					dx[k] += float64(cy[k]) * float64(mask[i]) * float64(w[j])
					dw[j] += float64(cy[k]) * float64(mask[i]) * float64(x[k])
				}
			}
		}
		for k, want := range [][]float64{dx, dw} {
			for i := range want {
				if d := math.Abs(float64(got[k][i]) - want[i]); d > tol*(1+math.Abs(want[i])) {
					t.Errorf("both outputs %v: gradient %d [%d] = %v, want %v", both, k, i, got[k][i], want[i])
				}
			}
		}
	}
}

// TestMerge checks the op identity: the same module on the same nodes is
// one node, as gorgonia merges equal expressions; modules with other keys
// (or none) are other nodes.
func TestMerge(t *testing.T) {
	g := gorgonia.NewGraph()
	x := node(g, "x", []float64{1, 2}, 2)
	m := square[float64](1)
	a, err := Apply(m, x)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Apply(square[float64](1), x)
	if err != nil {
		t.Fatal(err)
	}
	other := square[float64](1)
	other.Key = "cube"
	c, err := Apply(other, x)
	if err != nil {
		t.Fatal(err)
	}
	if a[0] != b[0] {
		t.Error("equal modules on one node gave two nodes")
	}
	if a[0] == c[0] {
		t.Error("modules with different keys gave one node")
	}
	n1, n2 := square[float64](1), square[float64](1)
	n1.Key, n2.Key = "", ""
	d, err := Apply(n1, x)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Apply(n2, x)
	if err != nil {
		t.Fatal(err)
	}
	if d[0] == e[0] {
		t.Error("two modules without keys gave one node")
	}
}

// TestStopGradient checks that the gradient of Σ stop(x)⊙x is x (the path
// through StopGradient contributes nothing), where without it it is 2x.
func TestStopGradient(t *testing.T) {
	x := []float64{1, -2, 3}
	g := gorgonia.NewGraph()
	xN := node(g, "x", x, 3)
	s, err := StopGradient(xN)
	if err != nil {
		t.Fatal(err)
	}
	got := run[float64](t, g, dot(t, s, xN), xN)
	for i := range x {
		if got[0][i] != x[i] {
			t.Errorf("d/dx[%d] = %v, want %v", i, got[0][i], x[i])
		}
	}
	if _, err := StopGradient(nil); !errors.Is(err, num.ErrShape) {
		t.Errorf("StopGradient(nil): %v, want ErrShape", err)
	}
}

// TestApplyErrors checks the errors of Apply and ApplyFloat for bad nodes
// and bad modules.
func TestApplyErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	x := node(g, "x", []float64{1, 2, 3, 4, 5, 6}, 2, 3)
	v := node(g, "v", []float64{1, 2}, 2)
	x32 := node(g, "x32", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	xi := gorgonia.NewMatrix(g, tensor.Int, gorgonia.WithShape(2, 3), gorgonia.WithName("xi"))
	noKey := square[float64](2)
	noKey.ErrConfig = nil
	noOutputs := square[float64](2)
	noOutputs.Outputs = func([]tensor.Shape) ([]tensor.Shape, error) { return nil, nil }
	scalarOut := square[float64](2)
	scalarOut.Outputs = func([]tensor.Shape) ([]tensor.Shape, error) { return []tensor.Shape{{}}, nil }
	failing := square[float64](2)
	failing.Outputs = func([]tensor.Shape) ([]tensor.Shape, error) { return nil, errToy }
	noForward := square[float64](2)
	noForward.Forward = nil
	badRank := square[float64](0)
	for _, tc := range []struct {
		name  string
		apply func() ([]*gorgonia.Node, error)
		want  error
	}{
		{"no inputs", func() ([]*gorgonia.Node, error) { return Apply(square[float64](2)) }, num.ErrShape},
		{"two inputs", func() ([]*gorgonia.Node, error) { return Apply(square[float64](2), x, x) }, num.ErrShape},
		{"nil input", func() ([]*gorgonia.Node, error) { return Apply(square[float64](2), nil) }, errToy},
		{"nil input, no ErrConfig", func() ([]*gorgonia.Node, error) { return Apply(noKey, nil) }, num.ErrShape},
		{"rank", func() ([]*gorgonia.Node, error) { return Apply(square[float64](2), v) }, num.ErrShape},
		{"element type", func() ([]*gorgonia.Node, error) { return Apply(square[float64](2), x32) }, errToy},
		{"int element type", func() ([]*gorgonia.Node, error) { return ApplyFloat(square[float32](2), square[float64](2), xi) }, errToy},
		{"ApplyFloat nil input", func() ([]*gorgonia.Node, error) { return ApplyFloat(square[float32](2), square[float64](2), nil) }, errToy},
		{"ApplyFloat nil module", func() ([]*gorgonia.Node, error) { return ApplyFloat(nil, square[float64](2), x) }, num.ErrShape},
		{"no outputs", func() ([]*gorgonia.Node, error) { return Apply(noOutputs, x) }, num.ErrShape},
		{"scalar output", func() ([]*gorgonia.Node, error) { return Apply(scalarOut, x) }, num.ErrShape},
		{"Outputs fails", func() ([]*gorgonia.Node, error) { return Apply(failing, x) }, errToy},
		{"no Forward", func() ([]*gorgonia.Node, error) { return Apply(noForward, x) }, num.ErrShape},
		{"rank-0 input", func() ([]*gorgonia.Node, error) { return Apply(badRank, x) }, num.ErrShape},
		{"nil module", func() ([]*gorgonia.Node, error) { return Apply[float64](nil, x) }, num.ErrShape},
		{"mismatched shapes", func() ([]*gorgonia.Node, error) { return Apply(scaled[float64](), x, v, v) }, num.ErrShape},
	} {
		out, err := tc.apply()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v (nodes %v), want an error wrapping %v", tc.name, err, out, tc.want)
		}
	}
}

// TestRunErrors checks that a Forward or Backward that fails, or returns
// the wrong number or size of arrays, makes the graph's run fail with an
// error that wraps the cause, and that a module without Backward is not
// differentiable.
func TestRunErrors(t *testing.T) {
	three := func([][]T64, []tensor.Shape) ([][]T64, error) { return [][]T64{{1, 2, 3}}, nil }
	for _, tc := range []struct {
		name   string
		change func(m *Module[T64])
		want   error
	}{
		{"Forward fails", func(m *Module[T64]) {
			m.Forward = func([][]T64, []tensor.Shape) ([][]T64, error) { return nil, errToy }
		}, errToy},
		{"Forward short", func(m *Module[T64]) { m.Forward = three }, num.ErrShape},
		{"Forward two outputs", func(m *Module[T64]) {
			m.Forward = func(in [][]T64, _ []tensor.Shape) ([][]T64, error) { return [][]T64{in[0], in[0]}, nil }
		}, num.ErrShape},
		{"Backward fails", func(m *Module[T64]) {
			m.Backward = func(_ [][]T64, _ []tensor.Shape, _, _ [][]T64) ([][]T64, error) { return nil, errToy }
		}, errToy},
		{"Backward no gradients", func(m *Module[T64]) {
			m.Backward = func(_ [][]T64, _ []tensor.Shape, _, _ [][]T64) ([][]T64, error) { return nil, nil }
		}, num.ErrShape},
		{"Backward short gradient", func(m *Module[T64]) {
			m.Backward = func(_ [][]T64, _ []tensor.Shape, _, _ [][]T64) ([][]T64, error) { return [][]T64{{1}}, nil }
		}, num.ErrShape},
	} {
		g := gorgonia.NewGraph()
		x := node(g, "x", []float64{1, 2, 3, 4}, 4)
		m := square[float64](1)
		tc.change(m)
		out, err := Apply(m, x)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := gorgonia.Grad(gorgonia.Must(gorgonia.Sum(out[0])), x); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		vm := gorgonia.NewTapeMachine(g)
		err = vm.RunAll()
		vm.Close()
		// The tape machine's error type has Err, not Unwrap.
		if e, ok := err.(interface{ Err() error }); ok {
			err = e.Err()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: RunAll: %v, want an error wrapping %v", tc.name, err, tc.want)
		}
	}

	g := gorgonia.NewGraph()
	x := node(g, "x", []float64{1, 2}, 2)
	m := square[float64](1)
	m.Backward = nil
	out, err := Apply(m, x)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gorgonia.Grad(gorgonia.Must(gorgonia.Sum(out[0])), x); err == nil {
		t.Error("Grad through a module without Backward: no error")
	}
}

// T64 shortens the test's function literals.
type T64 = float64

// TestParams checks ParamNodes, ParamInputs and Bind, and their errors.
func TestParams(t *testing.T) {
	var a, b []float64
	a, b = []float64{1, 2, 3, 4, 5, 6}, []float64{7, 8}
	ps := []Param[float64]{{Name: "w", Shape: []int{2, 3}, Data: &a}, {Name: "b", Shape: []int{2}, Data: &b}}
	g := gorgonia.NewGraph()
	nodes, err := ParamNodes(g, ps)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range nodes {
		if n.Name() != ps[k].Name || !n.Shape().Eq(tensor.Shape(ps[k].Shape)) {
			t.Errorf("node %d is %s %v, want %s %v", k, n.Name(), n.Shape(), ps[k].Name, ps[k].Shape)
		}
	}
	nodes[0].Value().Data().([]float64)[0] = 100
	if a[0] != 1 {
		t.Error("ParamNodes shares storage with the parameter")
	}
	if in := ParamInputs(ps); len(in) != 2 || in[0] != (Input{Name: "w", Dims: 2}) || in[1] != (Input{Name: "b", Dims: 1}) {
		t.Errorf("ParamInputs = %v", in)
	}
	vals := [][]float64{{6, 5, 4, 3, 2, 1}, {0, 9}}
	if err := Bind(ps, vals); err != nil {
		t.Fatal(err)
	}
	if &a[0] != &vals[0][0] || &b[0] != &vals[1][0] {
		t.Error("Bind did not point the fields at the values")
	}
	if err := Bind(ps, vals[:1]); !errors.Is(err, num.ErrShape) {
		t.Errorf("Bind of one array for two: %v, want ErrShape", err)
	}
	if err := Bind(ps, [][]float64{{1}, {0, 9}}); !errors.Is(err, num.ErrShape) {
		t.Errorf("Bind of a short array: %v, want ErrShape", err)
	}
	short := []float64{1}
	if _, err := ParamNodes(g, []Param[float64]{{Name: "s", Shape: []int{2}, Data: &short}}); !errors.Is(err, num.ErrShape) {
		t.Errorf("ParamNodes of a short array: %v, want ErrShape", err)
	}
	if _, err := ParamNodes(g, []Param[float64]{{Name: "n", Shape: []int{2}}}); !errors.Is(err, num.ErrShape) {
		t.Errorf("ParamNodes without data: %v, want ErrShape", err)
	}
}
