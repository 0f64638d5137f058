package msaattn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// paramArrays maps the AF2 names of a module's parameter listing to its
// arrays.
func paramArrays[T num.Float](ts []param[T]) map[string][]T {
	m := make(map[string][]T, len(ts))
	for _, t := range ts {
		m[t.name] = *t.data
	}
	return m
}

// absMax returns max_i |a_i − b_i| and max_i |b_i|; the first is +Inf if
// the lengths differ or a difference is not finite.
func absMax[T num.Float](a, b []T) (d, s float64) {
	if len(a) != len(b) {
		return math.Inf(1), 0
	}
	for i := range a {
		e := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(e) || math.IsInf(e, 0) {
			e = math.Inf(1)
		}
		d, s = max(d, e), max(s, math.Abs(float64(b[i])))
	}
	return d, s
}

// gradErrors compares every array of got with want (same names) and
// returns each array's largest error relative to the array's own max
// |want|; it fails the test if the names differ or a value is not
// finite.
//
// An array whose max is below 1e-2 of the largest array's max is measured
// against that 1e-2 instead: such an array can vanish analytically and
// then holds only round-off of the size of the other gradients' terms,
// which no two summation orders reproduce (the arrays that do not vanish
// in these tests are all above a tenth of the largest, so the floor does
// not loosen their checks). Examples: feat_2d_norm's
// offset in row attention (the pair bias's gradient sums to zero over
// each query's keys, since a softmax ignores a constant added to its
// logits), and the gradients of the queries, the keys and the pair bias
// (so of z) with one key (one residue in row attention, one sequence in
// column attention).
func gradErrors[T num.Float](t *testing.T, got, want map[string][]T) map[string]float64 {
	t.Helper()
	var top float64
	for _, w := range want {
		_, s := absMax(w, w)
		top = max(top, s)
	}
	if len(got) != len(want) {
		t.Fatalf("%d gradient arrays, want %d", len(got), len(want))
	}
	errs := make(map[string]float64, len(want))
	for k, w := range want {
		g, ok := got[k]
		if !ok || len(g) != len(w) {
			t.Fatalf("gradient %s: missing or of length %d, want %d", k, len(g), len(w))
		}
		if !allFinite(g) {
			t.Fatalf("gradient %s is not finite", k)
		}
		d, s := absMax(g, w)
		errs[k] = d / max(s, 1e-2*top, 1e-300)
	}
	return errs
}

// checkGrads checks every gradient of got against want (see gradErrors)
// within tol, and logs the errors of the input gradients (the names
// without "/", such as "dmsa") and the worst of the parameters'.
func checkGrads[T num.Float](t *testing.T, got, want map[string][]T, tol float64) {
	t.Helper()
	errs := gradErrors(t, got, want)
	names := make([]string, 0, len(errs))
	for k := range errs {
		names = append(names, k)
	}
	slices.Sort(names)
	var msg []string
	worst, worstName := -1.0, ""
	for _, k := range names {
		e := errs[k]
		if !strings.Contains(k, "/") {
			msg = append(msg, fmt.Sprintf("%s %.2e", k, e))
		} else if e > worst {
			worst, worstName = e, k
		}
		if e > tol {
			t.Errorf("gradient %s: relative error %.3g vs the CPU backward > %.0e", k, e, tol)
		}
	}
	t.Logf("relative errors: %s; parameters ≤ %.2e (%s)", strings.Join(msg, ", "), worst, worstName)
}

// withInputs returns the parameter gradients ts by AF2 name with the
// input gradients added under their own names (name, array pairs).
func withInputs[T num.Float](ts []param[T], inputs ...any) map[string][]T {
	m := paramArrays(ts)
	for i := 0; i+1 < len(inputs); i += 2 {
		m[inputs[i].(string)] = inputs[i+1].([]T)
	}
	return m
}

// bitEqual reports the first index where a and b differ, or −1.
func bitEqual[T num.Float](a, b []T) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// checkDoubled checks two ≈ 2·one within tol of max |2·one|, and that
// one is not all zeros.
func checkDoubled[T num.Float](t *testing.T, what string, two, one []T, tol float64) {
	t.Helper()
	want := make([]T, len(one))
	for i, v := range one {
		want[i] = 2 * v
	}
	d, s := absMax(two, want)
	if s == 0 {
		t.Errorf("%s: one Backward call gives zeros", what)
		return
	}
	if d/s > tol {
		t.Errorf("%s after two Backward calls: relative error %.3g vs twice one call's", what, d/s)
	}
}

// gradTol is the tolerance of the composed backward passes against the
// CPU backward, relative to each gradient's max (see gradErrors).
//
// The composed path differentiates the same function as the CPU backward
// with the products and sums grouped differently: separate projections
// instead of one concatenated product, the queries' c^-1/2 as a product's
// alpha, the parameter and pair-bias gradients summed chunk by chunk on
// the backend, column attention in transposed order, DivRows where the
// CPU multiplies by a reciprocal (on CUDA also other summation orders and
// exp). Every gradient is a sum over the positions (S·N ≤ 49, or 2648 for
// global attention's many sequences, whose round-off grows as √ of that)
// of products of terms that are each sums of at most max(c_m, H·c) = 8
// terms, passed back through a softmax and a layer norm that scales
// errors by 1/σ of its row.
//
// float64 (ulp 1.1e-16): measured ≤ 2e-15 of each array's max on the CPU
// and emulated CUDA backends, and 3e-14 for feat_2d_norm's offset,
// which vanishes analytically and is measured against the floor of
// gradErrors (see the tests' logs). 1e-12 leaves 30× that: room for a
// GPU's summation orders and exp. The fully masked rows contribute to
// every array: their logits −1e9 + s keep s only to the ulp of 1e9
// (1.2e-7), but the two paths' s differ by ~1e-16, so they round to the
// same logit unless they straddle a rounding boundary (a chance of ~1e-9
// per logit, not met by these seeds; in float32 s is lost entirely and
// both paths see −1e9). float32 (ulp 6e-8, and the CPU path's sigmoid is
// a polynomial exp within 2e-7): measured ≤ 1.1e-6, and 8e-6 for
// feat_2d_norm's offset; 2e-4, the forward's tolerance on CUDA (see
// backendTol), leaves 25× that for a GPU's summation orders compounded
// through the softmax and layer-norm backward passes.
func gradTol[T num.Float]() float64 {
	var z T
	if any(z) == any(float32(0)) {
		return 2e-4
	}
	return 1e-12
}

// accumTol is the tolerance of two Backward calls against twice one: both
// calls compute the same values in the same order and x + x is exact, so
// the CPU backend (both paths) doubles exactly; 1e-15 of the array's max
// allows a GPU backend an order-dependent last bit.
const accumTol = 1e-15

// rowGradCases run the composed backward in one chunk and in many: with
// 1 element of scratch every chunk is one sequence and one residue pair
// (the pair bias moved head by head); with 2 sequences' worth of the
// backward's scratch the backward takes 5 sequences in chunks of 2, 2
// and 1, the forward in chunks of 4 and 1.
func rowGradCases(cfg RowConfig) []backendCase {
	n := 7
	perSeq := n * (2*cfg.MSAChannels + 10*cfg.Heads*cfg.HeadChannels)
	return []backendCase{
		{"one chunk", 5, n, 0},
		{"chunks of one", 5, n, 1},
		{"ragged chunks", 5, n, 2 * perSeq},
		{"one residue", 3, 1, 0},
	}
}

func TestRowBackendBackward(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testRowBackward[float64](t) })
	t.Run("float32", func(t *testing.T) { testRowBackward[float32](t) })
}

func testRowBackward[T num.Float](t *testing.T) {
	cfg := smallRow
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	tol := gradTol[T]()
	for _, b := range backendtest.Backends[T](t) {
		for i, tc := range rowGradCases(cfg) {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(61, uint64(i)))
				mod := newRow[T](t, rng, cfg)
				s, n := tc.s, tc.n
				msa, z := randn[T](rng, s*n*cm), randn[T](rng, n*n*cz)
				mask := randMask[T](rng, s, n)
				if n >= 3 {
					mask = backendMask[T](rng, s, n)
				}
				dout := randn[T](rng, s*n*cm)
				var cache RowCache[T]
				if _, err := mod.Forward(msa, z, mask, s, n, &cache); err != nil {
					t.Fatal(err)
				}
				want, err := mod.Backward(&cache, dout)
				if err != nil {
					t.Fatal(err)
				}

				r, err := NewRow(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				r.composed, r.scratch = true, tc.scratch
				dm, dz, dmask := backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, mask)
				out, fwd := backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, s*n*cm)
				if err := r.Forward(dm, dz, dmask, s, n, fwd); err != nil {
					t.Fatal(err)
				}
				var tape RowTape[T]
				defer tape.Free()
				if err := r.ForwardTape(dm, dz, dmask, s, n, out, &tape); err != nil {
					t.Fatal(err)
				}
				if i := bitEqual(backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd)); i >= 0 {
					t.Fatalf("ForwardTape's out[%d] differs from Forward's", i)
				}
				gm, gz, g := backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, n*n*cz), mod.Params.ZerosLike()
				if err := r.Backward(&tape, backendtest.Put(t, b.K, dout), gm, gz, g); err != nil {
					t.Fatal(err)
				}
				checkGrads(t,
					withInputs(g.tensors(cfg), "dmsa", backendtest.Get(t, b.K, gm), "dz", backendtest.Get(t, b.K, gz)),
					withInputs(want.Params.tensors(cfg), "dmsa", want.MSA, "dz", want.Z), tol)
			})
		}
	}
}

// TestRowBackendBackwardDispatch checks that ForwardTape and Backward on
// CPU tensors are RowAttention.Forward and Backward, bit for bit.
func TestRowBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testRowBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testRowBackwardDispatch[float32](t) })
}

func testRowBackwardDispatch[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(62, 1))
	cfg := smallRow
	mod := newRow[T](t, rng, cfg)
	s, n := 4, 6
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	msa, z, mask := randn[T](rng, s*n*cm), randn[T](rng, n*n*cz), backendMask[T](rng, s, n)
	dout := randn[T](rng, s*n*cm)
	var cache RowCache[T]
	wantOut, err := mod.Forward(msa, z, mask, s, n, &cache)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mod.Backward(&cache, dout)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRow(backend.CPU[T](), mod)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var tape RowTape[T]
	defer tape.Free()
	out, gm, gz, g := make([]T, s*n*cm), make([]T, s*n*cm), make([]T, n*n*cz), mod.Params.ZerosLike()
	if err := r.ForwardTape(backend.Host[T](msa), backend.Host[T](z), backend.Host[T](mask), s, n, backend.Host[T](out), &tape); err != nil {
		t.Fatal(err)
	}
	if !tape.host {
		t.Error("the tape is not of the CPU path")
	}
	if err := r.Backward(&tape, backend.Host[T](dout), backend.Host[T](gm), backend.Host[T](gz), g); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		what      string
		got, want []T
	}{{"out", out, wantOut}, {"dmsa", gm, want.MSA}, {"dz", gz, want.Z}} {
		if i := bitEqual(a.got, a.want); i >= 0 {
			t.Errorf("%s[%d] = %v, the CPU module gives %v", a.what, i, a.got[i], a.want[i])
		}
	}
	checkBitEqualParams(t, paramArrays(g.tensors(cfg)), paramArrays(want.Params.tensors(cfg)))
}

// checkBitEqualParams checks that every gradient array of got is want's,
// bit for bit.
func checkBitEqualParams[T num.Float](t *testing.T, got, want map[string][]T) {
	t.Helper()
	for name, g := range got {
		if i := bitEqual(g, want[name]); i >= 0 {
			t.Errorf("gradient %s[%d] = %v, the CPU backward gives %v", name, i, g[i], want[name][i])
		}
	}
}

func TestRowBackendBackwardAccumulates(t *testing.T) {
	for _, b := range backendtest.Backends[float64](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(63, 1))
				cfg := smallRow
				cm, cz := cfg.MSAChannels, cfg.PairChannels
				mod := newRow[float64](t, rng, cfg)
				s, n := 4, 5
				r, err := NewRow(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				r.composed = composed // one chunk: the main test covers the chunks
				var tape RowTape[float64]
				defer tape.Free()
				msa, z := backendtest.Put(t, b.K, randn[float64](rng, s*n*cm)), backendtest.Put(t, b.K, randn[float64](rng, n*n*cz))
				mask := backendtest.Put(t, b.K, backendMask[float64](rng, s, n))
				if err := r.ForwardTape(msa, z, mask, s, n, backendtest.Alloc(t, b.K, s*n*cm), &tape); err != nil {
					t.Fatal(err)
				}
				dout := backendtest.Put(t, b.K, randn[float64](rng, s*n*cm))
				dm1, dm2 := backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, s*n*cm)
				dz1, dz2 := backendtest.Alloc(t, b.K, n*n*cz), backendtest.Alloc(t, b.K, n*n*cz)
				g1, g2 := mod.Params.ZerosLike(), mod.Params.ZerosLike()
				for _, c := range []struct {
					dm, dz backend.Tensor[float64]
					g      *RowParams[float64]
				}{{dm1, dz1, g1}, {dm2, dz2, g2}, {dm2, dz2, g2}} {
					if err := r.Backward(&tape, dout, c.dm, c.dz, c.g); err != nil {
						t.Fatal(err)
					}
				}
				checkDoubled(t, "dmsa", backendtest.Get(t, b.K, dm2), backendtest.Get(t, b.K, dm1), accumTol)
				checkDoubled(t, "dz", backendtest.Get(t, b.K, dz2), backendtest.Get(t, b.K, dz1), accumTol)
				two := paramArrays(g2.tensors(cfg))
				for name, one := range paramArrays(g1.tensors(cfg)) {
					if name == "feat_2d_norm//offset" {
						continue // analytically zero (see gradErrors): round-off, not doubled
					}
					checkDoubled(t, name, two[name], one, accumTol)
				}
				// Each of dmsa, dz and grad is optional, and alone gives
				// what it gives beside the others.
				if err := r.Backward(&tape, dout, nil, nil, nil); err != nil {
					t.Errorf("Backward with nothing wanted: %v", err)
				}
				dm3, dz3, g3 := backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, n*n*cz), mod.Params.ZerosLike()
				for _, c := range []struct {
					dm, dz backend.Tensor[float64]
					g      *RowParams[float64]
				}{{dm3, nil, nil}, {nil, dz3, nil}, {nil, nil, g3}} {
					if err := r.Backward(&tape, dout, c.dm, c.dz, c.g); err != nil {
						t.Fatal(err)
					}
				}
				checkDoubled(t, "dmsa alone", backendtest.Get(t, b.K, dm2), backendtest.Get(t, b.K, dm3), accumTol)
				checkDoubled(t, "dz alone", backendtest.Get(t, b.K, dz2), backendtest.Get(t, b.K, dz3), accumTol)
				three := paramArrays(g3.tensors(cfg))
				for name, one := range three {
					if name == "feat_2d_norm//offset" {
						continue
					}
					checkDoubled(t, name+" alone", two[name], one, accumTol)
				}
			})
		}
	}
}

func TestRowBackendBackwardErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(64, 1))
	cfg := smallRow
	k := backend.CPU[float64]()
	mod := newRow[float64](t, rng, cfg)
	s, n, cm, cz := 3, 4, cfg.MSAChannels, cfg.PairChannels
	h := func(x []float64) backend.Tensor[float64] { return backend.Host[float64](x) }
	zeros := func(n int) backend.Tensor[float64] { return h(make([]float64, n)) }
	msa, z, mask := h(randn[float64](rng, s*n*cm)), h(randn[float64](rng, n*n*cz)), h(randMask[float64](rng, s, n))
	dout := h(randn[float64](rng, s*n*cm))
	short := mod.Params.ZerosLike()
	short.FeatTwoDWeights = short.FeatTwoDWeights[1:]
	for _, p := range forwardPaths {
		t.Run(p.name, func(t *testing.T) {
			r, err := NewRow(k, mod)
			if err != nil {
				t.Fatal(err)
			}
			r.composed = p.composed
			other, err := NewRow(k, mod)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var tape, otherTape RowTape[float64]
			defer tape.Free()
			defer otherTape.Free()
			if err := r.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm), &tape); err != nil {
				t.Fatal(err)
			}
			if err := other.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm), &otherTape); err != nil {
				t.Fatal(err)
			}
			bwd := func(tp *RowTape[float64], dout, dm, dz backend.Tensor[float64], g *RowParams[float64]) func() error {
				return func() error { return r.Backward(tp, dout, dm, dz, g) }
			}
			runErrCases(t, []errCase{
				{"nil tape", bwd(nil, dout, nil, nil, nil), nil, "tape"},
				{"empty tape", bwd(new(RowTape[float64]), dout, nil, nil, nil), nil, "tape"},
				{"tape of another module", bwd(&otherTape, dout, nil, nil, nil), nil, "another module"},
				{"missing dout", bwd(&tape, nil, nil, nil, nil), num.ErrShape, "dout is missing"},
				{"short dout", bwd(&tape, zeros(s*n*cm-1), nil, nil, nil), num.ErrShape, "dout"},
				{"long dmsa", bwd(&tape, dout, zeros(s*n*cm+1), nil, nil), num.ErrShape, "dmsa"},
				{"short dz", bwd(&tape, dout, nil, zeros(n*n*cz-1), nil), num.ErrShape, "dz"},
				{"short gradient", bwd(&tape, dout, nil, nil, short), num.ErrShape, "feat_2d_weights"},
				{"ForwardTape nil tape", func() error { return r.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm), nil) }, nil, "nil tape"},
				{"ForwardTape short out", func() error {
					var tp RowTape[float64]
					return r.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm-1), &tp)
				}, num.ErrShape, "out"},
				{"ForwardTape short z", func() error {
					var tp RowTape[float64]
					return r.ForwardTape(msa, zeros(n*n*cz-1), mask, s, n, zeros(s*n*cm), &tp)
				}, num.ErrShape, "z has"},
			})
			// Backend tensors with a tape of the CPU path.
			for _, b := range backendtest.Backends[float64](t) {
				if b.Name == "cpu" || p.composed {
					continue
				}
				err := r.Backward(&tape, backendtest.Put(t, b.K, make([]float64, s*n*cm)), nil, nil, nil)
				if !errors.Is(err, backend.ErrForeign) {
					t.Errorf("%s dout with a CPU tape: error %v, want one wrapping backend.ErrForeign", b.Name, err)
				}
			}
			// A failed ForwardTape leaves the tape empty, and so does Free.
			if err := r.ForwardTape(msa, z, mask, s, n, zeros(1), &tape); !errors.Is(err, num.ErrShape) {
				t.Errorf("ForwardTape with a short out: error %v", err)
			}
			if err := r.Backward(&tape, dout, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "tape") {
				t.Errorf("Backward after a failed ForwardTape: error %v, want one about the tape", err)
			}
			if err := r.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm), &tape); err != nil {
				t.Fatal(err)
			}
			tape.Free()
			if err := r.Backward(&tape, dout, nil, nil, nil); err == nil {
				t.Error("Backward after Free: no error")
			}
			if err := r.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm), &tape); err != nil {
				t.Fatal(err)
			}
			r.Close()
			runErrCases(t, []errCase{
				{"Backward after Close", bwd(&tape, dout, nil, nil, nil), nil, "closed"},
				{"ForwardTape after Close", func() error { return r.ForwardTape(msa, z, mask, s, n, zeros(s*n*cm), &tape) }, nil, "closed"},
			})
		})
	}
	var zero RowTape[float64]
	zero.Free() // a zero tape may be freed
}
