package alphafold

import (
	"errors"
	"fmt"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// opmGradCases are the configurations of the outer product mean's gradient
// tests: residues in one chunk and in chunks with a partial last one, and
// the smallest problem (one sequence, one residue).
var opmGradCases = []struct {
	name  string
	chunk int
	s, n  int
}{
	{"one chunk", 0, 5, 7},
	{"chunks of 3", 3, 5, 7},
	{"chunks of 1", 1, 4, 3},
	{"one sequence one residue", 0, 1, 1},
}

// opmGradMask is bkMask (zeros, sequence 1 fully masked, residue N−1
// absent from every sequence) for S ≥ 2, and all ones for one sequence and
// one residue (whose only entry masked would make every gradient zero).
func opmGradMask[T num.Float](s, n int, seed uint64) []T {
	if s == 1 && n == 1 {
		return []T{1}
	}
	return convertEvo[T](bkMask(s, n, seed))
}

// TestOuterProductMeanBackendBackward checks the composed path of
// OuterProductMean.ForwardTape and Backward against
// OuterProductMeanParams.Forward and Backward on every backend of the
// build: ForwardTape's out is Forward's bit for bit, and dmsa and every
// parameter gradient agree with the CPU backward.
func TestOuterProductMeanBackendBackward(t *testing.T) {
	// The composed path differentiates the same function as the CPU
	// backward with the same products; it divides by count + eps where the
	// CPU multiplies by its inverse (≤ 1 ulp per value), and sums the
	// parameter gradients in accumulators of their own; on CUDA the sums
	// (≤ c² = 9 or c_z = 6 terms per product, ≤ S·N = 35 for the weight
	// gradients, c_m = 8 in a layer norm) run in another order. The pairs
	// that share no sequence are divided by eps = 1e-3, which scales their
	// round-off by 1000 in the output-bias gradient as in every other.
	// float64 (ulp 1.1e-16): measured ≤ 4.9e-16 of each array's max on
	// the CPU backend and ≤ 7.4e-16 on the emulated CUDA one; 1e-12 leaves
	// room for a GPU's summation orders. float32 (ulp 6e-8): measured
	// ≤ 3.6e-7 (CPU) and ≤ 6.4e-7 (emulated CUDA); 1e-5 leaves a margin of
	// 15× for cuBLAS's orders compounded through the layer norm's backward
	// pass.
	t.Run("float64", func(t *testing.T) { testOPMBackward[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testOPMBackward[float32](t, 1e-5) })
}

func testOPMBackward[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range opmGradCases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				cfg := OuterProductMeanConfig{CM: 8, C: 3, CZ: 6, Eps: 1e-3, Chunk: tc.chunk}
				s, n := tc.s, tc.n
				p := randomOuterProductMean[T](t, cfg, 51)
				msa := convertEvo[T](bkRandom(s*n*cfg.CM, 52))
				mask := opmGradMask[T](s, n, 53)
				dout := convertEvo[T](bkRandom(n*n*cfg.CZ, 54))
				var c OuterProductMeanCache[T]
				wantOut, wantDm, wantG := make([]T, n*n*cfg.CZ), make([]T, len(msa)), p.ZerosLike()
				if err := p.Forward(msa, mask, s, n, wantOut, &c); err != nil {
					t.Fatal(err)
				}
				if err := p.Backward(&c, dout, wantDm, wantG); err != nil {
					t.Fatal(err)
				}

				m, err := NewOuterProductMean(b.K, cfg, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = true
				mt, kt := backendtest.Put(t, b.K, msa), backendtest.Put(t, b.K, mask)
				out, fwd := backendtest.Alloc(t, b.K, n*n*cfg.CZ), backendtest.Alloc(t, b.K, n*n*cfg.CZ)
				if err := m.Forward(mt, kt, s, n, fwd); err != nil {
					t.Fatal(err)
				}
				var tape OuterProductMeanTape[T]
				defer tape.Free()
				if err := m.ForwardTape(mt, kt, s, n, out, &tape); err != nil {
					t.Fatal(err)
				}
				bkExact(t, "ForwardTape's out vs Forward's", backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd))
				dm, g := backendtest.Alloc(t, b.K, len(msa)), p.ZerosLike()
				if err := m.Backward(&tape, backendtest.Put(t, b.K, dout), dm, g); err != nil {
					t.Fatal(err)
				}
				eDm := bkRelErr(backendtest.Get(t, b.K, dm), wantDm)
				eG, worst := bkGradErrors(t, bkArrays(g.tensors()), bkArrays(wantG.tensors()))
				t.Logf("dmsa error %.2e; parameter gradients %.2e (%s)", eDm, eG, worst)
				if eDm > tol {
					t.Errorf("dmsa: relative error %.3g vs OuterProductMeanParams.Backward > %.0e", eDm, tol)
				}
				if eG > tol {
					t.Errorf("gradient %s: relative error %.3g vs OuterProductMeanParams.Backward > %.0e", worst, eG, tol)
				}
			})
		}
	}
}

// TestOuterProductMeanBackendBackwardDispatch checks that ForwardTape and
// Backward on CPU tensors are OuterProductMeanParams.Forward and Backward,
// bit for bit.
func TestOuterProductMeanBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testOPMBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testOPMBackwardDispatch[float32](t) })
}

func testOPMBackwardDispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	for _, tc := range opmGradCases {
		cfg := OuterProductMeanConfig{CM: 8, C: 3, CZ: 6, Eps: 1e-3, Chunk: tc.chunk}
		s, n := tc.s, tc.n
		p := randomOuterProductMean[T](t, cfg, 61)
		msa := convertEvo[T](bkRandom(s*n*cfg.CM, 62))
		mask := opmGradMask[T](s, n, 63)
		dout := convertEvo[T](bkRandom(n*n*cfg.CZ, 64))
		var c OuterProductMeanCache[T]
		wantOut, wantDm, wantG := make([]T, n*n*cfg.CZ), make([]T, len(msa)), p.ZerosLike()
		if err := p.Forward(msa, mask, s, n, wantOut, &c); err != nil {
			t.Fatal(err)
		}
		if err := p.Backward(&c, dout, wantDm, wantG); err != nil {
			t.Fatal(err)
		}
		m, err := NewOuterProductMean(k, cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		var tape OuterProductMeanTape[T]
		out, dm, g := make([]T, n*n*cfg.CZ), make([]T, len(msa)), p.ZerosLike()
		if err := m.ForwardTape(backend.Host[T](msa), backend.Host[T](mask), s, n, backend.Host[T](out), &tape); err != nil {
			t.Fatal(err)
		}
		if err := m.Backward(&tape, backend.Host[T](dout), backend.Host[T](dm), g); err != nil {
			t.Fatal(err)
		}
		if !tape.host {
			t.Errorf("%s: the tape is not of the CPU path", tc.name)
		}
		bkExact(t, tc.name+" out", out, wantOut)
		bkExact(t, tc.name+" dmsa", dm, wantDm)
		want := bkArrays(wantG.tensors())
		for name, got := range bkArrays(g.tensors()) {
			bkExact(t, tc.name+" gradient "+name, got, want[name])
		}
		tape.Free()
		m.Close()
	}
}

// TestOuterProductMeanBackendBackwardAccumulates checks that Backward adds
// to dmsa and grad: two calls on the same tape give twice one call's
// values, and that dmsa and grad are optional.
func TestOuterProductMeanBackendBackwardAccumulates(t *testing.T) {
	// Both calls compute the same values in the same order and x + x is
	// exact, so the CPU backend (both paths) doubles exactly; 1e-15 of the
	// array's max allows a GPU backend an order-dependent last bit.
	const s, n, tol = 4, 5, 1e-15
	for _, b := range backendtest.Backends[float64](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				cfg := OuterProductMeanConfig{CM: 6, C: 2, CZ: 4, Eps: 1e-3, Chunk: 2}
				p := randomOuterProductMean[float64](t, cfg, 71)
				k := b.K
				m, err := NewOuterProductMean(k, cfg, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = composed
				var tape OuterProductMeanTape[float64]
				defer tape.Free()
				msa := backendtest.Put(t, k, bkRandom(s*n*cfg.CM, 72))
				mask := backendtest.Put(t, k, bkMask(s, n, 73))
				if err := m.ForwardTape(msa, mask, s, n, backendtest.Alloc(t, k, n*n*cfg.CZ), &tape); err != nil {
					t.Fatal(err)
				}
				dout := backendtest.Put(t, k, bkRandom(n*n*cfg.CZ, 74))
				dm1, dm2 := backendtest.Alloc(t, k, s*n*cfg.CM), backendtest.Alloc(t, k, s*n*cfg.CM)
				g1, g2 := p.ZerosLike(), p.ZerosLike()
				for _, c := range []struct {
					dm backend.Tensor[float64]
					g  *OuterProductMeanParams[float64]
				}{{dm1, g1}, {dm2, g2}, {dm2, g2}} {
					if err := m.Backward(&tape, dout, c.dm, c.g); err != nil {
						t.Fatal(err)
					}
				}
				bkCheckDoubled(t, "dmsa", backendtest.Get(t, k, dm2), backendtest.Get(t, k, dm1), tol)
				two := bkArrays(g2.tensors())
				for name, one := range bkArrays(g1.tensors()) {
					bkCheckDoubled(t, name, two[name], one, tol)
				}
				if err := m.Backward(&tape, dout, nil, nil); err != nil {
					t.Errorf("Backward with no dmsa and no grad: %v", err)
				}
				g3 := p.ZerosLike()
				if err := m.Backward(&tape, dout, nil, g3); err != nil {
					t.Errorf("Backward with no dmsa: %v", err)
				}
				want := bkArrays(g1.tensors())
				for name, got := range bkArrays(g3.tensors()) {
					bkExact(t, "gradient without dmsa "+name, got, want[name])
				}
				dm3 := backendtest.Alloc(t, k, s*n*cfg.CM)
				if err := m.Backward(&tape, dout, dm3, nil); err != nil {
					t.Fatal(err)
				}
				bkExact(t, "dmsa without grad", backendtest.Get(t, k, dm3), backendtest.Get(t, k, dm1))
			})
		}
	}
}

// TestOuterProductMeanBackendBackwardErrors checks the errors of
// ForwardTape and Backward on both paths.
func TestOuterProductMeanBackendBackwardErrors(t *testing.T) {
	cfg := OuterProductMeanConfig{CM: 4, C: 2, CZ: 3, Eps: 1e-3}
	p := randomOuterProductMean[float64](t, cfg, 81)
	k := backend.CPU[float64]()
	const s, n = 2, 3
	h := func(l int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, l)) }
	msa, mask := backend.Host[float64](bkRandom(s*n*4, 82)), backend.Host[float64](bkMask(s, n, 83))
	wrongCfg := cfg
	wrongCfg.CZ = 4
	wrong := randomOuterProductMean[float64](t, wrongCfg, 84)
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		m, err := NewOuterProductMean(k, cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		other, err := NewOuterProductMean(k, cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		other.composed = composed
		var tape, otherTape OuterProductMeanTape[float64]
		if err := m.ForwardTape(msa, mask, s, n, h(n*n*3), &tape); err != nil {
			t.Fatal(err)
		}
		if err := other.ForwardTape(msa, mask, s, n, h(n*n*3), &otherTape); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			want error
			run  func() error
		}{
			{"nil tape", ErrConfig, func() error { return m.Backward(nil, h(n*n*3), nil, nil) }},
			{"empty tape", ErrConfig, func() error { return m.Backward(new(OuterProductMeanTape[float64]), h(n*n*3), nil, nil) }},
			{"tape of another module", ErrConfig, func() error { return m.Backward(&otherTape, h(n*n*3), nil, nil) }},
			{"missing dout", num.ErrShape, func() error { return m.Backward(&tape, nil, nil, nil) }},
			{"short dout", num.ErrShape, func() error { return m.Backward(&tape, h(n*n*3-1), nil, nil) }},
			{"long dmsa", num.ErrShape, func() error { return m.Backward(&tape, h(n*n*3), h(s*n*4+1), nil) }},
			{"grad of another config", ErrConfig, func() error { return m.Backward(&tape, h(n*n*3), nil, wrong) }},
			{"ForwardTape/nil tape", ErrConfig, func() error { return m.ForwardTape(msa, mask, s, n, h(n*n*3), nil) }},
			{"ForwardTape/short out", num.ErrShape, func() error {
				var tp OuterProductMeanTape[float64]
				return m.ForwardTape(msa, mask, s, n, h(n*n*3-1), &tp)
			}},
			{"ForwardTape/missing mask", num.ErrShape, func() error {
				var tp OuterProductMeanTape[float64]
				return m.ForwardTape(msa, nil, s, n, h(n*n*3), &tp)
			}},
			{"ForwardTape/no residues", num.ErrShape, func() error {
				var tp OuterProductMeanTape[float64]
				return m.ForwardTape(h(0), h(0), s, 0, h(0), &tp)
			}},
		} {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Errorf("%s%s: error %v, want one wrapping %v", name, tc.name, err, tc.want)
			}
		}
		// A failed ForwardTape leaves the tape empty.
		if err := m.ForwardTape(msa, mask, s, n, h(1), &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short out: error %v", name, err)
		}
		if err := m.Backward(&tape, h(n*n*3), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after a failed ForwardTape: error %v, want ErrConfig", name, err)
		}
		// A freed tape holds nothing.
		if err := m.ForwardTape(msa, mask, s, n, h(n*n*3), &tape); err != nil {
			t.Fatal(err)
		}
		tape.Free()
		if err := m.Backward(&tape, h(n*n*3), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after Free: error %v, want ErrConfig", name, err)
		}
		m.Close()
		if err := m.Backward(&otherTape, h(n*n*3), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward on a closed module: error %v, want ErrConfig", name, err)
		}
		if err := m.ForwardTape(msa, mask, s, n, h(n*n*3), &tape); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape on a closed module: error %v, want ErrConfig", name, err)
		}
		otherTape.Free()
		other.Close()
	}
	var zero OuterProductMeanTape[float64]
	zero.Free() // a zero tape may be freed
}
