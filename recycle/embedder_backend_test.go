package recycle

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// backendInputs are the previous pass's outputs of one test: the first MSA
// row [N, c_m], the pair [N, N, c_z] and the pseudo-β positions [N, 3].
type backendInputs[T num.Float] struct {
	row, pair, pb []T
}

// newBackendInputs returns random previous outputs for N residues, or all
// zeros (AF2's first pass, whose rows normalise to the offsets) when zero
// is set. The positions lie on a random walk with steps of 1–8 Å, so that
// the pairs spread over the bins, and residue 1 sits 2 Å from residue 0:
// with the diagonal, pairs closer than 3.25 Å fall in no bin.
func newBackendInputs[T num.Float](cfg Config, n int, seed uint64, zero bool) backendInputs[T] {
	rng := rand.New(rand.NewPCG(seed, 3))
	row, pair := randv(rng, n*cfg.CM, 1), randv(rng, n*n*cfg.CZ, 1)
	pb := make([]float64, 3*n)
	for i := 1; i < n; i++ {
		step := 1 + 7*rng.Float64()
		if i == 1 {
			step = 2
		}
		d := randv(rng, 3, 1)
		s := step / math.Sqrt(d[0]*d[0]+d[1]*d[1]+d[2]*d[2])
		for a := range 3 {
			pb[3*i+a] = pb[3*(i-1)+a] + s*d[a]
		}
	}
	if zero {
		clear(row)
		clear(pair)
		clear(pb)
	}
	return backendInputs[T]{convertT[T](row), convertT[T](pair), convertT[T](pb)}
}

// convertT returns x in T.
func convertT[T num.Float](x []float64) []T {
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

// maxAbsDiff returns max |a − b| and max |b|.
func maxAbsDiff[T num.Float](a, b []T) (d, s float64) {
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	return d, s
}

// relErrT returns max |got − want| / max |want| (max |want| taken as 1 when
// it is 0).
func relErrT[T num.Float](got, want []T) float64 {
	d, s := maxAbsDiff(got, want)
	if s == 0 {
		s = 1
	}
	return d / s
}

// firstDiff reports the first index where a and b differ, or −1.
func firstDiff[T num.Float](a, b []T) int {
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

// embedderCases are the configurations of the backend tests: AF2's bins
// with small widths, one chunk or chunks of two rows (the last one short),
// one residue, and the first pass's zeros.
var embedderCases = []struct {
	name  string
	n     int
	chunk int // Embedder.chunkRows
	zero  bool
}{
	{"n=6", 6, 0, false},
	{"n=7/chunks-of-2", 7, 2, false},
	{"one-residue", 1, 0, false},
	{"first-pass-zeros", 4, 3, true},
}

// backendConfig has AF2's 15 bins and small widths.
func backendConfig() Config {
	cfg := DefaultConfig()
	cfg.CM, cfg.CZ = 6, 5
	return cfg
}

func TestEmbedderBackendComposed(t *testing.T) {
	// The composed path runs the CPU path's arithmetic: the same layer-norm
	// kernel and, for the distogram, W[k,:] + b with one rounding (a
	// one-hot product adds exact zeros) added to the normalised pair, as
	// Forward adds it. On the CPU backend the results are identical
	// (measured 0). On CUDA the layer norm sums its c ≤ 6 terms in another
	// order: a few ulp of the normalised values, which are at most a few
	// units, and the one-hot product is exact in FP32 arithmetic (measured
	// on the emulated CUDA backend: ≤ 2.7e-16 in float64, ≤ 9.8e-8 in
	// float32). float64: 1e-13 of the output's max is ~500 ulp; float32:
	// 1e-5 is ~80 ulp.
	t.Run("float64", func(t *testing.T) { testEmbedderComposed[float64](t, 1e-13) })
	t.Run("float32", func(t *testing.T) { testEmbedderComposed[float32](t, 1e-5) })
}

func testEmbedderComposed[T num.Float](t *testing.T, tol float64) {
	cfg := backendConfig()
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range embedderCases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				p := randomParams[T](t, cfg, 11)
				in := newBackendInputs[T](cfg, tc.n, 13, tc.zero)
				wantMSA, wantPair := make([]T, len(in.row)), make([]T, len(in.pair))
				if err := Forward(p, in.row, in.pair, in.pb, wantMSA, wantPair, nil); err != nil {
					t.Fatal(err)
				}
				m, err := NewEmbedder(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.chunkRows = true, tc.chunk
				msa, pair := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair))
				// Forward overwrites: start from garbage.
				if err := b.K.Upload(pair, convertT[T](randv(rand.New(rand.NewPCG(1, 1)), len(in.pair), 1))); err != nil {
					t.Fatal(err)
				}
				if err := m.Forward(backendtest.Put(t, b.K, in.row), backendtest.Put(t, b.K, in.pair), in.pb, tc.n, msa, pair); err != nil {
					t.Fatal(err)
				}
				gotMSA, gotPair := backendtest.Get(t, b.K, msa), backendtest.Get(t, b.K, pair)
				eM, eP := relErrT(gotMSA, wantMSA), relErrT(gotPair, wantPair)
				t.Logf("msaOut error %.2e, pairOut error %.2e", eM, eP)
				if eM > tol || eP > tol {
					t.Errorf("composed vs Forward: relative errors %.3g (msaOut), %.3g (pairOut) > %.0e", eM, eP, tol)
				}
				if b.Name == "cpu" {
					if i := firstDiff(gotMSA, wantMSA); i >= 0 {
						t.Errorf("msaOut[%d] = %v on the CPU backend, Forward gives %v", i, gotMSA[i], wantMSA[i])
					}
					if i := firstDiff(gotPair, wantPair); i >= 0 {
						t.Errorf("pairOut[%d] = %v on the CPU backend, Forward gives %v", i, gotPair[i], wantPair[i])
					}
				}
			})
		}
	}
}

func TestEmbedderBackendDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testEmbedderDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testEmbedderDispatch[float32](t) })
}

// testEmbedderDispatch checks that Forward on CPU tensors is the package's
// Forward, bit for bit.
func testEmbedderDispatch[T num.Float](t *testing.T) {
	cfg := backendConfig()
	k := backend.CPU[T]()
	const n = 6
	p := randomParams[T](t, cfg, 21)
	in := newBackendInputs[T](cfg, n, 23, false)
	wantMSA, wantPair := make([]T, len(in.row)), make([]T, len(in.pair))
	if err := Forward(p, in.row, in.pair, in.pb, wantMSA, wantPair, nil); err != nil {
		t.Fatal(err)
	}
	m, err := NewEmbedder(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	msa, pair := make([]T, len(in.row)), make([]T, len(in.pair))
	if err := m.Forward(backend.Host[T](in.row), backend.Host[T](in.pair), in.pb, n, backend.Host[T](msa), backend.Host[T](pair)); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(msa, wantMSA); i >= 0 {
		t.Errorf("msaOut[%d] = %v, Forward gives %v", i, msa[i], wantMSA[i])
	}
	if i := firstDiff(pair, wantPair); i >= 0 {
		t.Errorf("pairOut[%d] = %v, Forward gives %v", i, pair[i], wantPair[i])
	}
}

func TestEmbedderBackendErrors(t *testing.T) {
	cfg := backendConfig()
	k := backend.CPU[float64]()
	p := randomParams[float64](t, cfg, 31)
	const n = 3
	cm, cz := cfg.CM, cfg.CZ
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	pb := make([]float64, 3*n)
	nanPB := make([]float64, 3*n)
	nanPB[4] = math.NaN()
	for _, composed := range []bool{false, true} {
		m, err := NewEmbedder(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		for _, tc := range []struct {
			name          string
			row, pair     backend.Tensor[float64]
			pb            []float64
			n             int
			msaOut, pairO backend.Tensor[float64]
			want          error
		}{
			{"short row", host(n*cm - 1), host(n * n * cz), pb, n, host(n * cm), host(n * n * cz), num.ErrShape},
			{"long pair", host(n * cm), host(n*n*cz + 1), pb, n, host(n * cm), host(n * n * cz), num.ErrShape},
			{"missing pair", host(n * cm), nil, pb, n, host(n * cm), host(n * n * cz), num.ErrShape},
			{"short msaOut", host(n * cm), host(n * n * cz), pb, n, host(n*cm - 1), host(n * n * cz), num.ErrShape},
			{"missing pairOut", host(n * cm), host(n * n * cz), pb, n, host(n * cm), nil, num.ErrShape},
			{"pseudo-β not [N 3]", host(n * cm), host(n * n * cz), pb[:3*n-1], n, host(n * cm), host(n * n * cz), num.ErrShape},
			{"N = 0", host(0), host(0), nil, 0, host(0), host(0), num.ErrShape},
			{"negative N", host(0), host(0), nil, -1, host(0), host(0), num.ErrShape},
			{"NaN position", host(n * cm), host(n * n * cz), nanPB, n, host(n * cm), host(n * n * cz), num.ErrNaN},
		} {
			t.Run(fmt.Sprintf("composed=%v/%s", composed, tc.name), func(t *testing.T) {
				if err := m.Forward(tc.row, tc.pair, tc.pb, tc.n, tc.msaOut, tc.pairO); !errors.Is(err, tc.want) {
					t.Errorf("Forward: error %v, want one wrapping %v", err, tc.want)
				}
				var tape EmbedderTape[float64]
				if err := m.ForwardTape(tc.row, tc.pair, tc.pb, tc.n, tc.msaOut, tc.pairO, &tape); !errors.Is(err, tc.want) {
					t.Errorf("ForwardTape: error %v, want one wrapping %v", err, tc.want)
				}
			})
		}
		m.Close()
		if err := m.Forward(host(n*cm), host(n*n*cz), pb, n, host(n*cm), host(n*n*cz)); !errors.Is(err, ErrConfig) {
			t.Errorf("composed=%v: Forward on a closed module: error %v, want ErrConfig", composed, err)
		}
	}
	bad := randomParams[float64](t, cfg, 33)
	bad.PrevPairNorm.Scale = bad.PrevPairNorm.Scale[1:]
	for _, tc := range []struct {
		name string
		k    backend.Kernels[float64]
		p    *Params[float64]
		want error
	}{
		{"nil backend", nil, p, ErrConfig},
		{"nil parameters", k, nil, ErrConfig},
		{"short scale", k, bad, num.ErrShape},
	} {
		if _, err := NewEmbedder(tc.k, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("NewEmbedder with %s: error %v, want one wrapping %v", tc.name, err, tc.want)
		}
	}
}

// embedderArrays names the parameter arrays of g (copies of the slices).
func embedderArrays[T num.Float](g *Params[T]) map[string][]T {
	m := map[string][]T{}
	for _, ts := range g.tensors() {
		m[ts.name] = *ts.data
	}
	return m
}

func TestEmbedderBackendBackward(t *testing.T) {
	// The composed path differentiates the same function as Backward with
	// the sums grouped differently: prev_pos_linear's weight and bias
	// gradients are one matrix product one_hotᵀ·dPair (sums of up to
	// N² = 49 terms in the GEMM's order instead of row partials), and the
	// layer norms' gradients use the same kernel on the CPU (on CUDA
	// another order of their c ≤ 6-term and N²-term sums).
	// float64 (ulp 1.1e-16): sums of at most 49 terms of size ≤ ~3 differ
	// by ≤ 49 ulp of the sum; 1e-13 of each array's max is ~900 ulp
	// (measured ≤ 3.4e-16 on the CPU backend, ≤ 7.4e-16 on the emulated
	// CUDA backend). float32 (ulp 6e-8): the same, 1e-5 of each array's
	// max is ~170 ulp (measured ≤ 2.7e-7 and ≤ 2.8e-7).
	t.Run("float64", func(t *testing.T) { testEmbedderBackward[float64](t, 1e-13) })
	t.Run("float32", func(t *testing.T) { testEmbedderBackward[float32](t, 1e-5) })
}

func testEmbedderBackward[T num.Float](t *testing.T, tol float64) {
	cfg := backendConfig()
	for _, b := range backendtest.Backends[T](t) {
		for _, tc := range embedderCases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				p := randomParams[T](t, cfg, 41)
				in := newBackendInputs[T](cfg, tc.n, 43, tc.zero)
				rng := rand.New(rand.NewPCG(45, 4))
				dMSA, dPair := convertT[T](randv(rng, len(in.row), 1)), convertT[T](randv(rng, len(in.pair), 1))

				// The CPU reference.
				var c Cache[T]
				wantRow, wantPair, wantG := make([]T, len(in.row)), make([]T, len(in.pair)), p.ZerosLike()
				if err := Forward(p, in.row, in.pair, in.pb, make([]T, len(in.row)), make([]T, len(in.pair)), &c); err != nil {
					t.Fatal(err)
				}
				if err := Backward(p, &c, dMSA, dPair, wantRow, wantPair, wantG); err != nil {
					t.Fatal(err)
				}

				m, err := NewEmbedder(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.chunkRows = true, tc.chunk
				rowT, pairT := backendtest.Put(t, b.K, in.row), backendtest.Put(t, b.K, in.pair)
				fm, fp := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair))
				if err := m.Forward(rowT, pairT, in.pb, tc.n, fm, fp); err != nil {
					t.Fatal(err)
				}
				var tape EmbedderTape[T]
				defer tape.Free()
				om, op := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair))
				if err := m.ForwardTape(rowT, pairT, in.pb, tc.n, om, op, &tape); err != nil {
					t.Fatal(err)
				}
				if i := firstDiff(backendtest.Get(t, b.K, om), backendtest.Get(t, b.K, fm)); i >= 0 {
					t.Fatalf("ForwardTape's msaOut[%d] differs from Forward's", i)
				}
				if i := firstDiff(backendtest.Get(t, b.K, op), backendtest.Get(t, b.K, fp)); i >= 0 {
					t.Fatalf("ForwardTape's pairOut[%d] differs from Forward's", i)
				}
				dRow, dPrevPair, g := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair)), p.ZerosLike()
				if err := m.Backward(&tape, backendtest.Put(t, b.K, dMSA), backendtest.Put(t, b.K, dPair), dRow, dPrevPair, g); err != nil {
					t.Fatal(err)
				}
				got := embedderArrays(g)
				got["prevMSAFirstRow"], got["prevPair"] = backendtest.Get(t, b.K, dRow), backendtest.Get(t, b.K, dPrevPair)
				want := embedderArrays(wantG)
				want["prevMSAFirstRow"], want["prevPair"] = wantRow, wantPair
				worst, worstName := 0.0, ""
				for name, w := range want {
					e := relErrT(got[name], w)
					if e > tol || math.IsNaN(e) {
						t.Errorf("gradient %s: relative error %.3g vs Backward > %.0e", name, e, tol)
					}
					if e >= worst {
						worst, worstName = e, name
					}
				}
				t.Logf("largest gradient error %.2e (%s)", worst, worstName)
			})
		}
	}
}

func TestEmbedderBackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testEmbedderBackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testEmbedderBackwardDispatch[float32](t) })
}

// testEmbedderBackwardDispatch checks that ForwardTape and Backward on CPU
// tensors are Forward and Backward, bit for bit.
func testEmbedderBackwardDispatch[T num.Float](t *testing.T) {
	cfg := backendConfig()
	k := backend.CPU[T]()
	const n = 5
	p := randomParams[T](t, cfg, 51)
	in := newBackendInputs[T](cfg, n, 53, false)
	rng := rand.New(rand.NewPCG(55, 5))
	dMSA, dPair := convertT[T](randv(rng, len(in.row), 1)), convertT[T](randv(rng, len(in.pair), 1))
	var c Cache[T]
	wantMSA, wantPairOut := make([]T, len(in.row)), make([]T, len(in.pair))
	wantRow, wantPair, wantG := make([]T, len(in.row)), make([]T, len(in.pair)), p.ZerosLike()
	if err := Forward(p, in.row, in.pair, in.pb, wantMSA, wantPairOut, &c); err != nil {
		t.Fatal(err)
	}
	if err := Backward(p, &c, dMSA, dPair, wantRow, wantPair, wantG); err != nil {
		t.Fatal(err)
	}
	m, err := NewEmbedder(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tape EmbedderTape[T]
	defer tape.Free()
	msa, pairOut := make([]T, len(in.row)), make([]T, len(in.pair))
	if err := m.ForwardTape(backend.Host[T](in.row), backend.Host[T](in.pair), in.pb, n, backend.Host[T](msa), backend.Host[T](pairOut), &tape); err != nil {
		t.Fatal(err)
	}
	if !tape.host {
		t.Error("the tape is not of the CPU path")
	}
	dRow, dPrevPair, g := make([]T, len(in.row)), make([]T, len(in.pair)), p.ZerosLike()
	if err := m.Backward(&tape, backend.Host[T](dMSA), backend.Host[T](dPair), backend.Host[T](dRow), backend.Host[T](dPrevPair), g); err != nil {
		t.Fatal(err)
	}
	got, want := embedderArrays(g), embedderArrays(wantG)
	got["msaOut"], got["pairOut"], got["prevMSAFirstRow"], got["prevPair"] = msa, pairOut, dRow, dPrevPair
	want["msaOut"], want["pairOut"], want["prevMSAFirstRow"], want["prevPair"] = wantMSA, wantPairOut, wantRow, wantPair
	for name, w := range want {
		if i := firstDiff(got[name], w); i >= 0 {
			t.Errorf("%s[%d] = %v, the CPU functions give %v", name, i, got[name][i], w[i])
		}
	}
}

func TestEmbedderBackendBackwardAccumulates(t *testing.T) {
	// Backward adds to the input gradients and grad: two calls on the same
	// tape give twice one call's values. Both calls compute the same values
	// in the same order and x + x is exact, so the CPU backend (both paths)
	// doubles exactly; 1e-15 of the array's max allows a GPU backend an
	// order-dependent last bit.
	t.Run("float64", func(t *testing.T) { testEmbedderAccumulates[float64](t, 1e-15) })
}

func testEmbedderAccumulates[T num.Float](t *testing.T, tol float64) {
	cfg := backendConfig()
	for _, b := range backendtest.Backends[T](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				const n = 5
				p := randomParams[T](t, cfg, 61)
				in := newBackendInputs[T](cfg, n, 63, false)
				m, err := NewEmbedder(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.chunkRows = composed, 2
				var tape EmbedderTape[T]
				defer tape.Free()
				if err := m.ForwardTape(backendtest.Put(t, b.K, in.row), backendtest.Put(t, b.K, in.pair), in.pb, n,
					backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair)), &tape); err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(65, 6))
				dMSA := backendtest.Put(t, b.K, convertT[T](randv(rng, len(in.row), 1)))
				dPair := backendtest.Put(t, b.K, convertT[T](randv(rng, len(in.pair), 1)))
				dRow1, dPair1 := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair))
				dRow2, dPair2 := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair))
				g1, g2 := p.ZerosLike(), p.ZerosLike()
				for _, c := range []struct {
					dRow, dPair backend.Tensor[T]
					g           *Params[T]
				}{{dRow1, dPair1, g1}, {dRow2, dPair2, g2}, {dRow2, dPair2, g2}} {
					if err := m.Backward(&tape, dMSA, dPair, c.dRow, c.dPair, c.g); err != nil {
						t.Fatal(err)
					}
				}
				checkTwice(t, "prevMSAFirstRow", backendtest.Get(t, b.K, dRow2), backendtest.Get(t, b.K, dRow1), tol)
				checkTwice(t, "prevPair", backendtest.Get(t, b.K, dPair2), backendtest.Get(t, b.K, dPair1), tol)
				two := embedderArrays(g2)
				for name, one := range embedderArrays(g1) {
					checkTwice(t, name, two[name], one, tol)
				}
				// The input gradients and grad are optional.
				if err := m.Backward(&tape, dMSA, dPair, nil, nil, nil); err != nil {
					t.Errorf("Backward with no outputs: %v", err)
				}
				g3 := p.ZerosLike()
				if err := m.Backward(&tape, dMSA, dPair, nil, nil, g3); err != nil {
					t.Errorf("Backward with grad only: %v", err)
				}
				for name, want := range embedderArrays(g1) {
					if i := firstDiff(embedderArrays(g3)[name], want); i >= 0 && b.Name == "cpu" {
						t.Errorf("grad only: %s[%d] differs from the full call's", name, i)
					}
				}
				dRow3 := backendtest.Alloc(t, b.K, len(in.row))
				if err := m.Backward(&tape, dMSA, dPair, dRow3, nil, nil); err != nil {
					t.Fatal(err)
				}
				checkTwice(t, "prevMSAFirstRow without grad", backendtest.Get(t, b.K, dRow2), backendtest.Get(t, b.K, dRow3), tol)
			})
		}
	}
}

// checkTwice checks two ≈ 2·one within tol of max |2·one|.
func checkTwice[T num.Float](t *testing.T, what string, two, one []T, tol float64) {
	t.Helper()
	want := make([]T, len(one))
	for i, v := range one {
		want[i] = 2 * v
	}
	if _, s := maxAbsDiff(want, want); s == 0 {
		t.Errorf("%s: one Backward call gives zeros", what)
	}
	if e := relErrT(two, want); e > tol {
		t.Errorf("%s after two Backward calls: relative error %.3g vs twice one call's", what, e)
	}
}

func TestEmbedderBackendBackwardErrors(t *testing.T) {
	cfg := backendConfig()
	k := backend.CPU[float64]()
	p := randomParams[float64](t, cfg, 71)
	const n = 4
	cm, cz := cfg.CM, cfg.CZ
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	in := newBackendInputs[float64](cfg, n, 73, false)
	small := newBackendInputs[float64](cfg, n-1, 75, false)
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		m, err := NewEmbedder(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		other, err := NewEmbedder(k, p)
		if err != nil {
			t.Fatal(err)
		}
		other.composed = composed
		var tape, otherTape, smallTape EmbedderTape[float64]
		row, pair := backend.Host[float64](in.row), backend.Host[float64](in.pair)
		if err := m.ForwardTape(row, pair, in.pb, n, host(n*cm), host(n*n*cz), &tape); err != nil {
			t.Fatal(err)
		}
		if err := other.ForwardTape(row, pair, in.pb, n, host(n*cm), host(n*n*cz), &otherTape); err != nil {
			t.Fatal(err)
		}
		if err := m.ForwardTape(backend.Host[float64](small.row), backend.Host[float64](small.pair), small.pb, n-1, host((n-1)*cm), host((n-1)*(n-1)*cz), &smallTape); err != nil {
			t.Fatal(err)
		}
		otherCfg := cfg
		otherCfg.CZ++
		badGrad := p.ZerosLike()
		badGrad.PrevPosLinear.W = badGrad.PrevPosLinear.W[1:]
		nanD := make([]float64, n*n*cz)
		nanD[3] = math.Inf(-1)
		for _, tc := range []struct {
			name                 string
			tape                 *EmbedderTape[float64]
			dMSA, dPair, dr, dpp backend.Tensor[float64]
			grad                 *Params[float64]
			want                 error
			hostOnly             bool // an error of the CPU path
		}{
			{name: "nil tape", dMSA: host(n * cm), dPair: host(n * n * cz), want: ErrConfig},
			{name: "empty tape", tape: new(EmbedderTape[float64]), dMSA: host(n * cm), dPair: host(n * n * cz), want: ErrConfig},
			{name: "tape of another module", tape: &otherTape, dMSA: host(n * cm), dPair: host(n * n * cz), want: ErrConfig},
			{name: "tape of another size", tape: &smallTape, dMSA: host(n * cm), dPair: host(n * n * cz), want: num.ErrShape},
			{name: "missing dMSA", tape: &tape, dPair: host(n * n * cz), want: num.ErrShape},
			{name: "short dPair", tape: &tape, dMSA: host(n * cm), dPair: host(n*n*cz - 1), want: num.ErrShape},
			{name: "long dPrevMSAFirstRow", tape: &tape, dMSA: host(n * cm), dPair: host(n * n * cz), dr: host(n*cm + 1), want: num.ErrShape},
			{name: "short dPrevPair", tape: &tape, dMSA: host(n * cm), dPair: host(n * n * cz), dpp: host(1), want: num.ErrShape},
			{name: "grad of another config", tape: &tape, dMSA: host(n * cm), dPair: host(n * n * cz), grad: randomParams[float64](t, otherCfg, 77), want: ErrConfig},
			{name: "grad of a wrong length", tape: &tape, dMSA: host(n * cm), dPair: host(n * n * cz), grad: badGrad, want: num.ErrShape},
			{name: "infinite dPair", tape: &tape, dMSA: host(n * cm), dPair: backend.Host[float64](nanD), want: num.ErrNaN, hostOnly: true},
		} {
			if tc.hostOnly && composed {
				continue
			}
			t.Run(name+tc.name, func(t *testing.T) {
				if err := m.Backward(tc.tape, tc.dMSA, tc.dPair, tc.dr, tc.dpp, tc.grad); !errors.Is(err, tc.want) {
					t.Errorf("error %v, want one wrapping %v", err, tc.want)
				}
			})
		}
		if err := m.ForwardTape(row, pair, in.pb, n, host(n*cm), host(n*n*cz), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape with a nil tape: error %v, want ErrConfig", name, err)
		}
		// A failed ForwardTape leaves the tape empty.
		if err := m.ForwardTape(row, pair, in.pb, n, host(n*cm), host(1), &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short pairOut: error %v", name, err)
		}
		if err := m.Backward(&tape, host(n*cm), host(n*n*cz), nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after a failed ForwardTape: error %v, want ErrConfig", name, err)
		}
		// A freed tape holds nothing.
		if err := m.ForwardTape(row, pair, in.pb, n, host(n*cm), host(n*n*cz), &tape); err != nil {
			t.Fatal(err)
		}
		tape.Free()
		if err := m.Backward(&tape, host(n*cm), host(n*n*cz), nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after Free: error %v, want ErrConfig", name, err)
		}
		m.Close()
		if err := m.Backward(&otherTape, host(n*cm), host(n*n*cz), nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward on a closed module: error %v, want ErrConfig", name, err)
		}
		if err := m.ForwardTape(row, pair, in.pb, n, host(n*cm), host(n*n*cz), &tape); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape on a closed module: error %v, want ErrConfig", name, err)
		}
		otherTape.Free()
		smallTape.Free()
		other.Close()
	}
	var zero EmbedderTape[float64]
	zero.Free() // a zero tape may be freed
}

func TestEmbedderBackendBackwardForeign(t *testing.T) {
	// A tape of the CPU path refuses gradients on another backend (there
	// is one in foldkit_cuda and foldkit_cudaemu builds).
	cfg := backendConfig()
	p := randomParams[float64](t, cfg, 81)
	const n = 3
	in := newBackendInputs[float64](cfg, n, 83, false)
	m, err := NewEmbedder(backend.CPU[float64](), p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tape EmbedderTape[float64]
	defer tape.Free()
	msa, pair := make([]float64, len(in.row)), make([]float64, len(in.pair))
	if err := m.ForwardTape(backend.Host[float64](in.row), backend.Host[float64](in.pair), in.pb, n, backend.Host[float64](msa), backend.Host[float64](pair), &tape); err != nil {
		t.Fatal(err)
	}
	for _, b := range backendtest.Backends[float64](t) {
		if b.Name == "cpu" {
			continue
		}
		dMSA, dPair := backendtest.Alloc(t, b.K, len(in.row)), backendtest.Alloc(t, b.K, len(in.pair))
		if err := m.Backward(&tape, dMSA, dPair, nil, nil, nil); !errors.Is(err, backend.ErrForeign) {
			t.Errorf("%s gradients with a tape of the CPU path: error %v, want ErrForeign", b.Name, err)
		}
	}
}

func TestRunCaseOnBackend(t *testing.T) {
	// On the CPU backend the tensors dispatch to Forward, so RunCaseOn's
	// outputs are RunCase's bit for bit; on the CUDA backend they agree
	// within the composed path's tolerances (TestEmbedderBackendComposed):
	// 1e-13 and 1e-5 of each output's max.
	cs := func() *params.Set { return refcase.Open(t, "recycling_embedder.npz") }
	for _, dtype := range []string{"float64", "float32"} {
		tol := 1e-13
		if dtype == "float32" {
			tol = 1e-5
		}
		want, err := RunCase(cs(), dtype, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, kb := range runCaseBackends(t) {
			t.Run(dtype+"/"+kb.name, func(t *testing.T) {
				got, err := RunCaseOn(cs(), dtype, false, kb.k)
				if err != nil {
					t.Fatal(err)
				}
				for _, key := range []string{"out/msa_first_row_update", "out/pair_update"} {
					w, err := params.Get[float64](want, key)
					if err != nil {
						t.Fatal(err)
					}
					g, err := params.Get[float64](got, key)
					if err != nil {
						t.Fatal(err)
					}
					e := relErrT(g, w)
					t.Logf("%s: error %.2e", key, e)
					if e > tol || (kb.name == "cpu" && e != 0) {
						t.Errorf("%s: relative error %.3g vs RunCase", key, e)
					}
				}
				if _, err := RunCaseOn(cs(), dtype, true, kb.k); !errors.Is(err, casekit.ErrGradBackend) {
					t.Errorf("grad on a backend: error %v, want one wrapping casekit.ErrGradBackend", err)
				}
			})
		}
	}
}

// runCaseBackend is a backend pair of TestRunCaseOnBackend.
type runCaseBackend struct {
	name string
	k    backend.Pair
}

// runCaseBackends returns the backend pairs of this build.
func runCaseBackends(t *testing.T) []runCaseBackend {
	b32, b64 := backendtest.Backends[float32](t), backendtest.Backends[float64](t)
	var rs []runCaseBackend
	for i := range b32 {
		rs = append(rs, runCaseBackend{b32[i].Name, backend.Pair{F32: b32[i].K, F64: b64[i].K}})
	}
	return rs
}
