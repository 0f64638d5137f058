package alphafold

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// bkArrays maps the names of a parameter listing to its arrays, for
// comparing gradients.
func bkArrays[T num.Float](ts []evoTensor[T]) map[string][]T {
	m := make(map[string][]T, len(ts))
	for _, t := range ts {
		m[t.name] = *t.data
	}
	return m
}

// bkGradErrors compares every array of got with want (same names) and
// returns the largest error relative to each array's own max |want|, with
// the name of the array that has it; it fails the test if the names differ
// or a value is not finite.
//
// An array whose max is below 1e-3 of the largest array's max is measured
// against that 1e-3 instead: such an array can vanish analytically and then
// holds only round-off of the size of the other gradients' terms, which no
// two summation orders reproduce.
func bkGradErrors[T num.Float](t *testing.T, got, want map[string][]T) (worst float64, name string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	var top float64
	for k, w := range want {
		keys = append(keys, k)
		top = max(top, bkMaxAbs(w))
	}
	slices.Sort(keys)
	if len(got) != len(want) {
		t.Fatalf("%d gradient arrays, want %d", len(got), len(want))
	}
	for _, k := range keys {
		g, ok := got[k]
		if !ok || len(g) != len(want[k]) {
			t.Fatalf("gradient %s: missing or of length %d, want %d", k, len(g), len(want[k]))
		}
		var d float64
		for i, v := range g {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("gradient %s[%d] = %v", k, i, v)
			}
			d = max(d, math.Abs(float64(v)-float64(want[k][i])))
		}
		if e := d / max(bkMaxAbs(want[k]), 1e-3*top, 1e-300); e >= worst {
			worst, name = e, k
		}
	}
	return worst, name
}

// bkMaxAbs returns max |x|.
func bkMaxAbs[T num.Float](x []T) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// bkCheckDoubled checks two ≈ 2·one within tol of max |2·one|, and that
// one is not zero.
func bkCheckDoubled[T num.Float](t *testing.T, what string, two, one []T, tol float64) {
	t.Helper()
	want := make([]T, len(one))
	for i, v := range one {
		want[i] = 2 * v
	}
	if bkMaxAbs(want) == 0 {
		t.Errorf("%s: one Backward call gives zeros", what)
	}
	if e := bkRelErr(two, want); e > tol {
		t.Errorf("%s after two Backward calls: relative error %.3g vs twice one call's", what, e)
	}
}

// transitionMask returns a mask [rows] with zeros and rows 14–20 (a whole
// sequence of 7) masked, as TestTransitionBackend uses.
func transitionMask[T num.Float](rows int) []T {
	mask := make([]T, rows)
	for r := range mask {
		if r%5 != 2 && (r < 14 || r >= 21) {
			mask[r] = 1
		}
	}
	return mask
}

// transitionGradCases are the configurations of the gradient tests: one
// chunk and chunks with a partial last one, with and without a mask.
var transitionGradCases = []struct {
	name   string
	chunk  int
	masked bool
}{
	{"one chunk", 0, false},
	{"one chunk masked", 0, true},
	{"chunks of 4 masked", 4, true},
	{"chunks of 6", 6, false},
}

// TestTransitionBackendBackward checks the composed path of
// Transition.ForwardTape and Backward against TransitionParams.Forward and
// Backward on every backend of the build: ForwardTape's out is Forward's
// bit for bit, and dx and every parameter gradient agree with the CPU
// backward.
func TestTransitionBackendBackward(t *testing.T) {
	// The composed path differentiates the same function with the same
	// kernels on the CPU backend; only the parameter gradients are summed
	// in their own accumulators and added to grad at the end (exact on a
	// zero grad). On CUDA the products (≤ Factor·C = 18 terms, or ≤ rows =
	// 35 for the weight gradients) and the layer-norm reductions run in
	// another order. float64 (ulp 1.1e-16): measured 0 on the CPU backend
	// and ≤ 4.5e-16 of each array's max on the emulated CUDA backend;
	// 1e-12 leaves room for a GPU's summation orders. float32 (ulp 6e-8):
	// measured 0 on the CPU backend and ≤ 2.4e-7 on the emulated CUDA one;
	// 1e-5 leaves a margin of 40× for cuBLAS's orders compounded through
	// the layer norm's backward pass, which scales errors by 1/σ of a row.
	t.Run("float64", func(t *testing.T) { testTransitionBackward[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testTransitionBackward[float32](t, 1e-5) })
}

func testTransitionBackward[T num.Float](t *testing.T, tol float64) {
	const rows = 5 * 7
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range transitionGradCases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				cfg := TransitionConfig{C: 6, Factor: 3, Chunk: tc.chunk}
				p := randomTransition[T](t, cfg, 11)
				x := convertEvo[T](bkRandom(rows*cfg.C, 12))
				dout := convertEvo[T](bkRandom(rows*cfg.C, 13))
				var mask []T
				if tc.masked {
					mask = transitionMask[T](rows)
				}
				var c TransitionCache[T]
				wantOut, wantDx, wantG := make([]T, len(x)), make([]T, len(x)), p.ZerosLike()
				if err := p.Forward(x, rows, mask, wantOut, &c); err != nil {
					t.Fatal(err)
				}
				if err := p.Backward(&c, dout, wantDx, wantG); err != nil {
					t.Fatal(err)
				}

				m, err := NewTransition(b.K, cfg, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = true
				xt := backendtest.Put(t, b.K, x)
				var mt backend.Tensor[T]
				if mask != nil {
					mt = backendtest.Put(t, b.K, mask)
				}
				out, fwd := backendtest.Alloc(t, b.K, len(x)), backendtest.Alloc(t, b.K, len(x))
				if err := m.Forward(xt, mt, rows, fwd); err != nil {
					t.Fatal(err)
				}
				var tape TransitionTape[T]
				defer tape.Free()
				if err := m.ForwardTape(xt, mt, rows, out, &tape); err != nil {
					t.Fatal(err)
				}
				bkExact(t, "ForwardTape's out vs Forward's", backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd))
				dx, g := backendtest.Alloc(t, b.K, len(x)), p.ZerosLike()
				if err := m.Backward(&tape, backendtest.Put(t, b.K, dout), dx, g); err != nil {
					t.Fatal(err)
				}
				eDx := bkRelErr(backendtest.Get(t, b.K, dx), wantDx)
				eG, worst := bkGradErrors(t, bkArrays(g.tensors("t")), bkArrays(wantG.tensors("t")))
				t.Logf("dx error %.2e; parameter gradients %.2e (%s)", eDx, eG, worst)
				if eDx > tol {
					t.Errorf("dx: relative error %.3g vs TransitionParams.Backward > %.0e", eDx, tol)
				}
				if eG > tol {
					t.Errorf("gradient %s: relative error %.3g vs TransitionParams.Backward > %.0e", worst, eG, tol)
				}
			})
		}
	}
}

// TestTransitionBackendBackwardDispatch checks that ForwardTape and
// Backward on CPU tensors are TransitionParams.Forward and Backward, bit
// for bit.
func TestTransitionBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testTransitionBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testTransitionBackwardDispatch[float32](t) })
}

func testTransitionBackwardDispatch[T num.Float](t *testing.T) {
	const rows = 5 * 7
	k := backend.CPU[T]()
	for _, tc := range transitionGradCases {
		cfg := TransitionConfig{C: 6, Factor: 3, Chunk: tc.chunk}
		p := randomTransition[T](t, cfg, 21)
		x := convertEvo[T](bkRandom(rows*cfg.C, 22))
		dout := convertEvo[T](bkRandom(rows*cfg.C, 23))
		var mask []T
		if tc.masked {
			mask = transitionMask[T](rows)
		}
		var c TransitionCache[T]
		wantOut, wantDx, wantG := make([]T, len(x)), make([]T, len(x)), p.ZerosLike()
		if err := p.Forward(x, rows, mask, wantOut, &c); err != nil {
			t.Fatal(err)
		}
		if err := p.Backward(&c, dout, wantDx, wantG); err != nil {
			t.Fatal(err)
		}
		m, err := NewTransition(k, cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		var tape TransitionTape[T]
		out, dx, g := make([]T, len(x)), make([]T, len(x)), p.ZerosLike()
		if err := m.ForwardTape(backend.Host[T](x), backend.Host[T](mask), rows, backend.Host[T](out), &tape); err != nil {
			t.Fatal(err)
		}
		if err := m.Backward(&tape, backend.Host[T](dout), backend.Host[T](dx), g); err != nil {
			t.Fatal(err)
		}
		if !tape.host {
			t.Errorf("%s: the tape is not of the CPU path", tc.name)
		}
		bkExact(t, tc.name+" out", out, wantOut)
		bkExact(t, tc.name+" dx", dx, wantDx)
		want := bkArrays(wantG.tensors("t"))
		for name, got := range bkArrays(g.tensors("t")) {
			bkExact(t, tc.name+" gradient "+name, got, want[name])
		}
		tape.Free()
		m.Close()
	}
}

// TestTransitionBackendBackwardAccumulates checks that Backward adds to dx
// and grad: two calls on the same tape give twice one call's values, and
// that dx and grad are optional.
func TestTransitionBackendBackwardAccumulates(t *testing.T) {
	// Both calls compute the same values in the same order and x + x is
	// exact, so the CPU backend (both paths) doubles exactly; 1e-15 of the
	// array's max allows a GPU backend an order-dependent last bit.
	const rows, tol = 5 * 7, 1e-15
	for _, b := range backendtest.Backends[float64](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				cfg := TransitionConfig{C: 6, Factor: 3, Chunk: 4}
				p := randomTransition[float64](t, cfg, 31)
				k := b.K
				m, err := NewTransition(k, cfg, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = composed
				var tape TransitionTape[float64]
				defer tape.Free()
				x := backendtest.Put(t, k, bkRandom(rows*cfg.C, 32))
				mask := backendtest.Put(t, k, transitionMask[float64](rows))
				if err := m.ForwardTape(x, mask, rows, backendtest.Alloc(t, k, rows*cfg.C), &tape); err != nil {
					t.Fatal(err)
				}
				dout := backendtest.Put(t, k, bkRandom(rows*cfg.C, 33))
				dx1, dx2 := backendtest.Alloc(t, k, rows*cfg.C), backendtest.Alloc(t, k, rows*cfg.C)
				g1, g2 := p.ZerosLike(), p.ZerosLike()
				for _, c := range []struct {
					dx backend.Tensor[float64]
					g  *TransitionParams[float64]
				}{{dx1, g1}, {dx2, g2}, {dx2, g2}} {
					if err := m.Backward(&tape, dout, c.dx, c.g); err != nil {
						t.Fatal(err)
					}
				}
				bkCheckDoubled(t, "dx", backendtest.Get(t, k, dx2), backendtest.Get(t, k, dx1), tol)
				two := bkArrays(g2.tensors("t"))
				for name, one := range bkArrays(g1.tensors("t")) {
					bkCheckDoubled(t, name, two[name], one, tol)
				}
				if err := m.Backward(&tape, dout, nil, nil); err != nil {
					t.Errorf("Backward with no dx and no grad: %v", err)
				}
				g3 := p.ZerosLike()
				if err := m.Backward(&tape, dout, nil, g3); err != nil {
					t.Errorf("Backward with no dx: %v", err)
				}
				want := bkArrays(g1.tensors("t"))
				for name, got := range bkArrays(g3.tensors("t")) {
					bkExact(t, "gradient without dx "+name, got, want[name])
				}
				dx3 := backendtest.Alloc(t, k, rows*cfg.C)
				if err := m.Backward(&tape, dout, dx3, nil); err != nil {
					t.Fatal(err)
				}
				bkExact(t, "dx without grad", backendtest.Get(t, k, dx3), backendtest.Get(t, k, dx1))
			})
		}
	}
}

// TestTransitionBackendBackwardErrors checks the errors of ForwardTape and
// Backward on both paths.
func TestTransitionBackendBackwardErrors(t *testing.T) {
	cfg := TransitionConfig{C: 4, Factor: 2}
	p := randomTransition[float64](t, cfg, 41)
	k := backend.CPU[float64]()
	const rows = 6
	h := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	x := backend.Host[float64](bkRandom(rows*4, 42))
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		m, err := NewTransition(k, cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		other, err := NewTransition(k, cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		other.composed = composed
		var tape, otherTape TransitionTape[float64]
		if err := m.ForwardTape(x, nil, rows, h(rows*4), &tape); err != nil {
			t.Fatal(err)
		}
		if err := other.ForwardTape(x, nil, rows, h(rows*4), &otherTape); err != nil {
			t.Fatal(err)
		}
		wrong := randomTransition[float64](t, TransitionConfig{C: 4, Factor: 3}, 43)
		for _, tc := range []struct {
			name string
			want error
			run  func() error
		}{
			{"nil tape", ErrConfig, func() error { return m.Backward(nil, h(rows*4), nil, nil) }},
			{"empty tape", ErrConfig, func() error { return m.Backward(new(TransitionTape[float64]), h(rows*4), nil, nil) }},
			{"tape of another module", ErrConfig, func() error { return m.Backward(&otherTape, h(rows*4), nil, nil) }},
			{"missing dout", num.ErrShape, func() error { return m.Backward(&tape, nil, nil, nil) }},
			{"short dout", num.ErrShape, func() error { return m.Backward(&tape, h(rows*4-1), nil, nil) }},
			{"long dx", num.ErrShape, func() error { return m.Backward(&tape, h(rows*4), h(rows*4+1), nil) }},
			{"grad of another config", ErrConfig, func() error { return m.Backward(&tape, h(rows*4), nil, wrong) }},
			{"ForwardTape/nil tape", ErrConfig, func() error { return m.ForwardTape(x, nil, rows, h(rows*4), nil) }},
			{"ForwardTape/short out", num.ErrShape, func() error {
				var tp TransitionTape[float64]
				return m.ForwardTape(x, nil, rows, h(rows*4-1), &tp)
			}},
			{"ForwardTape/long mask", num.ErrShape, func() error {
				var tp TransitionTape[float64]
				return m.ForwardTape(x, h(rows+1), rows, h(rows*4), &tp)
			}},
			{"ForwardTape/negative rows", num.ErrShape, func() error {
				var tp TransitionTape[float64]
				return m.ForwardTape(h(0), nil, -1, h(0), &tp)
			}},
		} {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Errorf("%s%s: error %v, want one wrapping %v", name, tc.name, err, tc.want)
			}
		}
		// A failed ForwardTape leaves the tape empty.
		if err := m.ForwardTape(x, nil, rows, h(1), &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short out: error %v", name, err)
		}
		if err := m.Backward(&tape, h(rows*4), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after a failed ForwardTape: error %v, want ErrConfig", name, err)
		}
		// A freed tape holds nothing.
		if err := m.ForwardTape(x, nil, rows, h(rows*4), &tape); err != nil {
			t.Fatal(err)
		}
		tape.Free()
		if err := m.Backward(&tape, h(rows*4), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after Free: error %v, want ErrConfig", name, err)
		}
		// Zero rows is an empty problem, not an error.
		if err := m.ForwardTape(h(0), nil, 0, h(0), &tape); err != nil {
			t.Errorf("%sForwardTape with 0 rows: %v", name, err)
		}
		if err := m.Backward(&tape, h(0), h(0), p.ZerosLike()); err != nil {
			t.Errorf("%sBackward with 0 rows: %v", name, err)
		}
		m.Close()
		if err := m.Backward(&otherTape, h(rows*4), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward on a closed module: error %v, want ErrConfig", name, err)
		}
		if err := m.ForwardTape(x, nil, rows, h(rows*4), &tape); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape on a closed module: error %v, want ErrConfig", name, err)
		}
		tape.Free()
		otherTape.Free()
		other.Close()
	}
	var zero TransitionTape[float64]
	zero.Free() // a zero tape may be freed
}
