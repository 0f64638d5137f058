package alphafold

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// randomTransition returns a transition for cfg with random non-degenerate
// parameters (a fresh one has zero output weights).
func randomTransition[T num.Float](t *testing.T, cfg TransitionConfig, seed uint64) *TransitionParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	p, err := NewTransitionParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomizeEvo(rng, p.tensors("t"))
	return p
}

// TestTransitionBackend checks the composed backend path of Transition
// against TransitionParams.Forward on every backend of the build, with and
// without a mask (zeros and a fully masked row block), in one chunk and in
// chunks with a partial last one, and checks that the CPU dispatch path
// returns the CPU forward's result exactly.
func TestTransitionBackend(t *testing.T) {
	// Composed vs CPU: the same kernels in the same order on the CPU
	// backend (0 difference expected); on CUDA, a layer norm and two
	// products of ≤ Factor·C = 18 terms summed in another order: float64
	// round-off is ~1e-15 of the output's max, so 1e-12 leaves a wide
	// margin; float32 round-off is ~1e-6, bounded by 1e-5.
	t.Run("float64", func(t *testing.T) { testTransitionBackend[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testTransitionBackend[float32](t, 1e-5) })
}

func testTransitionBackend[T num.Float](t *testing.T, tol float64) {
	const rows = 5 * 7
	for _, tc := range []struct {
		name   string
		chunk  int
		masked bool
	}{
		{"one chunk", 0, false},
		{"one chunk masked", 0, true},
		{"chunks of 4 masked", 4, true},
		{"chunks of 6", 6, false},
	} {
		cfg := TransitionConfig{C: 6, Factor: 3, Chunk: tc.chunk}
		p := randomTransition[T](t, cfg, 11)
		in := bkRandom(rows*cfg.C, 12)
		x := convertEvo[T](in)
		var mask []T
		if tc.masked {
			mask = make([]T, rows)
			for r := range mask {
				if r%5 != 2 && (r < 14 || r >= 21) { // zeros, and rows 14–20 (a whole sequence) masked
					mask[r] = 1
				}
			}
		}
		want := make([]T, rows*cfg.C)
		if err := p.Forward(x, rows, mask, want, nil); err != nil {
			t.Fatal(err)
		}
		for _, be := range backendtest.Backends[T](t) {
			k := be.K
			m, err := NewTransition(k, cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			m.composed = true
			var dm backend.Tensor[T]
			if mask != nil {
				dm = backendtest.Put(t, k, mask)
			}
			out := backendtest.Alloc(t, k, rows*cfg.C)
			if err := m.Forward(backendtest.Put(t, k, x), dm, rows, out); err != nil {
				t.Fatalf("%s %s: %v", be.Name, tc.name, err)
			}
			got := backendtest.Get(t, k, out)
			if e := bkRelErr(got, want); e > tol {
				t.Errorf("%s %s: composed path differs from the CPU forward by %.3g of the output's max, want ≤ %g", be.Name, tc.name, e, tol)
			} else {
				t.Logf("%s %s: max error %.3g of the output's max", be.Name, tc.name, e)
			}
			m.Close()
		}

		// Dispatch on CPU tensors: the CPU forward itself.
		m, err := NewTransition(backend.CPU[T](), cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]T, rows*cfg.C)
		var hm backend.Tensor[T]
		if mask != nil {
			hm = backend.Host[T](mask)
		}
		if err := m.Forward(backend.Host[T](x), hm, rows, backend.Host[T](got)); err != nil {
			t.Fatal(err)
		}
		bkExact(t, tc.name+" dispatch", got, want)
		m.Close()
	}
}

// TestTransitionBackendErrors checks the constructor's and Forward's
// errors for bad configurations, parameters and lengths.
func TestTransitionBackendErrors(t *testing.T) {
	cfg := TransitionConfig{C: 4, Factor: 2}
	p := randomTransition[float64](t, cfg, 21)
	k := backend.CPU[float64]()
	m, err := NewTransition(k, cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const rows = 6
	x, out := backend.Host[float64](make([]float64, rows*4)), backend.Host[float64](make([]float64, rows*4))
	short := backend.Host[float64](make([]float64, rows*4-1))
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"nil parameters", ErrConfig, func() error { _, err := NewTransition[float64](k, cfg, nil); return err }},
		{"factor 0", ErrConfig, func() error { _, err := NewTransition(k, TransitionConfig{C: 4}, p); return err }},
		{"config wider than the arrays", num.ErrShape, func() error {
			_, err := NewTransition(k, TransitionConfig{C: 5, Factor: 2}, p)
			return err
		}},
		{"short input", num.ErrShape, func() error { return m.Forward(short, nil, rows, out) }},
		{"short output", num.ErrShape, func() error { return m.Forward(x, nil, rows, short) }},
		{"missing input", num.ErrShape, func() error { return m.Forward(nil, nil, rows, out) }},
		{"short mask", num.ErrShape, func() error {
			return m.Forward(x, backend.Host[float64](make([]float64, rows-1)), rows, out)
		}},
		{"negative rows", num.ErrShape, func() error { return m.Forward(x, nil, -1, out) }},
		{"closed", ErrConfig, func() error {
			c, err := NewTransition(k, cfg, p)
			if err != nil {
				return err
			}
			c.Close()
			return c.Forward(x, nil, rows, out)
		}},
	} {
		if err := tc.run(); !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want one wrapping %v", tc.name, err, tc.err)
		}
	}
}
