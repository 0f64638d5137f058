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

// columnGradCases run the composed backward in one chunk and in many:
// with 1 element of scratch every chunk is one residue column; with 2
// columns' worth of the backward's scratch the backward takes 7 columns
// in chunks of 2, 2, 2 and 1, the forward in chunks of 3, 3 and 1 (the
// tape's column order does not depend on them).
func columnGradCases(cfg ColumnConfig) []backendCase {
	s := 5
	perColumn := 10 * s * cfg.Heads * cfg.HeadChannels
	return []backendCase{
		{"one chunk", s, 7, 0},
		{"chunks of one", s, 7, 1},
		{"ragged chunks", s, 7, 2 * perColumn},
		{"one sequence", 1, 4, 0},
	}
}

func TestColumnBackendBackward(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testColumnBackward[float64](t) })
	t.Run("float32", func(t *testing.T) { testColumnBackward[float32](t) })
}

func testColumnBackward[T num.Float](t *testing.T) {
	cfg := smallColumn
	cm := cfg.MSAChannels
	tol := gradTol[T]()
	for _, b := range backendtest.Backends[T](t) {
		for i, tc := range columnGradCases(cfg) {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(71, uint64(i)))
				mod := newColumn[T](t, rng, cfg)
				s, n := tc.s, tc.n
				msa := randn[T](rng, s*n*cm)
				mask := randMask[T](rng, s, n)
				if s >= 3 {
					mask = backendMask[T](rng, s, n)
				}
				dout := randn[T](rng, s*n*cm)
				var cache ColumnCache[T]
				if _, err := mod.Forward(msa, mask, s, n, &cache); err != nil {
					t.Fatal(err)
				}
				want, err := mod.Backward(&cache, dout)
				if err != nil {
					t.Fatal(err)
				}

				m, err := NewColumn(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.scratch = true, tc.scratch
				dm, dmask := backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, mask)
				out, fwd := backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, s*n*cm)
				if err := m.Forward(dm, dmask, s, n, fwd); err != nil {
					t.Fatal(err)
				}
				var tape ColumnTape[T]
				defer tape.Free()
				if err := m.ForwardTape(dm, dmask, s, n, out, &tape); err != nil {
					t.Fatal(err)
				}
				if i := bitEqual(backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd)); i >= 0 {
					t.Fatalf("ForwardTape's out[%d] differs from Forward's", i)
				}
				gm, g := backendtest.Alloc(t, b.K, s*n*cm), mod.Params.ZerosLike()
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

// TestColumnBackendBackwardDispatch checks that ForwardTape and Backward
// on CPU tensors are ColumnAttention.Forward and Backward, bit for bit.
func TestColumnBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testColumnBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testColumnBackwardDispatch[float32](t) })
}

func testColumnBackwardDispatch[T num.Float](t *testing.T) {
	rng := rand.New(rand.NewPCG(72, 1))
	cfg := smallColumn
	mod := newColumn[T](t, rng, cfg)
	s, n, cm := 4, 6, cfg.MSAChannels
	msa, mask, dout := randn[T](rng, s*n*cm), backendMask[T](rng, s, n), randn[T](rng, s*n*cm)
	var cache ColumnCache[T]
	wantOut, err := mod.Forward(msa, mask, s, n, &cache)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mod.Backward(&cache, dout)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewColumn(backend.CPU[T](), mod)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tape ColumnTape[T]
	defer tape.Free()
	out, gm, g := make([]T, s*n*cm), make([]T, s*n*cm), mod.Params.ZerosLike()
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
		t.Errorf("out[%d] = %v, ColumnAttention.Forward gives %v", i, out[i], wantOut[i])
	}
	if i := bitEqual(gm, want.MSA); i >= 0 {
		t.Errorf("dmsa[%d] = %v, ColumnAttention.Backward gives %v", i, gm[i], want.MSA[i])
	}
	checkBitEqualParams(t, paramArrays(g.tensors(cfg)), paramArrays(want.Params.tensors(cfg)))
}

func TestColumnBackendBackwardAccumulates(t *testing.T) {
	for _, b := range backendtest.Backends[float64](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(73, 1))
				cfg := smallColumn
				cm := cfg.MSAChannels
				mod := newColumn[float64](t, rng, cfg)
				s, n := 4, 5
				m, err := NewColumn(b.K, mod)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = composed // one chunk: the main test covers the chunks
				var tape ColumnTape[float64]
				defer tape.Free()
				msa, mask := backendtest.Put(t, b.K, randn[float64](rng, s*n*cm)), backendtest.Put(t, b.K, backendMask[float64](rng, s, n))
				if err := m.ForwardTape(msa, mask, s, n, backendtest.Alloc(t, b.K, s*n*cm), &tape); err != nil {
					t.Fatal(err)
				}
				dout := backendtest.Put(t, b.K, randn[float64](rng, s*n*cm))
				dm1, dm2, dm3 := backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, s*n*cm), backendtest.Alloc(t, b.K, s*n*cm)
				g1, g2, g3 := mod.Params.ZerosLike(), mod.Params.ZerosLike(), mod.Params.ZerosLike()
				for _, c := range []struct {
					dm backend.Tensor[float64]
					g  *ColumnParams[float64]
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

func TestColumnBackendBackwardErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(74, 1))
	cfg := smallColumn
	k := backend.CPU[float64]()
	mod := newColumn[float64](t, rng, cfg)
	s, n, cm := 3, 4, cfg.MSAChannels
	h := func(x []float64) backend.Tensor[float64] { return backend.Host[float64](x) }
	zeros := func(n int) backend.Tensor[float64] { return h(make([]float64, n)) }
	msa, mask, dout := h(randn[float64](rng, s*n*cm)), h(randMask[float64](rng, s, n)), h(randn[float64](rng, s*n*cm))
	short := mod.Params.ZerosLike()
	short.Attention.OutputW = short.Attention.OutputW[1:]
	for _, p := range forwardPaths {
		t.Run(p.name, func(t *testing.T) {
			m, err := NewColumn(k, mod)
			if err != nil {
				t.Fatal(err)
			}
			m.composed = p.composed
			other, err := NewColumn(k, mod)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var tape, otherTape ColumnTape[float64]
			defer tape.Free()
			defer otherTape.Free()
			if err := m.ForwardTape(msa, mask, s, n, zeros(s*n*cm), &tape); err != nil {
				t.Fatal(err)
			}
			if err := other.ForwardTape(msa, mask, s, n, zeros(s*n*cm), &otherTape); err != nil {
				t.Fatal(err)
			}
			bwd := func(tp *ColumnTape[float64], dout, dm backend.Tensor[float64], g *ColumnParams[float64]) func() error {
				return func() error { return m.Backward(tp, dout, dm, g) }
			}
			runErrCases(t, []errCase{
				{"nil tape", bwd(nil, dout, nil, nil), nil, "tape"},
				{"empty tape", bwd(new(ColumnTape[float64]), dout, nil, nil), nil, "tape"},
				{"tape of another module", bwd(&otherTape, dout, nil, nil), nil, "another module"},
				{"missing dout", bwd(&tape, nil, nil, nil), num.ErrShape, "dout is missing"},
				{"short dout", bwd(&tape, zeros(s*n*cm-1), nil, nil), num.ErrShape, "dout"},
				{"long dmsa", bwd(&tape, dout, zeros(s*n*cm+1), nil), num.ErrShape, "dmsa"},
				{"short gradient", bwd(&tape, dout, nil, short), num.ErrShape, "output_w"},
				{"ForwardTape nil tape", func() error { return m.ForwardTape(msa, mask, s, n, zeros(s*n*cm), nil) }, nil, "nil tape"},
				{"ForwardTape short mask", func() error {
					var tp ColumnTape[float64]
					return m.ForwardTape(msa, zeros(s*n-1), s, n, zeros(s*n*cm), &tp)
				}, num.ErrShape, "mask"},
			})
			for _, b := range backendtest.Backends[float64](t) {
				if b.Name == "cpu" || p.composed {
					continue
				}
				err := m.Backward(&tape, backendtest.Put(t, b.K, make([]float64, s*n*cm)), nil, nil)
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
			if err := m.ForwardTape(msa, mask, s, n, zeros(s*n*cm), &tape); err != nil {
				t.Fatal(err)
			}
			tape.Free()
			if err := m.Backward(&tape, dout, nil, nil); err == nil {
				t.Error("Backward after Free: no error")
			}
			m.Close()
			runErrCases(t, []errCase{
				{"Backward after Close", bwd(&otherTape, dout, nil, nil), nil, "closed"},
				{"ForwardTape after Close", func() error { return m.ForwardTape(msa, mask, s, n, zeros(s*n*cm), &tape) }, nil, "closed"},
			})
		})
	}
}
