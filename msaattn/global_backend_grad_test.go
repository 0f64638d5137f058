package msaattn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// globalGradCase is one run of the composed backward of global column
// attention; fractional selects mask weights uniform in [0, 1) (AF2's
// mask_mean takes any weights) instead of backendMask's 0/1.
type globalGradCase struct {
	backendCase
	fractional bool
}

// globalGradCases run the composed backward in one chunk and in many:
// with 1 element of scratch every chunk is one sequence; with 2
// sequences' worth of the backward's scratch the backward takes 5
// sequences in chunks of 2, 2 and 1, the forward in chunks of 3 and 2;
// and with more sequences than one chunk may sum over (onesLen) with
// fractional mask weights, as the extra-MSA stack has.
func globalGradCases(cfg GlobalColumnConfig) []globalGradCase {
	n := 7
	perSeq := n * (cfg.MSAChannels + 5*cfg.Heads*cfg.HeadChannels)
	return []globalGradCase{
		{backendCase{"one chunk", 5, n, 0}, false},
		{backendCase{"chunks of one", 5, n, 1}, false},
		{backendCase{"ragged chunks", 5, n, 2 * perSeq}, false},
		{backendCase{"one residue", 4, 1, 0}, false},
		{backendCase{"many sequences", onesLen + 300, 2, 0}, true},
	}
}

func TestGlobalColumnBackendBackward(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGlobalBackward[float64](t) })
	t.Run("float32", func(t *testing.T) { testGlobalBackward[float32](t) })
}

func testGlobalBackward[T num.Float](t *testing.T) {
	cfg := smallGlobal
	ce := cfg.MSAChannels
	tol := gradTol[T]()
	for _, b := range backendtest.Backends[T](t) {
		for i, tc := range globalGradCases(cfg) {
			if tc.fractional && b.Name != "cpu" {
				// The chunking over more than onesLen sequences is the
				// module's, not the backend's; on the emulated CUDA
				// backend this case alone would take most of a minute.
				continue
			}
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(81, uint64(i)))
				mod := newGlobal[T](t, rng, cfg)
				s, n := tc.s, tc.n
				msa := randn[T](rng, s*n*ce)
				mask := randMask[T](rng, s, n)
				switch {
				case tc.fractional:
					for j := range mask {
						mask[j] = T(rng.Float64())
					}
				case n >= 3:
					mask = backendMask[T](rng, s, n)
				}
				dout := randn[T](rng, s*n*ce)
				var cache GlobalColumnCache[T]
				if _, err := mod.Forward(msa, mask, s, n, &cache); err != nil {
					t.Fatal(err)
				}
				want, err := mod.Backward(&cache, dout)
				if err != nil {
					t.Fatal(err)
				}

				m, err := NewGlobalColumn(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.scratch = true, tc.scratch
				dm, dmask := backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, mask)
				out, fwd := backendtest.Alloc(t, b.K, s*n*ce), backendtest.Alloc(t, b.K, s*n*ce)
				if err := m.Forward(dm, dmask, s, n, fwd); err != nil {
					t.Fatal(err)
				}
				var tape GlobalColumnTape[T]
				defer tape.Free()
				if err := m.ForwardTape(dm, dmask, s, n, out, &tape); err != nil {
					t.Fatal(err)
				}
				if i := bitEqual(backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd)); i >= 0 {
					t.Fatalf("ForwardTape's out[%d] differs from Forward's", i)
				}
				gm, g := backendtest.Alloc(t, b.K, s*n*ce), mod.Params.ZerosLike()
				if err := m.Backward(&tape, backendtest.Put(t, b.K, dout), gm, g); err != nil {
					t.Fatal(err)
				}
				checkGrads(t,
					withInputs(g.tensors(cfg), "dmsa", backendtest.Get(t, b.K, gm)),
					withInputs(want.Params.tensors(cfg), "dmsa", want.MSA), tol)
			})
		}
	}
}

// TestGlobalColumnBackendBackwardDispatch checks that ForwardTape and
// Backward on CPU tensors are GlobalColumnAttention.Forward and Backward,
// bit for bit.
func TestGlobalColumnBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testGlobalBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testGlobalBackwardDispatch[float32](t) })
}

func testGlobalBackwardDispatch[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(82, 1))
	cfg := smallGlobal
	mod := newGlobal[T](t, rng, cfg)
	s, n, ce := 4, 6, cfg.MSAChannels
	msa, mask, dout := randn[T](rng, s*n*ce), backendMask[T](rng, s, n), randn[T](rng, s*n*ce)
	var cache GlobalColumnCache[T]
	wantOut, err := mod.Forward(msa, mask, s, n, &cache)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mod.Backward(&cache, dout)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewGlobalColumn(backend.CPU[T](), mod)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tape GlobalColumnTape[T]
	defer tape.Free()
	out, gm, g := make([]T, s*n*ce), make([]T, s*n*ce), mod.Params.ZerosLike()
	if err := m.ForwardTape(backend.Host[T](msa), backend.Host[T](mask), s, n, backend.Host[T](out), &tape); err != nil {
		t.Fatal(err)
	}
	if !tape.host {
		t.Error("the tape is not of the CPU path")
	}
	if err := m.Backward(&tape, backend.Host[T](dout), backend.Host[T](gm), g); err != nil {
		t.Fatal(err)
	}
	if i := bitEqual(out, wantOut); i >= 0 {
		t.Errorf("out[%d] = %v, GlobalColumnAttention.Forward gives %v", i, out[i], wantOut[i])
	}
	if i := bitEqual(gm, want.MSA); i >= 0 {
		t.Errorf("dmsa[%d] = %v, GlobalColumnAttention.Backward gives %v", i, gm[i], want.MSA[i])
	}
	checkBitEqualParams(t, paramArrays(g.tensors(cfg)), paramArrays(want.Params.tensors(cfg)))
}

func TestGlobalColumnBackendBackwardAccumulates(t *testing.T) {
	for _, b := range backendtest.Backends[float64](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(83, 1))
				cfg := smallGlobal
				ce := cfg.MSAChannels
				mod := newGlobal[float64](t, rng, cfg)
				s, n := 4, 5
				m, err := NewGlobalColumn(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = composed // one chunk: the main test covers the chunks
				var tape GlobalColumnTape[float64]
				defer tape.Free()
				msa, mask := backendtest.Put(t, b.K, randn[float64](rng, s*n*ce)), backendtest.Put(t, b.K, backendMask[float64](rng, s, n))
				if err := m.ForwardTape(msa, mask, s, n, backendtest.Alloc(t, b.K, s*n*ce), &tape); err != nil {
					t.Fatal(err)
				}
				dout := backendtest.Put(t, b.K, randn[float64](rng, s*n*ce))
				dm1, dm2, dm3 := backendtest.Alloc(t, b.K, s*n*ce), backendtest.Alloc(t, b.K, s*n*ce), backendtest.Alloc(t, b.K, s*n*ce)
				g1, g2, g3 := mod.Params.ZerosLike(), mod.Params.ZerosLike(), mod.Params.ZerosLike()
				for _, c := range []struct {
					dm backend.Tensor[float64]
					g  *GlobalColumnParams[float64]
				}{{dm1, g1}, {dm2, g2}, {dm2, g2}, {nil, nil}, {dm3, nil}, {nil, g3}} {
					if err := m.Backward(&tape, dout, c.dm, c.g); err != nil {
						t.Fatal(err)
					}
				}
				one, two := backendtest.Get(t, b.K, dm1), backendtest.Get(t, b.K, dm2)
				checkDoubled(t, "dmsa", two, one, accumTol)
				checkDoubled(t, "dmsa alone", two, backendtest.Get(t, b.K, dm3), accumTol)
				twos := paramArrays(g2.tensors(cfg))
				threes := paramArrays(g3.tensors(cfg))
				for name, one := range paramArrays(g1.tensors(cfg)) {
					checkDoubled(t, name, twos[name], one, accumTol)
					checkDoubled(t, name+" alone", twos[name], threes[name], accumTol)
				}
			})
		}
	}
}

func TestGlobalColumnBackendBackwardErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(84, 1))
	cfg := smallGlobal
	k := backend.CPU[float64]()
	mod := newGlobal[float64](t, rng, cfg)
	s, n, ce := 3, 4, cfg.MSAChannels
	h := func(x []float64) backend.Tensor[float64] { return backend.Host[float64](x) }
	zeros := func(n int) backend.Tensor[float64] { return h(make([]float64, n)) }
	msa, mask, dout := h(randn[float64](rng, s*n*ce)), h(randMask[float64](rng, s, n)), h(randn[float64](rng, s*n*ce))
	short := mod.Params.ZerosLike()
	short.KeyW = short.KeyW[1:]
	for _, p := range forwardPaths {
		t.Run(p.name, func(t *testing.T) {
			m, err := NewGlobalColumn(k, mod)
			if err != nil {
				t.Fatal(err)
			}
			m.composed = p.composed
			other, err := NewGlobalColumn(k, mod)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var tape, otherTape GlobalColumnTape[float64]
			defer tape.Free()
			defer otherTape.Free()
			if err := m.ForwardTape(msa, mask, s, n, zeros(s*n*ce), &tape); err != nil {
				t.Fatal(err)
			}
			if err := other.ForwardTape(msa, mask, s, n, zeros(s*n*ce), &otherTape); err != nil {
				t.Fatal(err)
			}
			bwd := func(tp *GlobalColumnTape[float64], dout, dm backend.Tensor[float64], g *GlobalColumnParams[float64]) func() error {
				return func() error { return m.Backward(tp, dout, dm, g) }
			}
			runErrCases(t, []errCase{
				{"nil tape", bwd(nil, dout, nil, nil), nil, "tape"},
				{"empty tape", bwd(new(GlobalColumnTape[float64]), dout, nil, nil), nil, "tape"},
				{"tape of another module", bwd(&otherTape, dout, nil, nil), nil, "another module"},
				{"missing dout", bwd(&tape, nil, nil, nil), num.ErrShape, "dout is missing"},
				{"short dout", bwd(&tape, zeros(s*n*ce-1), nil, nil), num.ErrShape, "dout"},
				{"long dmsa", bwd(&tape, dout, zeros(s*n*ce+1), nil), num.ErrShape, "dmsa"},
				{"short gradient", bwd(&tape, dout, nil, short), num.ErrShape, "key_w"},
				{"ForwardTape nil tape", func() error { return m.ForwardTape(msa, mask, s, n, zeros(s*n*ce), nil) }, nil, "nil tape"},
				{"ForwardTape short msa", func() error {
					var tp GlobalColumnTape[float64]
					return m.ForwardTape(zeros(s*n*ce-1), mask, s, n, zeros(s*n*ce), &tp)
				}, num.ErrShape, "msa"},
			})
			for _, b := range backendtest.Backends[float64](t) {
				if b.Name == "cpu" || p.composed {
					continue
				}
				err := m.Backward(&tape, backendtest.Put(t, b.K, make([]float64, s*n*ce)), nil, nil)
				if !errors.Is(err, backend.ErrForeign) {
					t.Errorf("%s dout with a CPU tape: error %v, want one wrapping backend.ErrForeign", b.Name, err)
				}
			}
			// A failed ForwardTape leaves the tape empty, and so does Free.
			if err := m.ForwardTape(msa, mask, s, n, zeros(1), &tape); !errors.Is(err, num.ErrShape) {
				t.Errorf("ForwardTape with a short out: error %v", err)
			}
			if err := m.Backward(&tape, dout, nil, nil); err == nil {
				t.Error("Backward after a failed ForwardTape: no error")
			}
			if err := m.ForwardTape(msa, mask, s, n, zeros(s*n*ce), &tape); err != nil {
				t.Fatal(err)
			}
			tape.Free()
			if err := m.Backward(&tape, dout, nil, nil); err == nil {
				t.Error("Backward after Free: no error")
			}
			m.Close()
			runErrCases(t, []errCase{
				{"Backward after Close", bwd(&otherTape, dout, nil, nil), nil, "closed"},
				{"ForwardTape after Close", func() error { return m.ForwardTape(msa, mask, s, n, zeros(s*n*ce), &tape) }, nil, "closed"},
			})
		})
	}
}
