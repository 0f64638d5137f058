package triangle

import (
	"errors"
	"fmt"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

// mulGradCases are the configurations of the gradient tests: each
// direction with all hidden channels in one chunk and in chunks of 4 (a
// short last chunk), and the smallest problems.
var mulGradCases = []struct {
	name     string
	incoming bool
	chunk    int // MulConfig.ChunkChannels
	n        int
}{
	{"outgoing", false, 0, 7},
	{"outgoing/chunks-of-4", false, 4, 7},
	{"incoming", true, 0, 7},
	{"incoming/chunks-of-4", true, 4, 7},
	{"incoming/one-residue", true, 0, 1},
	{"outgoing/two-residues/chunks-of-1", false, 1, 2},
}

func TestMulBackendBackward(t *testing.T) {
	// The composed path differentiates the same function as MulBackward,
	// with the products and sums grouped differently: separate
	// projections instead of one packed product, the output gate's and
	// projection's gradients in blocks of pairs on the backend, the centre
	// layer norm's statistics by nn.LayerNorm's two-pass formula instead of
	// centerNorm's corrected one, its backward through LayerNormBackward
	// with unit statistics and a separate 1/σ scaling (on CUDA also another
	// summation order). Every gradient is a sum of at most N² = 49
	// products of terms that are each sums of at most max(c_z, c, N) = 8
	// terms, passed back through two layer norms that scale errors by 1/σ
	// of their rows.
	//
	// float64 (ulp 1.1e-16): measured ≤ 1.2e-15 of each array's max on
	// the CPU and emulated CUDA backends; 1e-12 is thousands of ulp, room
	// for a GPU's summation orders (cuBLAS, N-term contractions).
	// float32 (ulp 6e-8, and the CPU path's sigmoid is a polynomial exp
	// within 2e-7): measured ≤ 1e-6 of each array's max; 1e-4 leaves a
	// margin of 100× for a GPU's summation orders compounded through the
	// two layer-norm backward passes.
	t.Run("float64", func(t *testing.T) { testMulBackward[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testMulBackward[float32](t, 1e-4) })
}

func testMulBackward[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range mulGradCases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				cfg := MulConfig{Incoming: tc.incoming, PairChannels: 8, HiddenChannels: 6, ChunkChannels: tc.chunk}
				p := testMulParams[T](t, cfg, 161)
				z64, mask64, _, _ := backendPair(tc.n, cfg.PairChannels, 163)
				z, mask := convert[T](z64), convert[T](mask64)
				dout := convert[T](randn(len(z), 165))

				// The CPU reference.
				var c MulCache[T]
				wantOut, wantDz, wantG := make([]T, len(z)), make([]T, len(z)), p.ZerosLike()
				if err := MulForward(p, z, mask, tc.n, wantOut, &c); err != nil {
					t.Fatal(err)
				}
				if err := MulBackward(p, &c, dout, wantDz, wantG); err != nil {
					t.Fatal(err)
				}

				m, err := NewMul(b.K, p)
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
				var tape MulTape[T]
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
				eG, worst := gradErrors(t, mulArrays(g), mulArrays(wantG))
				t.Logf("dz error %.2e; parameter gradients %.2e (%s)", eDz, eG, worst)
				if eDz > tol {
					t.Errorf("dz: relative error %.3g vs MulBackward > %.0e", eDz, tol)
				}
				if eG > tol {
					t.Errorf("gradient %s: relative error %.3g vs MulBackward > %.0e", worst, eG, tol)
				}
			})
		}
	}
}

func TestMulBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testMulBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testMulBackwardDispatch[float32](t) })
}

// testMulBackwardDispatch checks that ForwardTape and Backward on CPU
// tensors are MulForward and MulBackward, bit for bit.
func testMulBackwardDispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	for _, incoming := range []bool{false, true} {
		cfg := MulConfig{Incoming: incoming, PairChannels: 8, HiddenChannels: 6}
		const n = 6
		p := testMulParams[T](t, cfg, 171)
		z64, mask64, _, _ := backendPair(n, cfg.PairChannels, 173)
		z, mask := convert[T](z64), convert[T](mask64)
		dout := convert[T](randn(len(z), 175))
		var c MulCache[T]
		wantOut, wantDz, wantG := make([]T, len(z)), make([]T, len(z)), p.ZerosLike()
		if err := MulForward(p, z, mask, n, wantOut, &c); err != nil {
			t.Fatal(err)
		}
		if err := MulBackward(p, &c, dout, wantDz, wantG); err != nil {
			t.Fatal(err)
		}
		m, err := NewMul(k, p)
		if err != nil {
			t.Fatal(err)
		}
		var tape MulTape[T]
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
			t.Errorf("%s: out[%d] = %v, MulForward gives %v", cfg.Name(), i, out[i], wantOut[i])
		}
		if i := bitEqual(dz, wantDz); i >= 0 {
			t.Errorf("%s: dz[%d] = %v, MulBackward gives %v", cfg.Name(), i, dz[i], wantDz[i])
		}
		want := mulArrays(wantG)
		for name, got := range mulArrays(g) {
			if i := bitEqual(got, want[name]); i >= 0 {
				t.Errorf("%s: gradient %s[%d] = %v, MulBackward gives %v", cfg.Name(), name, i, got[i], want[name][i])
			}
		}
		tape.Free()
		m.Close()
	}
}

func TestMulBackendBackwardAccumulates(t *testing.T) {
	// As TestAttBackendBackwardAccumulates: exact on the CPU backend, 1e-15
	// of the array's max for a GPU's order-dependent last bit.
	t.Run("float64", func(t *testing.T) { testMulAccumulates[float64](t, 1e-15) })
}

func testMulAccumulates[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			for _, incoming := range []bool{false, true} {
				cfg := MulConfig{Incoming: incoming, PairChannels: 6, HiddenChannels: 5, ChunkChannels: 2}
				t.Run(fmt.Sprintf("%s/composed=%v/%s", b.Name, composed, cfg.Name()), func(t *testing.T) {
					const n = 5
					p := testMulParams[T](t, cfg, 181)
					z64, mask64, _, _ := backendPair(n, cfg.PairChannels, 183)
					z, mask := convert[T](z64), convert[T](mask64)
					m, err := NewMul(b.K, p)
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					m.composed = composed
					var tape MulTape[T]
					defer tape.Free()
					if err := m.ForwardTape(backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, mask), n, backendtest.Alloc(t, b.K, len(z)), &tape); err != nil {
						t.Fatal(err)
					}
					dout := backendtest.Put(t, b.K, convert[T](randn(len(z), 185)))
					dz1, dz2 := backendtest.Alloc(t, b.K, len(z)), backendtest.Alloc(t, b.K, len(z))
					g1, g2 := p.ZerosLike(), p.ZerosLike()
					for _, c := range []struct {
						dz backend.Tensor[T]
						g  *MulParams[T]
					}{{dz1, g1}, {dz2, g2}, {dz2, g2}} {
						if err := m.Backward(&tape, dout, c.dz, c.g); err != nil {
							t.Fatal(err)
						}
					}
					checkDoubled(t, "dz", backendtest.Get(t, b.K, dz2), backendtest.Get(t, b.K, dz1), tol)
					two := mulArrays(g2)
					for name, one := range mulArrays(g1) {
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

func TestMulBackendBackwardErrors(t *testing.T) {
	k := backend.CPU[float64]()
	cfg := smallMul(true)
	p := testMulParams[float64](t, cfg, 191)
	const n = 4
	cz := cfg.PairChannels
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	z, mask := testPair(n, cz, 193)
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		m, err := NewMul(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		other, err := NewMul(k, p)
		if err != nil {
			t.Fatal(err)
		}
		other.composed = composed
		var tape, otherTape, small MulTape[float64]
		zt, mt := backend.Host[float64](z), backend.Host[float64](mask)
		if err := m.ForwardTape(zt, mt, n, host(n*n*cz), &tape); err != nil {
			t.Fatal(err)
		}
		if err := other.ForwardTape(zt, mt, n, host(n*n*cz), &otherTape); err != nil {
			t.Fatal(err)
		}
		z3, mask3 := testPair(n-1, cz, 195)
		if err := m.ForwardTape(backend.Host[float64](z3), backend.Host[float64](mask3), n-1, host((n-1)*(n-1)*cz), &small); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name      string
			tape      *MulTape[float64]
			dout, dz  backend.Tensor[float64]
			grad      *MulParams[float64]
			want      error
			forwardFn func() error // instead of Backward, when set
		}{
			{name: "nil tape", dout: host(n * n * cz), want: ErrNoForward},
			{name: "empty tape", tape: new(MulTape[float64]), dout: host(n * n * cz), want: ErrNoForward},
			{name: "tape of another module", tape: &otherTape, dout: host(n * n * cz), want: ErrNoForward},
			{name: "tape of another size", tape: &small, dout: host(n * n * cz), dz: host(n * n * cz), want: num.ErrShape},
			{name: "missing dout", tape: &tape, want: num.ErrShape},
			{name: "long dout", tape: &tape, dout: host(n*n*cz + 1), want: num.ErrShape},
			{name: "short dz", tape: &tape, dout: host(n * n * cz), dz: host(n*n*cz - cz), want: num.ErrShape},
			{name: "grad of another config", tape: &tape, dout: host(n * n * cz), grad: testMulParams[float64](t, smallMul(false), 197), want: ErrConfig},
			{name: "ForwardTape/nil tape", want: ErrConfig, forwardFn: func() error {
				return m.ForwardTape(zt, mt, n, host(n*n*cz), nil)
			}},
			{name: "ForwardTape/long z", want: num.ErrShape, forwardFn: func() error {
				var tp MulTape[float64]
				return m.ForwardTape(host(n*n*cz+1), mt, n, host(n*n*cz), &tp)
			}},
			{name: "ForwardTape/negative N", want: num.ErrShape, forwardFn: func() error {
				var tp MulTape[float64]
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
		if err := m.ForwardTape(zt, host(1), n, host(n*n*cz), &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short mask: error %v", name, err)
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
	var zeroTape MulTape[float64]
	zeroTape.Free() // a zero tape may be freed
}
