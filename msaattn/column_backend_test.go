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

// columnCases run the composed path in one chunk and in many: with 1
// element of scratch every chunk is one residue column; with 2 columns'
// worth, 7 columns make chunks of 2, 2, 2 and 1 (batched products with
// strides, the attention reading a column chunk by layout).
func columnCases(cfg ColumnConfig) []backendCase {
	s := 5
	perColumn := 6 * s * cfg.Heads * cfg.HeadChannels
	return []backendCase{
		{"one chunk", s, 7, 0},
		{"chunks of one", s, 7, 1},
		{"ragged chunks", s, 7, 2 * perColumn},
		{"one sequence", 1, 4, 0},
	}
}

func TestColumnBackend(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testColumnBackend[float64](t) })
	t.Run("float32", func(t *testing.T) { testColumnBackend[float32](t) })
}

func testColumnBackend[T num.Float](t *testing.T) {
	cfg := smallColumn
	cm := cfg.MSAChannels
	for _, b := range backendtest.Backends[T](t) {
		for i, tc := range columnCases(cfg) {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(41, uint64(i)))
				mod := newColumn[T](t, rng, cfg)
				s, n := tc.s, tc.n
				msa := randn[T](rng, s*n*cm)
				mask := randMask[T](rng, s, n)
				if s >= 3 {
					mask = backendMask[T](rng, s, n)
				}
				want, err := mod.Forward(msa, mask, s, n, nil)
				if err != nil {
					t.Fatal(err)
				}
				c, err := NewColumn(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.composed, c.scratch = true, tc.scratch
				out := backendtest.Alloc(t, b.K, s*n*cm)
				if err := c.Forward(backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, mask), s, n, out); err != nil {
					t.Fatal(err)
				}
				got := backendtest.Get(t, b.K, out)
				e, tol := relErr(got, want), backendTol[T](b.Name)
				t.Logf("max |composed − CPU| / max |CPU| = %.3g (tolerance %g)", e, tol)
				if e > tol {
					t.Errorf("composed path differs from ColumnAttention.Forward by %.3g of its max, want ≤ %g", e, tol)
				}
			})
		}
	}
}

// TestColumnBackendDispatch checks that on the CPU backend Forward gives
// ColumnAttention.Forward's result exactly, from the parameters NewColumn
// copied.
func TestColumnBackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testColumnDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testColumnDispatch[float32](t) })
}

func testColumnDispatch[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 1))
	cfg := smallColumn
	mod := newColumn[T](t, rng, cfg)
	s, n := 5, 4
	msa, mask := randn[T](rng, s*n*cfg.MSAChannels), backendMask[T](rng, s, n)
	want, err := mod.Forward(msa, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewColumn(backend.CPU[T](), mod)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mod.Params.Attention.OutputB[0] += 1 // NewColumn took a copy
	out := make([]T, len(want))
	if err := c.Forward(backend.Host[T](msa), backend.Host[T](mask), s, n, backend.Host[T](out)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, want) {
		t.Errorf("Forward on host tensors differs from ColumnAttention.Forward by %.3g of its max, want bit-identical", relErr(out, want))
	}
}

func TestColumnBackendBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 1))
	cfg := smallColumn
	k := backend.CPU[float64]()
	mod := newColumn[float64](t, rng, cfg)
	s, n, cm := 3, 4, cfg.MSAChannels
	msa, mask := randn[float64](rng, s*n*cm), randMask[float64](rng, s, n)
	out := make([]float64, s*n*cm)
	h := func(x []float64) backend.Tensor[float64] { return backend.Host[float64](x) }
	badW := newColumn[float64](t, rng, cfg)
	badW.Params.Attention.OutputW = badW.Params.Attention.OutputW[1:]
	nanW := newColumn[float64](t, rng, cfg)
	nanW.Params.QueryNorm.Scale[0] = math.NaN()
	newErr := func(k backend.Kernels[float64], m *ColumnAttention[float64]) func() error {
		return func() error {
			c, err := NewColumn(k, m)
			c.Close()
			return err
		}
	}
	runErrCases(t, []errCase{
		{"nil backend", newErr(nil, mod), nil, "backend"},
		{"nil module", newErr(k, nil), nil, "nil module"},
		{"bad config", newErr(k, &ColumnAttention[float64]{Config: ColumnConfig{MSAChannels: 8}, Params: mod.Params}), nil, "Heads"},
		{"short parameter", newErr(k, badW), num.ErrShape, "output_w"},
		{"NaN parameter", newErr(k, nanW), num.ErrNaN, "query_norm//scale"},
	})
	for _, p := range forwardPaths {
		c, err := NewColumn(k, mod)
		if err != nil {
			t.Fatal(err)
		}
		c.composed = p.composed
		fwd := func(msa, mask backend.Tensor[float64], s, n int, out backend.Tensor[float64]) func() error {
			return func() error { return c.Forward(msa, mask, s, n, out) }
		}
		t.Run(p.name, func(t *testing.T) {
			runErrCases(t, []errCase{
				{"short msa", fwd(h(msa[1:]), h(mask), s, n, h(out)), num.ErrShape, "msa"},
				{"short mask", fwd(h(msa), h(mask[1:]), s, n, h(out)), num.ErrShape, "mask"},
				{"long out", fwd(h(msa), h(mask), s, n, h(append(out, 0))), num.ErrShape, "out"},
				{"nil msa", fwd(nil, h(mask), s, n, h(out)), num.ErrShape, "msa is missing"},
				{"no residues", fwd(h(nil), h(nil), s, 0, h(nil)), num.ErrShape, "residues"},
				{"NaN msa", fwd(h(withNaN(msa, 5)), h(mask), s, n, h(out)), num.ErrNaN, ""},
				{"NaN mask", fwd(h(msa), h(withNaN(mask, 2)), s, n, h(out)), num.ErrNaN, ""},
			})
		})
		c.Close()
		runErrCases(t, []errCase{
			{fmt.Sprintf("%s after Close", p.name), fwd(h(msa), h(mask), s, n, h(out)), nil, "closed"},
		})
	}
}
