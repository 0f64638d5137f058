package ipa

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// backendInputs returns random IPA inputs in float64: s, z ~ N(0, 1),
// frames [n, 12] with rotations from rigid.RandomRotation and translations
// in [−3, 3]³, and a mask with the residues of masked set to 0.
func backendInputs(cfg Config, n int, masked []int, seed uint64) (s, z, frames, mask []float64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	s, z = normals(rng, n*cfg.CS), normals(rng, n*n*cfg.CZ)
	fs := make([]rigid.Rigid[float64], n)
	for i := range fs {
		fs[i] = rigid.RandomRotation[float64](rng)
		for a := range 3 {
			fs[i].Trans[a] = 6*rng.Float64() - 3
		}
	}
	mask = make([]float64, n)
	for i := range mask {
		mask[i] = 1
	}
	for _, i := range masked {
		mask[i] = 0
	}
	return s, z, slices.Clone(backend.FrameData(fs)), mask
}

// cpuForward runs the package's Forward on host slices of T.
func cpuForward[T num.Float](t *testing.T, p *Params[T], s, z, frames, mask []T) []T {
	t.Helper()
	out := make([]T, len(s)/p.Config.CS*p.Config.CS)
	if err := Forward(p, s, z, backend.AsFrames(frames), mask, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

// runComposed runs m's composed path on k and returns the output.
func runComposed[T num.Float](t *testing.T, k backend.Kernels[T], m *IPA[T], s, z, frames, mask []T, n int) []T {
	t.Helper()
	out := backendtest.Alloc(t, k, n*m.cfg.CS)
	if err := m.Forward(backendtest.Put(t, k, s), backendtest.Put(t, k, z), backendtest.Put(t, k, frames), backendtest.Put(t, k, mask), n, out); err != nil {
		t.Fatal(err)
	}
	return backendtest.Get(t, k, out)
}

// relErr returns max |got − want| / max |want| (max |want| taken as 1 when
// it is 0), +Inf if a value of got is not finite.
func relErr[T num.Float](got, want []T) float64 {
	var d, w float64
	for i := range got {
		e := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return math.Inf(1)
		}
		d, w = max(d, e), max(w, math.Abs(float64(want[i])))
	}
	if w == 0 {
		w = 1
	}
	return d / w
}

// ipaBackendCase is one composed-path run: the configuration, N, the
// masked residues and the scratch limit in elements (0: one chunk of query
// rows; small: many chunks, the last one shorter).
type ipaBackendCase struct {
	name    string
	cfg     Config
	n       int
	masked  []int
	scratch int
}

func ipaBackendCases() []ipaBackendCase {
	small := smallConfig()
	return []ipaBackendCase{
		{"small", small, 7, []int{1, 5}, 0},
		{"small/chunks-of-2", small, 7, []int{1, 5}, 2 * 2 * small.Heads * 7},
		{"small/all-present", small, 6, nil, 0},
		{"small/all-masked", small, 5, []int{0, 1, 2, 3, 4}, 0},
		{"small/one-residue", small, 1, nil, 0},
		{"default", DefaultConfig(), 6, []int{2}, 0},
	}
}

func TestIPABackendComposed(t *testing.T) {
	// The composed path computes Forward's logits with the terms grouped
	// differently: separate products for the scalar and point terms (the
	// CPU takes one product of concatenated features), the pair bias as
	// the product's starting value scaled by w_L, the per-row constants
	// left out (the softmax cancels them; leaving them in or out changes
	// the logits by rounding only), the point norms through a layer
	// norm's 1/√(var + ε) and a division, and the output projection's
	// input assembled by transposes (exact). Each is a few ulp of a
	// logit (|l| ≲ 10) or of a feature, carried through a softmax and
	// sums of at most F (2112) products with weights ~1/√F: a few 1e-15
	// of the output's max in float64, so 1e-12 keeps more than two decades
	// of margin; in float32 (ulp 6e-8) the same gives ~1e-6 on the CPU
	// kernels, and 1e-5 allows their polynomial exp.
	//
	// The emulated or real CUDA kernels differ from the CPU's within the
	// conformance tolerances (matrix products 4e-14 and 2e-5 of Σ|a|·|b|
	// in float64 and float32, softmax 1e-12 and 2e-5, rigid maps 1e-14 and
	// 1e-6); the logits are sums of ≲ 20 such products of O(1) values
	// and the output sums F of the features: 1e-11 and 1e-4 of the
	// output's max hold them with a decade of margin.
	t.Run("float64", func(t *testing.T) { testIPAComposed[float64](t, 1e-12, 1e-11) })
	t.Run("float32", func(t *testing.T) { testIPAComposed[float32](t, 1e-5, 1e-4) })
}

func testIPAComposed[T num.Float](t *testing.T, tolCPU, tolCUDA float64) {
	for _, b := range backendtest.Backends[T](t) {
		tol := tolCPU
		if b.Name != "cpu" {
			tol = tolCUDA
		}
		for ci, tc := range ipaBackendCases() {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				p := randomParams[T](tc.cfg, uint64(51+ci))
				s64, z64, f64, m64 := backendInputs(tc.cfg, tc.n, tc.masked, uint64(53+ci))
				s, z, frames, mask := convert[T](s64), convert[T](z64), convert[T](f64), convert[T](m64)
				want := cpuForward(t, p, s, z, frames, mask)
				m, err := NewIPA(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.scratch = true, tc.scratch
				got := runComposed(t, b.K, m, s, z, frames, mask, tc.n)
				e := relErr(got, want)
				t.Logf("max |out| %.3g, relative error %.2e", maxAbs(want), e)
				if e > tol {
					t.Errorf("composed vs Forward: relative error %.3g > %.0e", e, tol)
				}
			})
		}
	}
}

// maxAbs returns max |x_i|.
func maxAbs[T num.Float](x []T) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

func TestIPABackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testIPADispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testIPADispatch[float32](t) })
}

// testIPADispatch checks that IPA.Forward on CPU tensors is Forward, bit
// for bit, and that it uses NewIPA's copy of the parameters.
func testIPADispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	cfg := smallConfig()
	const n = 6
	p := randomParams[T](cfg, 61)
	s64, z64, f64, m64 := backendInputs(cfg, n, []int{2}, 63)
	s, z, frames, mask := convert[T](s64), convert[T](z64), convert[T](f64), convert[T](m64)
	want := cpuForward(t, p, s, z, frames, mask)
	m, err := NewIPA(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p.OutputProjection.B[0] += 1 // NewIPA copied the parameters
	got := make([]T, n*cfg.CS)
	if err := m.Forward(backend.Host[T](s), backend.Host[T](z), backend.Host[T](frames), backend.Host[T](mask), n, backend.Host[T](got)); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("out[%d] = %v, Forward gives %v", i, got[i], want[i])
		}
	}
}

func TestIPABackendSE3Invariance(t *testing.T) {
	// One random rigid motion (uniform rotation, translation up to 100 in
	// each coordinate) of every frame leaves the composed output
	// unchanged. float64: the motion changes only round-off, in the
	// frames (~1e-14 of coordinates ~100) and in the global points, which
	// are taken relative to the mean translation so that the expansion
	// |q|² + |k|² − 2q·k does not lose the digits of the large common
	// translation; the outputs are O(1), and 1e-12 holds the measured
	// ~1e-14 with margin. float32: rounding the moved frames to float32
	// perturbs coordinates of ~100 by ~1e-5, as in TestSE3Invariance
	// (its bound, 1e-4 of the output's max).
	t.Run("float64", func(t *testing.T) { testIPASE3[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { testIPASE3[float32](t, 1e-4) })
}

func testIPASE3[T num.Float](t *testing.T, tol float64) {
	cfg := smallConfig()
	const n, draws = 8, 5
	for _, b := range backendtest.Backends[T](t) {
		p := randomParams[T](cfg, 71)
		m, err := NewIPA(b.K, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = true
		worst := 0.0
		for d := range draws {
			s64, z64, f64, m64 := backendInputs(cfg, n, []int{d % n}, uint64(73+d))
			rng := rand.New(rand.NewPCG(uint64(d), 75))
			g := rigid.RandomRotation[float64](rng)
			for a := range 3 {
				g.Trans[a] = 200*rng.Float64() - 100
			}
			fs := backend.AsFrames(f64)
			moved := make([]rigid.Rigid[float64], n)
			for i := range fs {
				moved[i] = g.Compose(fs[i])
			}
			s, z, mask := convert[T](s64), convert[T](z64), convert[T](m64)
			a := runComposed(t, b.K, m, s, z, convert[T](f64), mask, n)
			c := runComposed(t, b.K, m, s, z, convert[T](backend.FrameData(moved)), mask, n)
			e := relErr(c, a)
			worst = max(worst, e)
			if e > tol {
				t.Errorf("%s draw %d: output moved by %.3g of its max > %.0e", b.Name, d, e, tol)
			}
		}
		t.Logf("%s: over %d draws, max change %.2e of the output's max", b.Name, draws, worst)
		m.Close()
	}
}

func TestIPABackendErrors(t *testing.T) {
	k := backend.CPU[float64]()
	cfg := smallConfig()
	p := randomParams[float64](cfg, 81)
	const n = 4
	cs, cz := cfg.CS, cfg.CZ
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	for _, composed := range []bool{false, true} {
		m, err := NewIPA(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		for _, tc := range []struct {
			name                    string
			s, z, frames, mask, out backend.Tensor[float64]
			n                       int
		}{
			{"zero N", host(0), host(0), host(0), host(0), host(0), 0},
			{"negative N", host(0), host(0), host(0), host(0), host(0), -1},
			{"short s", host(n*cs - 1), host(n * n * cz), host(12 * n), host(n), host(n * cs), n},
			{"long z", host(n * cs), host(n*n*cz + 1), host(12 * n), host(n), host(n * cs), n},
			{"short frames", host(n * cs), host(n * n * cz), host(12*n - 3), host(n), host(n * cs), n},
			{"long mask", host(n * cs), host(n * n * cz), host(12 * n), host(n + 1), host(n * cs), n},
			{"short out", host(n * cs), host(n * n * cz), host(12 * n), host(n), host(n*cs - 1), n},
			{"missing z", host(n * cs), nil, host(12 * n), host(n), host(n * cs), n},
			{"missing frames", host(n * cs), host(n * n * cz), nil, host(n), host(n * cs), n},
		} {
			t.Run(fmt.Sprintf("composed=%v/%s", composed, tc.name), func(t *testing.T) {
				err := m.Forward(tc.s, tc.z, tc.frames, tc.mask, tc.n, tc.out)
				if !errors.Is(err, num.ErrShape) {
					t.Errorf("Forward: error %v, want one wrapping num.ErrShape", err)
				}
			})
		}
		m.Close()
		if err := m.Forward(host(n*cs), host(n*n*cz), host(12*n), host(n), n, host(n*cs)); !errors.Is(err, ErrConfig) {
			t.Errorf("composed=%v: Forward after Close: error %v, want one wrapping ErrConfig", composed, err)
		}
		m.Close() // a second Close does nothing
	}

	// The dispatch path checks values as Forward does.
	m, err := NewIPA(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, z, frames, mask := backendInputs(cfg, n, nil, 83)
	frames[0] = 2 // not a rotation
	err = m.Forward(backend.Host[float64](s), backend.Host[float64](z), backend.Host[float64](frames), backend.Host[float64](mask), n, host(n*cs))
	if !errors.Is(err, rigid.ErrNotRotation) {
		t.Errorf("Forward with a bad rotation: error %v, want one wrapping rigid.ErrNotRotation", err)
	}

	short := cloneParams(p)
	short.Attention2D.W = short.Attention2D.W[1:]
	badCfg := cloneParams(p)
	badCfg.Config.Heads = 0
	for _, tc := range []struct {
		name string
		k    backend.Kernels[float64]
		p    *Params[float64]
		want error
	}{
		{"nil backend", nil, p, ErrConfig},
		{"nil params", k, nil, ErrConfig},
		{"short attention_2d", k, short, num.ErrShape},
		{"invalid config", k, badCfg, ErrConfig},
	} {
		t.Run("NewIPA/"+tc.name, func(t *testing.T) {
			if _, err := NewIPA(tc.k, tc.p); !errors.Is(err, tc.want) {
				t.Errorf("NewIPA: error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}
