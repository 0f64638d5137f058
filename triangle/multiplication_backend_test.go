package triangle

import (
	"errors"
	"fmt"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
)

func TestMulBackendComposed(t *testing.T) {
	// float64: the composed path computes MulForward's arithmetic with the
	// products and sums grouped differently (separate projections instead
	// of one packed product, the layer norms' statistics in another order;
	// on CUDA another summation order), sums of at most max(c_z, c, N) = 8
	// terms passed through two layer norms that scale errors by 1/σ of
	// their rows; 1e-12 of the output's size is thousands of ulp of that.
	// float32: the same in float32 (ulp 6e-8), where the CPU's sigmoid is a
	// polynomial exp (within 2e-7); 1e-5 leaves a margin of ~10×.
	t.Run("float64", func(t *testing.T) { testMulComposed[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testMulComposed[float32](t, 1e-5) })
}

func testMulComposed[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range []struct {
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
		} {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				cfg := MulConfig{Incoming: tc.incoming, PairChannels: 8, HiddenChannels: 6, ChunkChannels: tc.chunk}
				p := testMulParams[T](t, cfg, 51)
				z64, mask64, _, _ := backendPair(tc.n, cfg.PairChannels, 53)
				z, mask := convert[T](z64), convert[T](mask64)
				want := make([]T, len(z))
				if err := MulForward(p, z, mask, tc.n, want, nil); err != nil {
					t.Fatal(err)
				}
				m, err := NewMul(b.K, p)
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
				e := relErr(got, want)
				_, scale := maxDiff(want, want)
				t.Logf("max |out| %.3g, error %.2e", scale, e)
				if e > tol {
					t.Errorf("composed vs MulForward: relative error %.3g > %.0e", e, tol)
				}
			})
		}
	}
}

// TestMulBackendOrientation checks that the composed path follows AF2's
// left/right naming (see MulParams) as MulForward does: with the left and
// right parameters swapped the contraction is transposed (u'_ij = u_ji),
// which changes the output, and the composed path agrees with MulForward
// both ways.
func TestMulBackendOrientation(t *testing.T) {
	k := backend.CPU[float64]()
	const n = 5
	for _, incoming := range []bool{false, true} {
		cfg := MulConfig{Incoming: incoming, PairChannels: 6, HiddenChannels: 4}
		p := testMulParams[float64](t, cfg, 61)
		sw := *p
		sw.LeftProjection, sw.RightProjection = p.RightProjection, p.LeftProjection
		sw.LeftGate, sw.RightGate = p.RightGate, p.LeftGate
		z, mask, _, _ := backendPair(n, cfg.PairChannels, 63)
		var outs [2][]float64
		for i, q := range []*MulParams[float64]{p, &sw} {
			m, err := NewMul(k, q)
			if err != nil {
				t.Fatal(err)
			}
			m.composed = true
			outs[i] = make([]float64, len(z))
			if err := m.Forward(backend.Host[float64](z), backend.Host[float64](mask), n, backend.Host[float64](outs[i])); err != nil {
				t.Fatal(err)
			}
			m.Close()
			want := make([]float64, len(z))
			if err := MulForward(q, z, mask, n, want, nil); err != nil {
				t.Fatal(err)
			}
			// Tolerance as in TestMulBackendComposed.
			if e := relErr(outs[i], want); e > 1e-12 {
				t.Errorf("%s, swapped=%v: relative error %.3g vs MulForward", cfg.Name(), i == 1, e)
			}
		}
		// Swapping a and b transposes u (u'_ij = u_ji), which the centre
		// layer norm and the gate do not undo: the outputs must differ.
		if d, s := maxDiff(outs[0], outs[1]); d < 1e-3*s {
			t.Errorf("%s: swapping left and right changes the output by only %.3g of %.3g", cfg.Name(), d, s)
		}
	}
}

func TestMulBackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testMulDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testMulDispatch[float32](t) })
}

// testMulDispatch checks that Forward on CPU tensors is MulForward, bit
// for bit.
func testMulDispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	for _, incoming := range []bool{false, true} {
		cfg := MulConfig{Incoming: incoming, PairChannels: 8, HiddenChannels: 6}
		const n = 6
		p := testMulParams[T](t, cfg, 71)
		z64, mask64, _, _ := backendPair(n, cfg.PairChannels, 73)
		z, mask := convert[T](z64), convert[T](mask64)
		want := make([]T, len(z))
		if err := MulForward(p, z, mask, n, want, nil); err != nil {
			t.Fatal(err)
		}
		m, err := NewMul(k, p)
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
				t.Fatalf("%s: out[%d] = %v, MulForward gives %v", cfg.Name(), i, got[i], want[i])
			}
		}
	}
}

func TestMulBackendErrors(t *testing.T) {
	k := backend.CPU[float64]()
	cfg := smallMul(true)
	p := testMulParams[float64](t, cfg, 81)
	const n = 4
	cz := cfg.PairChannels
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	for _, composed := range []bool{false, true} {
		m, err := NewMul(k, p)
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
			{"long z", host(n*n*cz + 1), host(n * n), host(n * n * cz), n},
			{"short mask", host(n * n * cz), host(n*n - 1), host(n * n * cz), n},
			{"long out", host(n * n * cz), host(n * n), host(n*n*cz + cz), n},
			{"missing out", host(n * n * cz), host(n * n), nil, n},
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
	bad.GatingLinear.B = bad.GatingLinear.B[1:]
	badCfg := *p
	badCfg.Config.HiddenChannels = 0
	for _, tc := range []struct {
		name string
		k    backend.Kernels[float64]
		p    *MulParams[float64]
		want error
	}{
		{"nil backend", nil, p, ErrConfig},
		{"nil params", k, nil, ErrConfig},
		{"short gating_linear bias", k, &bad, num.ErrShape},
		{"invalid config", k, &badCfg, ErrConfig},
	} {
		t.Run("NewMul/"+tc.name, func(t *testing.T) {
			if _, err := NewMul(tc.k, tc.p); !errors.Is(err, tc.want) {
				t.Errorf("NewMul: error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}
