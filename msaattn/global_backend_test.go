package msaattn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// globalCases run the composed path in one chunk and in many: with 1
// element of scratch every chunk is one sequence, so the masked sums,
// the counts of present sequences and the keys and values accumulate over
// chunks and pass 2 recomputes the layer norm; with 2 sequences' worth, 5
// sequences make chunks of 2, 2 and 1.
func globalCases(cfg GlobalColumnConfig) []backendCase {
	n := 7
	perSeq := n * (cfg.MSAChannels + 2*cfg.Heads*cfg.HeadChannels)
	return []backendCase{
		{"one chunk", 5, n, 0},
		{"chunks of one", 5, n, 1},
		{"ragged chunks", 5, n, 2 * perSeq},
		{"one residue", 4, 1, 0},
	}
}

func TestGlobalColumnBackend(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGlobalBackend[float64](t) })
	t.Run("float32", func(t *testing.T) { testGlobalBackend[float32](t) })
}

func testGlobalBackend[T num.Float](t *testing.T) {
	cfg := smallGlobal
	ce := cfg.MSAChannels
	for _, b := range backendtest.Backends[T](t) {
		for i, tc := range globalCases(cfg) {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(51, uint64(i)))
				mod := newGlobal[T](t, rng, cfg)
				s, n := tc.s, tc.n
				msa := randn[T](rng, s*n*ce)
				mask := randMask[T](rng, s, n)
				if n >= 3 {
					mask = backendMask[T](rng, s, n)
				}
				want, err := mod.Forward(msa, mask, s, n, nil)
				if err != nil {
					t.Fatal(err)
				}
				g, err := NewGlobalColumn(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				g.composed, g.scratch = true, tc.scratch
				out := backendtest.Alloc(t, b.K, s*n*ce)
				if err := g.Forward(backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, mask), s, n, out); err != nil {
					t.Fatal(err)
				}
				got := backendtest.Get(t, b.K, out)
				e, tol := relErr(got, want), backendTol[T](b.Name)
				t.Logf("max |composed − CPU| / max |CPU| = %.3g (tolerance %g)", e, tol)
				if e > tol {
					t.Errorf("composed path differs from GlobalColumnAttention.Forward by %.3g of its max, want ≤ %g", e, tol)
				}
			})
		}
	}
}

// TestGlobalColumnBackendManySequences runs the composed path on more
// sequences than one chunk may count (onesLen), as the extra-MSA stack
// does, with fractional mask weights (AF2's mask_mean takes any weights).
func TestGlobalColumnBackendManySequences(t *testing.T) {
	cfg := smallGlobal
	rng := rand.New(rand.NewPCG(52, 1))
	mod := newGlobal[float64](t, rng, cfg)
	s, n := onesLen+300, 2
	msa := randn[float64](rng, s*n*cfg.MSAChannels)
	mask := make([]float64, s*n)
	for i := range mask {
		mask[i] = rng.Float64()
	}
	want, err := mod.Forward(msa, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := backend.CPU[float64]()
	g, err := NewGlobalColumn(k, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.composed = true
	out := make([]float64, len(want))
	if err := g.Forward(backend.Host[float64](msa), backend.Host[float64](mask), s, n, backend.Host[float64](out)); err != nil {
		t.Fatal(err)
	}
	// As in backendTol: a few ulp through sums of ≤ 8 products; the
	// masked sums over S = 1324 sequences in a product's order add
	// √S·ulp ≈ 1e-14 of q̄: 1e-12.
	e := relErr(out, want)
	t.Logf("max |composed − CPU| / max |CPU| = %.3g", e)
	if e > 1e-12 {
		t.Errorf("composed path differs from GlobalColumnAttention.Forward by %.3g of its max, want ≤ 1e-12", e)
	}
}

// TestGlobalColumnBackendDispatch checks that on the CPU backend Forward
// gives GlobalColumnAttention.Forward's result exactly, from the
// parameters NewGlobalColumn copied.
func TestGlobalColumnBackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGlobalDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testGlobalDispatch[float32](t) })
}

func testGlobalDispatch[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 1))
	cfg := smallGlobal
	mod := newGlobal[T](t, rng, cfg)
	s, n := 6, 4
	msa, mask := randn[T](rng, s*n*cfg.MSAChannels), backendMask[T](rng, s, n)
	want, err := mod.Forward(msa, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGlobalColumn(backend.CPU[T](), mod)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mod.Params.OutputB[0] += 1 // NewGlobalColumn took a copy
	out := make([]T, len(want))
	if err := g.Forward(backend.Host[T](msa), backend.Host[T](mask), s, n, backend.Host[T](out)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, want) {
		t.Errorf("Forward on host tensors differs from GlobalColumnAttention.Forward by %.3g of its max, want bit-identical", relErr(out, want))
	}
}

func TestGlobalColumnBackendBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(54, 1))
	cfg := smallGlobal
	k := backend.CPU[float64]()
	mod := newGlobal[float64](t, rng, cfg)
	s, n, ce := 3, 4, cfg.MSAChannels
	msa, mask := randn[float64](rng, s*n*ce), randMask[float64](rng, s, n)
	out := make([]float64, s*n*ce)
	h := func(x []float64) backend.Tensor[float64] { return backend.Host[float64](x) }
	badW := newGlobal[float64](t, rng, cfg)
	badW.Params.KeyW = append(badW.Params.KeyW, 0)
	infW := newGlobal[float64](t, rng, cfg)
	infW.Params.ValueW[2] = math.Inf(-1)
	newErr := func(k backend.Kernels[float64], m *GlobalColumnAttention[float64]) func() error {
		return func() error {
			g, err := NewGlobalColumn(k, m)
			g.Close()
			return err
		}
	}
	runErrCases(t, []errCase{
		{"nil backend", newErr(nil, mod), nil, "backend"},
		{"nil module", newErr(k, nil), nil, "nil module"},
		{"short parameter", newErr(k, badW), num.ErrShape, "key_w"},
		{"Inf parameter", newErr(k, infW), num.ErrNaN, "value_w"},
	})
	for _, p := range forwardPaths {
		g, err := NewGlobalColumn(k, mod)
		if err != nil {
			t.Fatal(err)
		}
		g.composed = p.composed
		fwd := func(msa, mask backend.Tensor[float64], s, n int, out backend.Tensor[float64]) func() error {
			return func() error { return g.Forward(msa, mask, s, n, out) }
		}
		t.Run(p.name, func(t *testing.T) {
			runErrCases(t, []errCase{
				{"short msa", fwd(h(msa[1:]), h(mask), s, n, h(out)), num.ErrShape, "msa"},
				{"short mask", fwd(h(msa), h(mask[1:]), s, n, h(out)), num.ErrShape, "mask"},
				{"short out", fwd(h(msa), h(mask), s, n, h(out[1:])), num.ErrShape, "out"},
				{"nil mask", fwd(h(msa), nil, s, n, h(out)), num.ErrShape, "mask is missing"},
				{"wrong residues", fwd(h(msa), h(mask), s, n+1, h(out)), num.ErrShape, "msa has"},
				{"negative sequences", fwd(h(msa), h(mask), -s, n, h(out)), num.ErrShape, "sequences"},
				{"NaN msa", fwd(h(withNaN(msa, 5)), h(mask), s, n, h(out)), num.ErrNaN, ""},
			})
		})
		g.Close()
		runErrCases(t, []errCase{
			{fmt.Sprintf("%s after Close", p.name), fwd(h(msa), h(mask), s, n, h(out)), nil, "closed"},
		})
	}
}
