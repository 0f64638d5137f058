package triangle

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// gradErrors compares every array of got with want (same names) and
// returns the largest error relative to each array's own max |want|, with
// the name of the array that has it; it fails the test if the names differ
// or a value is not finite.
//
// An array whose max is below 1e-3 of the largest array's max is measured
// against that 1e-3 instead: such an array can vanish analytically (the
// query and key gradients of the attention with one residue, whose
// softmax over one key is constant) and then holds only round-off of the
// size of the other gradients' terms, which no two summation orders
// reproduce.
func gradErrors[T num.Float](t *testing.T, got, want map[string][]T) (worst float64, name string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	var top float64
	for k, w := range want {
		keys = append(keys, k)
		_, s := maxDiff(w, w)
		top = max(top, s)
	}
	slices.Sort(keys)
	if len(got) != len(want) {
		t.Fatalf("%d gradient arrays, want %d", len(got), len(want))
	}
	for _, k := range keys {
		g, ok := got[k]
		if !ok || len(g) != len(want[k]) {
			t.Fatalf("gradient %s: missing or of length %d, want %d", k, len(g), len(want[k]))
		}
		if !allFinite(g) {
			t.Fatalf("gradient %s is not finite", k)
		}
		d, s := maxDiff(g, want[k])
		if e := d / max(s, 1e-3*top, 1e-300); e >= worst {
			worst, name = e, k
		}
	}
	return worst, name
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

// gradCases are the configurations of the gradient tests: each node or
// direction with the automatic chunking and with small chunks, and the
// smallest problems (one residue; two residues, one per chunk).
var attGradCases = []struct {
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
}

func TestAttBackendBackward(t *testing.T) {
	// The composed path differentiates the same function as AttBackward,
	// with the products and sums grouped differently: separate projections
	// instead of one concatenated product, the pair-bias and parameter
	// gradients summed chunk by chunk on the backend, the layer norms'
	// statistics and the ending node's transposes in another order (on CUDA
	// also another summation order and exp). Every gradient is a sum of
	// at most N² = 49 products of terms that are each sums of at most
	// max(c_z, N, H·c) = 8 terms, passed back through a softmax and a layer
	// norm that scales errors by 1/σ of its row.
	//
	// float64 (ulp 1.1e-16): measured ≤ 8e-16 of each array's max on the
	// CPU and emulated CUDA backends (7.6e-14 for feat_2d_weights with one
	// residue, an array that vanishes analytically and is measured against
	// 1e-3 of the largest gradient, see gradErrors). 1e-12 is thousands of
	// ulp: room for a GPU's summation orders and exp. The fully masked
	// rows contribute to every array: their logits −1e9 + s keep s only to
	// the ulp of 1e9 (1.2e-7), but the two paths' s differ by ~1e-16, so
	// they round to the same logit unless they straddle a rounding
	// boundary (a chance of ~1e-9 per logit, not met by these seeds).
	// float32 (ulp 6e-8, and the CPU path's sigmoid is a polynomial exp
	// within 2e-7): measured ≤ 6e-7 of each array's max; 1e-4 leaves a
	// margin of over 100× for a GPU's summation orders (cuBLAS, its exp)
	// compounded through the softmax and layer-norm backward passes.
	t.Run("float64", func(t *testing.T) { testAttBackward[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testAttBackward[float32](t, 1e-4) })
}

func testAttBackward[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range attGradCases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				cfg := AttConfig{Ending: tc.ending, PairChannels: 8, Heads: 2, HeadChannels: 4, ChunkRows: tc.chunk}
				p := testAttParams[T](t, cfg, 121)
				z64, mask64, _, _ := backendPair(tc.n, cfg.PairChannels, 123)
				z, mask := convert[T](z64), convert[T](mask64)
				dout := convert[T](randn(len(z), 125))

				// The CPU reference.
				var c AttCache[T]
				wantOut, wantDz, wantG := make([]T, len(z)), make([]T, len(z)), p.ZerosLike()
				if err := AttForward(p, z, mask, tc.n, wantOut, &c); err != nil {
					t.Fatal(err)
				}
				if err := AttBackward(p, &c, dout, wantDz, wantG); err != nil {
					t.Fatal(err)
				}

				m, err := NewAtt(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed = true
				zt, mt := backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, mask)
				out, fwd := backendtest.Alloc(t, b.K, len(z)), backendtest.Alloc(t, b.K, len(z))
				if err := m.Forward(zt, mt, tc.n, fwd); err != nil {
					t.Fatal(err)
				}
				var tape AttTape[T]
				defer tape.Free()
				if err := m.ForwardTape(zt, mt, tc.n, out, &tape); err != nil {
					t.Fatal(err)
				}
				if i := bitEqual(backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd)); i >= 0 {
					t.Fatalf("ForwardTape's out[%d] differs from Forward's", i)
				}
				dz, g := backendtest.Alloc(t, b.K, len(z)), p.ZerosLike()
				if err := m.Backward(&tape, backendtest.Put(t, b.K, dout), dz, g); err != nil {
					t.Fatal(err)
				}
				gotDz := backendtest.Get(t, b.K, dz)
				if !allFinite(gotDz) {
					t.Fatal("dz is not finite")
				}
				eDz := relErr(gotDz, wantDz)
				eG, worst := gradErrors(t, attArrays(g), attArrays(wantG))
				t.Logf("dz error %.2e; parameter gradients %.2e (%s)", eDz, eG, worst)
				if eDz > tol {
					t.Errorf("dz: relative error %.3g vs AttBackward > %.0e", eDz, tol)
				}
				if eG > tol {
					t.Errorf("gradient %s: relative error %.3g vs AttBackward > %.0e", worst, eG, tol)
				}
			})
		}
	}
}

func TestAttBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testAttBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testAttBackwardDispatch[float32](t) })
}

// testAttBackwardDispatch checks that ForwardTape and Backward on CPU
// tensors are AttForward and AttBackward, bit for bit.
func testAttBackwardDispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	for _, ending := range []bool{false, true} {
		cfg := AttConfig{Ending: ending, PairChannels: 8, Heads: 2, HeadChannels: 4}
		const n = 6
		p := testAttParams[T](t, cfg, 131)
		z64, mask64, _, _ := backendPair(n, cfg.PairChannels, 133)
		z, mask := convert[T](z64), convert[T](mask64)
		dout := convert[T](randn(len(z), 135))
		var c AttCache[T]
		wantOut, wantDz, wantG := make([]T, len(z)), make([]T, len(z)), p.ZerosLike()
		if err := AttForward(p, z, mask, n, wantOut, &c); err != nil {
			t.Fatal(err)
		}
		if err := AttBackward(p, &c, dout, wantDz, wantG); err != nil {
			t.Fatal(err)
		}
		m, err := NewAtt(k, p)
		if err != nil {
			t.Fatal(err)
		}
		var tape AttTape[T]
		out, dz, g := make([]T, len(z)), make([]T, len(z)), p.ZerosLike()
		if err := m.ForwardTape(backend.Host[T](z), backend.Host[T](mask), n, backend.Host[T](out), &tape); err != nil {
			t.Fatal(err)
		}
		if err := m.Backward(&tape, backend.Host[T](dout), backend.Host[T](dz), g); err != nil {
			t.Fatal(err)
		}
		if !tape.host {
			t.Errorf("%s: the tape is not of the CPU path", cfg.Name())
		}
		if i := bitEqual(out, wantOut); i >= 0 {
			t.Errorf("%s: out[%d] = %v, AttForward gives %v", cfg.Name(), i, out[i], wantOut[i])
		}
		if i := bitEqual(dz, wantDz); i >= 0 {
			t.Errorf("%s: dz[%d] = %v, AttBackward gives %v", cfg.Name(), i, dz[i], wantDz[i])
		}
		want := attArrays(wantG)
		for name, got := range attArrays(g) {
			if i := bitEqual(got, want[name]); i >= 0 {
				t.Errorf("%s: gradient %s[%d] = %v, AttBackward gives %v", cfg.Name(), name, i, got[i], want[name][i])
			}
		}
		tape.Free()
		m.Close()
	}
}

func TestAttBackendBackwardAccumulates(t *testing.T) {
	// Backward adds to dz and grad: two calls on the same tape give twice
	// one call's values. Both calls compute the same values in the same
	// order and x + x is exact, so the CPU backend (both paths) doubles
	// exactly; 1e-15 of the array's max allows a GPU backend an
	// order-dependent last bit.
	t.Run("float64", func(t *testing.T) { testAttAccumulates[float64](t, 1e-15) })
}

func testAttAccumulates[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			for _, ending := range []bool{false, true} {
				cfg := AttConfig{Ending: ending, PairChannels: 6, Heads: 2, HeadChannels: 3, ChunkRows: 2}
				t.Run(fmt.Sprintf("%s/composed=%v/%s", b.Name, composed, cfg.Name()), func(t *testing.T) {
					const n = 5
					p := testAttParams[T](t, cfg, 141)
					z64, mask64, _, _ := backendPair(n, cfg.PairChannels, 143)
					z, mask := convert[T](z64), convert[T](mask64)
					m, err := NewAtt(b.K, p)
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					m.composed = composed
					var tape AttTape[T]
					defer tape.Free()
					if err := m.ForwardTape(backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, mask), n, backendtest.Alloc(t, b.K, len(z)), &tape); err != nil {
						t.Fatal(err)
					}
					dout := backendtest.Put(t, b.K, convert[T](randn(len(z), 145)))
					dz1, dz2 := backendtest.Alloc(t, b.K, len(z)), backendtest.Alloc(t, b.K, len(z))
					g1, g2 := p.ZerosLike(), p.ZerosLike()
					for _, c := range []struct {
						dz backend.Tensor[T]
						g  *AttParams[T]
					}{{dz1, g1}, {dz2, g2}, {dz2, g2}} {
						if err := m.Backward(&tape, dout, c.dz, c.g); err != nil {
							t.Fatal(err)
						}
					}
					checkDoubled(t, "dz", backendtest.Get(t, b.K, dz2), backendtest.Get(t, b.K, dz1), tol)
					two := attArrays(g2)
					for name, one := range attArrays(g1) {
						checkDoubled(t, name, two[name], one, tol)
					}
					// dz and grad are optional.
					if err := m.Backward(&tape, dout, nil, nil); err != nil {
						t.Errorf("Backward with no dz and no grad: %v", err)
					}
					if err := m.Backward(&tape, dout, nil, p.ZerosLike()); err != nil {
						t.Errorf("Backward with no dz: %v", err)
					}
					dz3 := backendtest.Alloc(t, b.K, len(z))
					if err := m.Backward(&tape, dout, dz3, nil); err != nil {
						t.Fatal(err)
					}
					checkDoubled(t, "dz without grad", backendtest.Get(t, b.K, dz2), backendtest.Get(t, b.K, dz3), tol)
				})
			}
		}
	}
}

// checkDoubled checks two ≈ 2·one within tol of max |2·one|.
func checkDoubled[T num.Float](t *testing.T, what string, two, one []T, tol float64) {
	t.Helper()
	want := make([]T, len(one))
	for i, v := range one {
		want[i] = 2 * v
	}
	if _, s := maxDiff(want, want); s == 0 {
		t.Errorf("%s: one Backward call gives zeros", what)
	}
	if e := relErr(two, want); e > tol {
		t.Errorf("%s after two Backward calls: relative error %.3g vs twice one call's", what, e)
	}
}

func TestAttBackendBackwardErrors(t *testing.T) {
	k := backend.CPU[float64]()
	cfg := smallAtt(true)
	p := testAttParams[float64](t, cfg, 151)
	const n = 4
	cz := cfg.PairChannels
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	z, mask := testPair(n, cz, 153)
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		m, err := NewAtt(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		other, err := NewAtt(k, p)
		if err != nil {
			t.Fatal(err)
		}
		other.composed = composed
		var tape, otherTape, small AttTape[float64]
		zt, mt := backend.Host[float64](z), backend.Host[float64](mask)
		if err := m.ForwardTape(zt, mt, n, host(n*n*cz), &tape); err != nil {
			t.Fatal(err)
		}
		if err := other.ForwardTape(zt, mt, n, host(n*n*cz), &otherTape); err != nil {
			t.Fatal(err)
		}
		z3, mask3 := testPair(n-1, cz, 155)
		if err := m.ForwardTape(backend.Host[float64](z3), backend.Host[float64](mask3), n-1, host((n-1)*(n-1)*cz), &small); err != nil {
			t.Fatal(err)
		}
		badCfg := smallAtt(false)
		for _, tc := range []struct {
			name      string
			tape      *AttTape[float64]
			dout, dz  backend.Tensor[float64]
			grad      *AttParams[float64]
			want      error
			forwardFn func() error // instead of Backward, when set
		}{
			{name: "nil tape", dout: host(n * n * cz), want: ErrNoForward},
			{name: "empty tape", tape: new(AttTape[float64]), dout: host(n * n * cz), want: ErrNoForward},
			{name: "tape of another module", tape: &otherTape, dout: host(n * n * cz), want: ErrNoForward},
			{name: "tape of another size", tape: &small, dout: host(n * n * cz), dz: host(n * n * cz), want: num.ErrShape},
			{name: "missing dout", tape: &tape, want: num.ErrShape},
			{name: "short dout", tape: &tape, dout: host(n*n*cz - 1), want: num.ErrShape},
			{name: "long dz", tape: &tape, dout: host(n * n * cz), dz: host(n*n*cz + 1), want: num.ErrShape},
			{name: "grad of another config", tape: &tape, dout: host(n * n * cz), grad: testAttParams[float64](t, badCfg, 157), want: ErrConfig},
			{name: "ForwardTape/nil tape", want: ErrConfig, forwardFn: func() error {
				return m.ForwardTape(zt, mt, n, host(n*n*cz), nil)
			}},
			{name: "ForwardTape/short out", want: num.ErrShape, forwardFn: func() error {
				var tp AttTape[float64]
				return m.ForwardTape(zt, mt, n, host(n*n*cz-1), &tp)
			}},
			{name: "ForwardTape/long mask", want: num.ErrShape, forwardFn: func() error {
				var tp AttTape[float64]
				return m.ForwardTape(zt, host(n*n+1), n, host(n*n*cz), &tp)
			}},
			{name: "ForwardTape/negative N", want: num.ErrShape, forwardFn: func() error {
				var tp AttTape[float64]
				return m.ForwardTape(host(0), host(0), -1, host(0), &tp)
			}},
		} {
			t.Run(name+tc.name, func(t *testing.T) {
				var err error
				if tc.forwardFn != nil {
					err = tc.forwardFn()
				} else {
					err = m.Backward(tc.tape, tc.dout, tc.dz, tc.grad)
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("error %v, want one wrapping %v", err, tc.want)
				}
			})
		}
		// A failed ForwardTape leaves the tape empty.
		if err := m.ForwardTape(zt, mt, n, host(1), &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short out: error %v", name, err)
		}
		if err := m.Backward(&tape, host(n*n*cz), nil, nil); !errors.Is(err, ErrNoForward) {
			t.Errorf("%sBackward after a failed ForwardTape: error %v, want ErrNoForward", name, err)
		}
		// A freed tape holds nothing.
		if err := m.ForwardTape(zt, mt, n, host(n*n*cz), &tape); err != nil {
			t.Fatal(err)
		}
		tape.Free()
		if err := m.Backward(&tape, host(n*n*cz), nil, nil); !errors.Is(err, ErrNoForward) {
			t.Errorf("%sBackward after Free: error %v, want ErrNoForward", name, err)
		}
		// N = 0 is an empty problem, not an error.
		if err := m.ForwardTape(host(0), host(0), 0, host(0), &tape); err != nil {
			t.Errorf("%sForwardTape with N = 0: %v", name, err)
		}
		if err := m.Backward(&tape, host(0), host(0), p.ZerosLike()); err != nil {
			t.Errorf("%sBackward with N = 0: %v", name, err)
		}
		m.Close()
		if err := m.Backward(&otherTape, host(n*n*cz), nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward on a closed module: error %v, want ErrConfig", name, err)
		}
		if err := m.ForwardTape(zt, mt, n, host(n*n*cz), &tape); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape on a closed module: error %v, want ErrConfig", name, err)
		}
		otherTape.Free()
		small.Free()
		other.Close()
	}
	var zeroTape AttTape[float64]
	zeroTape.Free() // a zero tape may be freed
}
