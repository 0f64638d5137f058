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

// backendCase is one run of a module's composed path: the sizes and the
// scratch limit in elements (0: the default, one chunk; small: many
// chunks, the last one shorter).
type backendCase struct {
	name    string
	s, n    int
	scratch int
}

// backendTol returns the tolerance of the composed path on backend name
// against the CPU forward, relative to the largest |value| of the CPU
// result.
//
// On the CPU backend the composed path runs the CPU kernels in the CPU
// forward's order; it differs only where the kernels round differently:
// the queries' c^-1/2 is the product's alpha instead of a multiplication
// after it, a bias is the product's starting value instead of being added
// to it, DivRows divides where the CPU multiplies by the reciprocal, and
// the mask-weighted sums of global attention run in a product's order.
// Each is a few ulp of a value, carried through a layer norm and sums of
// at most c_m (8) products: about 1e-15 of the output in float64, so
// 1e-12 keeps three decades of margin; in float32 (ulp 6e-8) the same
// reasoning gives 1e-6, and 1e-5 allows the exponentials of the softmax
// and of the sigmoid gates.
//
// The CUDA backend's kernels differ from the CPU's by round-off within
// the conformance suite's tolerances (package backend: attention 1e-11 in
// float64, 5e-5 in float32, of the logits' scale); the output projection
// sums H·c (6) of those with weights below 1, so 1e-10 and 2e-4 of the
// output's max.
func backendTol[T num.Float](name string) float64 {
	var z T
	f32 := any(z) == any(float32(0))
	switch {
	case name == "cpu" && f32:
		return 1e-5
	case name == "cpu":
		return 1e-12
	case f32:
		return 2e-4
	}
	return 1e-10
}

// relErr returns max_i |got_i − want_i| / max_i |want_i|, +Inf if the
// lengths differ or a value is not finite.
func relErr[T num.Float](got, want []T) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	d, w := 0.0, 0.0
	for i := range got {
		e := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return math.Inf(1)
		}
		d, w = max(d, e), max(w, math.Abs(float64(want[i])))
	}
	return d / w
}

// backendMask returns an [s, n] mask (s, n ≥ 3) with about a quarter of
// random zeros, the last sequence and the last residue fully masked (a
// query of row attention and one of column attention with every key
// masked, a column of global attention with no sequence), and (0, 0)
// present.
func backendMask[T num.Float](rng *rand.Rand, s, n int) []T {
	m := make([]T, s*n)
	for i := range m {
		si, ni := i/n, i%n
		if i == 0 || (si < s-1 && ni < n-1 && rng.Float64() > 0.25) {
			m[i] = 1
		}
	}
	return m
}

// rowCases run the composed path in one chunk and in many: with 1
// element of scratch every chunk is one sequence and one residue pair;
// with 2 sequences' worth, 5 sequences make chunks of 2, 2 and 1.
func rowCases(cfg RowConfig) []backendCase {
	n := 7
	perSeq := n * (cfg.MSAChannels + 5*cfg.Heads*cfg.HeadChannels)
	return []backendCase{
		{"one chunk", 5, n, 0},
		{"chunks of one", 5, n, 1},
		{"ragged chunks", 5, n, 2 * perSeq},
		{"one residue", 3, 1, 0},
	}
}

func TestRowBackend(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testRowBackend[float64](t) })
	t.Run("float32", func(t *testing.T) { testRowBackend[float32](t) })
}

func testRowBackend[T num.Float](t *testing.T) {
	cfg := smallRow
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	for _, b := range backendtest.Backends[T](t) {
		for i, tc := range rowCases(cfg) {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(31, uint64(i)))
				mod := newRow[T](t, rng, cfg)
				s, n := tc.s, tc.n
				msa, z := randn[T](rng, s*n*cm), randn[T](rng, n*n*cz)
				mask := randMask[T](rng, s, n)
				if n >= 3 {
					mask = backendMask[T](rng, s, n)
				}
				want, err := mod.Forward(msa, z, mask, s, n, nil)
				if err != nil {
					t.Fatal(err)
				}
				r, err := NewRow(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				r.composed, r.scratch = true, tc.scratch
				out := backendtest.Alloc(t, b.K, s*n*cm)
				dm, dz, dmask := backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, mask)
				if err := r.Forward(dm, dz, dmask, s, n, out); err != nil {
					t.Fatal(err)
				}
				got := backendtest.Get(t, b.K, out)
				e, tol := relErr(got, want), backendTol[T](b.Name)
				t.Logf("max |composed − CPU| / max |CPU| = %.3g (tolerance %g)", e, tol)
				if e > tol {
					t.Errorf("composed path differs from RowAttention.Forward by %.3g of its max, want ≤ %g", e, tol)
				}
			})
		}
	}
}

// TestRowBackendDispatch checks that on the CPU backend Forward gives
// RowAttention.Forward's result exactly, from the parameters NewRow copied.
func TestRowBackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testRowDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testRowDispatch[float32](t) })
}

func testRowDispatch[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(32, 1))
	cfg := smallRow
	mod := newRow[T](t, rng, cfg)
	s, n := 4, 6
	msa, z := randn[T](rng, s*n*cfg.MSAChannels), randn[T](rng, n*n*cfg.PairChannels)
	mask := backendMask[T](rng, s, n)
	want, err := mod.Forward(msa, z, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := backend.CPU[T]()
	r, err := NewRow(k, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mod.Params.Attention.OutputB[0] += 1 // NewRow took a copy
	out := make([]T, len(want))
	if err := r.Forward(backend.Host[T](msa), backend.Host[T](z), backend.Host[T](mask), s, n, backend.Host[T](out)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, want) {
		t.Errorf("Forward on host tensors differs from RowAttention.Forward by %.3g of its max, want bit-identical", relErr(out, want))
	}
}

// forwardPaths names the two paths of a Forward on the CPU backend.
var forwardPaths = []struct {
	name     string
	composed bool
}{{"dispatch", false}, {"composed", true}}

func TestRowBackendBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 1))
	cfg := smallRow
	k := backend.CPU[float64]()
	mod := newRow[float64](t, rng, cfg)
	s, n, cm, cz := 3, 4, cfg.MSAChannels, cfg.PairChannels
	msa, z, mask := randn[float64](rng, s*n*cm), randn[float64](rng, n*n*cz), randMask[float64](rng, s, n)
	out := make([]float64, s*n*cm)
	h := func(x []float64) backend.Tensor[float64] { return backend.Host[float64](x) }
	badW := newRow[float64](t, rng, cfg)
	badW.Params.FeatTwoDWeights = badW.Params.FeatTwoDWeights[1:]
	infW := newRow[float64](t, rng, cfg)
	infW.Params.Attention.GatingB[0] = math.Inf(1)
	newErr := func(k backend.Kernels[float64], m *RowAttention[float64]) func() error {
		return func() error {
			r, err := NewRow(k, m)
			r.Close()
			return err
		}
	}
	runErrCases(t, []errCase{
		{"nil backend", newErr(nil, mod), nil, "backend"},
		{"nil module", newErr(k, nil), nil, "nil module"},
		{"nil params", newErr(k, &RowAttention[float64]{Config: cfg}), nil, "Params"},
		{"short parameter", newErr(k, badW), num.ErrShape, "feat_2d_weights"},
		{"Inf parameter", newErr(k, infW), num.ErrNaN, "gating_b"},
	})
	for _, p := range forwardPaths {
		r, err := NewRow(k, mod)
		if err != nil {
			t.Fatal(err)
		}
		r.composed = p.composed
		fwd := func(msa, z, mask backend.Tensor[float64], s, n int, out backend.Tensor[float64]) func() error {
			return func() error { return r.Forward(msa, z, mask, s, n, out) }
		}
		t.Run(p.name, func(t *testing.T) {
			runErrCases(t, []errCase{
				{"short msa", fwd(h(msa[1:]), h(z), h(mask), s, n, h(out)), num.ErrShape, "msa"},
				{"short z", fwd(h(msa), h(z[1:]), h(mask), s, n, h(out)), num.ErrShape, "z has"},
				{"short mask", fwd(h(msa), h(z), h(mask[1:]), s, n, h(out)), num.ErrShape, "mask"},
				{"short out", fwd(h(msa), h(z), h(mask), s, n, h(out[1:])), num.ErrShape, "out"},
				{"nil out", fwd(h(msa), h(z), h(mask), s, n, nil), num.ErrShape, "out is missing"},
				{"sizes swapped", fwd(h(msa), h(z), h(mask), n, s, h(out)), num.ErrShape, "z has"},
				{"no sequences", fwd(h(nil), h(z), h(nil), 0, n, h(nil)), num.ErrShape, "sequences"},
				{"NaN msa", fwd(h(withNaN(msa, 5)), h(z), h(mask), s, n, h(out)), num.ErrNaN, ""},
				{"NaN z", fwd(h(msa), h(withNaN(z, 7)), h(mask), s, n, h(out)), num.ErrNaN, ""},
			})
		})
		r.Close()
		r.Close() // a second Close does nothing
		runErrCases(t, []errCase{
			{fmt.Sprintf("%s after Close", p.name), fwd(h(msa), h(z), h(mask), s, n, h(out)), nil, "closed"},
		})
	}
}
