package alphafold

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// randomOuterProductMean returns an outer product mean for cfg with random
// non-degenerate parameters (a fresh one has zero output weights).
func randomOuterProductMean[T num.Float](t *testing.T, cfg OuterProductMeanConfig, seed uint64) *OuterProductMeanParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 8))
	p, err := NewOuterProductMeanParams[T](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomizeEvo(rng, p.tensors())
	return p
}

// TestOuterProductMeanBackend checks the composed backend path of
// OuterProductMean against OuterProductMeanParams.Forward on every backend
// of the build, in one chunk of residues and in chunks with a partial last
// one, with a mask that has zeros, a fully masked sequence and a residue
// absent from every sequence (whose pairs get output_b/eps, 1000 times the
// bias), and checks that the CPU dispatch path returns the CPU forward's
// result exactly.
func TestOuterProductMeanBackend(t *testing.T) {
	// Composed vs CPU. On the CPU backend the products are the same
	// kernels on the same operands; only the normalisation differs, x/(n+eps)
	// in place of x·(1/(n+eps)), by ≤ 1 ulp. On CUDA the sums (≤ c² = 9
	// products per output channel, ≤ S = 5 per outer product, c_m = 8 per
	// projection) run in another order. float64: ~1e-15 of the output's
	// max, bounded by 1e-12; float32: ~1e-6, bounded by 1e-5.
	t.Run("float64", func(t *testing.T) { testOuterProductMeanBackend[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testOuterProductMeanBackend[float32](t, 1e-5) })
}

func testOuterProductMeanBackend[T num.Float](t *testing.T, tol float64) {
	const s, n = 5, 7
	for _, chunk := range []int{0, 3} {
		cfg := OuterProductMeanConfig{CM: 8, C: 3, CZ: 6, Eps: 1e-3, Chunk: chunk}
		p := randomOuterProductMean[T](t, cfg, 31)
		msa := convertEvo[T](bkRandom(s*n*cfg.CM, 32))
		mask := convertEvo[T](bkMask(s, n, 33))
		want := make([]T, n*n*cfg.CZ)
		if err := p.Forward(msa, mask, s, n, want, nil); err != nil {
			t.Fatal(err)
		}
		for _, be := range backendtest.Backends[T](t) {
			k := be.K
			m, err := NewOuterProductMean(k, cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			m.composed = true
			out := backendtest.Alloc(t, k, n*n*cfg.CZ)
			if err := m.Forward(backendtest.Put(t, k, msa), backendtest.Put(t, k, mask), s, n, out); err != nil {
				t.Fatalf("%s chunk %d: %v", be.Name, chunk, err)
			}
			got := backendtest.Get(t, k, out)
			if e := bkRelErr(got, want); e > tol {
				t.Errorf("%s chunk %d: composed path differs from the CPU forward by %.3g of the output's max, want ≤ %g", be.Name, chunk, e, tol)
			} else {
				t.Logf("%s chunk %d: max error %.3g of the output's max", be.Name, chunk, e)
			}
			m.Close()
		}

		m, err := NewOuterProductMean(backend.CPU[T](), cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]T, n*n*cfg.CZ)
		if err := m.Forward(backend.Host[T](msa), backend.Host[T](mask), s, n, backend.Host[T](got)); err != nil {
			t.Fatal(err)
		}
		bkExact(t, "outer product mean dispatch", got, want)
		m.Close()
	}
}

// TestOuterProductMeanBackendErrors checks the constructor's and Forward's
// errors for bad configurations, parameters and lengths.
func TestOuterProductMeanBackendErrors(t *testing.T) {
	cfg := OuterProductMeanConfig{CM: 4, C: 2, CZ: 3, Eps: 1e-3}
	p := randomOuterProductMean[float64](t, cfg, 41)
	k := backend.CPU[float64]()
	m, err := NewOuterProductMean(k, cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const s, n = 2, 3
	h := func(l int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, l)) }
	msa, mask, out := h(s*n*4), h(s*n), h(n*n*3)
	wide := cfg
	wide.CZ = 4
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"nil parameters", ErrConfig, func() error { _, err := NewOuterProductMean[float64](k, cfg, nil); return err }},
		{"negative eps", ErrConfig, func() error {
			bad := cfg
			bad.Eps = -1
			_, err := NewOuterProductMean(k, bad, p)
			return err
		}},
		{"config wider than the arrays", num.ErrShape, func() error { _, err := NewOuterProductMean(k, wide, p); return err }},
		{"short msa", num.ErrShape, func() error { return m.Forward(h(s*n*4-1), mask, s, n, out) }},
		{"short mask", num.ErrShape, func() error { return m.Forward(msa, h(s*n-1), s, n, out) }},
		{"missing mask", num.ErrShape, func() error { return m.Forward(msa, nil, s, n, out) }},
		{"short output", num.ErrShape, func() error { return m.Forward(msa, mask, s, n, h(n*n*3-1)) }},
		{"no sequences", num.ErrShape, func() error { return m.Forward(msa, mask, 0, n, out) }},
		{"closed", ErrConfig, func() error {
			c, err := NewOuterProductMean(k, cfg, p)
			if err != nil {
				return err
			}
			c.Close()
			return c.Forward(msa, mask, s, n, out)
		}},
	} {
		if err := tc.run(); !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want one wrapping %v", tc.name, err, tc.err)
		}
	}
}
