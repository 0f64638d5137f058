package triangle

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// backendPair returns a pair representation [n, n, cz] and a mask with
// random holes, row fullRow and column fullCol entirely masked (so that
// each node has one attention whose keys are all masked); fullRow and
// fullCol are −1 for n < 3.
func backendPair(n, cz int, seed uint64) (z, mask []float64, fullRow, fullCol int) {
	z, mask = testPair(n, cz, seed)
	if n < 3 {
		return z, mask, -1, -1
	}
	fullRow, fullCol = 1, n-2
	for j := range n {
		mask[fullRow*n+j] = 0
		mask[j*n+fullCol] = 0
	}
	return z, mask, fullRow, fullCol
}

// relErr returns max |got − want| / max |want| (max |want| taken as 1 when
// it is 0).
func relErr[T num.Float](got, want []T) float64 {
	d, s := maxDiff(got, want)
	if s == 0 {
		s = 1
	}
	return d / s
}

// fullyMaskedPairs returns the output pairs (i·n + j) of an attention of
// cfg whose keys are all masked by backendPair's mask: row fullRow of the
// starting node, column fullCol of the ending node.
func fullyMaskedPairs(cfg AttConfig, n, fullRow, fullCol int) map[int]bool {
	s := map[int]bool{}
	if fullRow < 0 {
		return s
	}
	for t := range n {
		if cfg.Ending {
			s[t*n+fullCol] = true
		} else {
			s[fullRow*n+t] = true
		}
	}
	return s
}

// splitPairs returns the elements of x [n², c] of the pairs in set and
// those of the others.
func splitPairs[T num.Float](x []T, c int, set map[int]bool) (in, out []T) {
	for p := range len(x) / c {
		if set[p] {
			in = append(in, x[p*c:(p+1)*c]...)
		} else {
			out = append(out, x[p*c:(p+1)*c]...)
		}
	}
	return in, out
}

func TestAttBackendComposed(t *testing.T) {
	// float64: the composed path computes AttForward's arithmetic with
	// the products and sums grouped differently (separate projections
	// instead of one concatenated product; on CUDA another summation order
	// and exp), sums of at most max(c_z, N, H·c) = 8 terms after a layer
	// norm; 1e-12 of the output's size is thousands of ulp of that.
	// float32: the same in float32 (ulp 6e-8), where the CPU's sigmoid is
	// a polynomial exp (within 2e-7) and a layer norm scales errors by
	// 1/σ of its row; 1e-5 leaves a margin of ~10× over that.
	//
	// A query whose keys are all masked has logits −1e9 + s. In float64
	// that sum keeps s only to the ulp of 1e9, 1.2e-7, so an ulp-level
	// change of s moves such a row's softmax weights by up to ~1e-7
	// (relative): those rows are held to 1e-6 (attn's documented effect of
	// the order of the bias terms). In float32 the constant absorbs s and
	// both paths give the uniform average, within the float32 tolerance.
	t.Run("float64", func(t *testing.T) { testAttComposed[float64](t, 1e-12, 1e-6) })
	t.Run("float32", func(t *testing.T) { testAttComposed[float32](t, 1e-5, 1e-5) })
}

func testAttComposed[T num.Float](t *testing.T, tol, tolMasked float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range []struct {
			name   string
			ending bool
			chunk  int // AttConfig.ChunkRows
			n      int
		}{
			{"starting", false, 0, 7},
			{"starting/chunks-of-3", false, 3, 7},
			{"ending", true, 0, 7},
			{"ending/chunks-of-3", true, 3, 7},
			{"ending/one-residue", true, 0, 1},
			{"starting/two-residues", false, 1, 2},
		} {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				cfg := AttConfig{Ending: tc.ending, PairChannels: 8, Heads: 2, HeadChannels: 4, ChunkRows: tc.chunk}
				p := testAttParams[T](t, cfg, 21)
				z64, mask64, fr, fc := backendPair(tc.n, cfg.PairChannels, 23)
				z, mask := convert[T](z64), convert[T](mask64)
				want := make([]T, len(z))
				if err := AttForward(p, z, mask, tc.n, want, nil); err != nil {
					t.Fatal(err)
				}
				m, err := NewAtt(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = true
				out := backendtest.Alloc(t, b.K, len(z))
				if err := m.Forward(backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, mask), tc.n, out); err != nil {
					t.Fatal(err)
				}
				got := backendtest.Get(t, b.K, out)
				if !allFinite(got) {
					t.Fatal("composed output is not finite")
				}
				set := fullyMaskedPairs(cfg, tc.n, fr, fc)
				gIn, gOut := splitPairs(got, cfg.PairChannels, set)
				wIn, wOut := splitPairs(want, cfg.PairChannels, set)
				_, scale := maxDiff(want, want)
				e, dIn := relErr(gOut, wOut), 0.0
				if len(gIn) > 0 {
					d, _ := maxDiff(gIn, wIn)
					dIn = d / max(scale, 1)
				}
				t.Logf("max |out| %.3g, error %.2e (fully masked rows %.2e)", scale, e, dIn)
				if e > tol {
					t.Errorf("composed vs AttForward: relative error %.3g > %.0e", e, tol)
				}
				if dIn > tolMasked {
					t.Errorf("composed vs AttForward on fully masked rows: relative error %.3g > %.0e", dIn, tolMasked)
				}
			})
		}
	}
}

func TestAttBackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testAttDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testAttDispatch[float32](t) })
}

// testAttDispatch checks that Forward on CPU tensors is AttForward, bit
// for bit.
func testAttDispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	for _, ending := range []bool{false, true} {
		cfg := AttConfig{Ending: ending, PairChannels: 8, Heads: 2, HeadChannels: 4}
		const n = 6
		p := testAttParams[T](t, cfg, 31)
		z64, mask64, _, _ := backendPair(n, cfg.PairChannels, 33)
		z, mask := convert[T](z64), convert[T](mask64)
		want := make([]T, len(z))
		if err := AttForward(p, z, mask, n, want, nil); err != nil {
			t.Fatal(err)
		}
		m, err := NewAtt(k, p)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]T, len(z))
		if err := m.Forward(backend.Host[T](z), backend.Host[T](mask), n, backend.Host[T](got)); err != nil {
			t.Fatal(err)
		}
		m.Close()
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: out[%d] = %v, AttForward gives %v", cfg.Name(), i, got[i], want[i])
			}
		}
	}
}

func TestAttBackendErrors(t *testing.T) {
	k := backend.CPU[float64]()
	cfg := smallAtt(false)
	p := testAttParams[float64](t, cfg, 41)
	const n = 4
	cz := cfg.PairChannels
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	for _, composed := range []bool{false, true} {
		m, err := NewAtt(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		for _, tc := range []struct {
			name         string
			z, mask, out backend.Tensor[float64]
			n            int
		}{
			{"negative N", host(0), host(0), host(0), -1},
			{"short z", host(n*n*cz - 1), host(n * n), host(n * n * cz), n},
			{"long mask", host(n * n * cz), host(n*n + 1), host(n * n * cz), n},
			{"short out", host(n * n * cz), host(n * n), host(n * n), n},
			{"missing z", nil, host(n * n), host(n * n * cz), n},
			{"missing mask", host(n * n * cz), nil, host(n * n * cz), n},
		} {
			t.Run(fmt.Sprintf("composed=%v/%s", composed, tc.name), func(t *testing.T) {
				err := m.Forward(tc.z, tc.mask, tc.n, tc.out)
				if !errors.Is(err, num.ErrShape) {
					t.Errorf("Forward: error %v, want one wrapping num.ErrShape", err)
				}
			})
		}
		// N = 0 is an empty problem, not an error.
		if err := m.Forward(host(0), host(0), 0, host(0)); err != nil {
			t.Errorf("composed=%v: Forward with N = 0: %v", composed, err)
		}
		m.Close()
		if err := m.Forward(host(n*n*cz), host(n*n), n, host(n*n*cz)); err == nil {
			t.Error("Forward after Close: no error")
		}
	}

	bad := *p
	bad.FeatTwoDWeights = bad.FeatTwoDWeights[1:]
	badCfg := *p
	badCfg.Config.Heads = 0
	for _, tc := range []struct {
		name string
		k    backend.Kernels[float64]
		p    *AttParams[float64]
		want error
	}{
		{"nil backend", nil, p, ErrConfig},
		{"nil params", k, nil, ErrConfig},
		{"short feat_2d_weights", k, &bad, num.ErrShape},
		{"invalid config", k, &badCfg, ErrConfig},
	} {
		t.Run("NewAtt/"+tc.name, func(t *testing.T) {
			if _, err := NewAtt(tc.k, tc.p); !errors.Is(err, tc.want) {
				t.Errorf("NewAtt: error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}

func TestAttBackendNaN(t *testing.T) {
	// The composed path on the CPU backend reports a non-finite input
	// through the attention kernel's value check, as AttForward does.
	k := backend.CPU[float64]()
	cfg := smallAtt(true)
	p := testAttParams[float64](t, cfg, 43)
	const n = 3
	z, mask := testPair(n, cfg.PairChannels, 45)
	z[5] = math.Inf(1)
	for _, composed := range []bool{false, true} {
		m, err := NewAtt(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		err = m.Forward(backend.Host[float64](z), backend.Host[float64](mask), n, backend.Host[float64](make([]float64, len(z))))
		if !errors.Is(err, num.ErrNaN) {
			t.Errorf("composed=%v: error %v, want one wrapping num.ErrNaN", composed, err)
		}
		m.Close()
	}
}
