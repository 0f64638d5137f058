// Package conformance is the one test suite every implementation of
// backend.Kernels passes, in the manner of gonum's testblas: exported
// functions that take a *testing.T and the implementation under test. The
// expected values come from the CPU kernels themselves (packages gemm, nn,
// attn and rigid, called directly on host slices), or, for matrix
// products, from a float64 triple loop; each comparison states its
// tolerance (Tolerance).
//
// The CPU backend runs the suite with Exact() in the default build, which
// checks that it passes every argument through unchanged; the CUDA backend
// runs it with Default[T]() in foldkit_cuda builds on a GPU.
//
// The suite assumes the backend's default options (in particular, that
// Attention checks its inputs for NaN).
package conformance

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// Tolerance bounds the difference between a backend's results and the CPU
// kernels': |got − want| ≤ tol·max(1, |want|) for each kernel class, and
// |got − want| ≤ Gemm·Σ_k |a_ik|·|b_kj| for matrix products (measured
// against a float64 product). A tolerance of 0 demands equality to the
// last bit.
type Tolerance struct {
	Elementwise float64 // Sigmoid, ReLU, Mul, Add, Gate and their gradients
	Rows        float64 // LayerNorm, Softmax, column sums (bias, scale gradients)
	Attention   float64 // Attention and AttentionBackward
	Rigid       float64 // frame operations and their gradients
	Gemm        float64 // Gemm, GemmStridedBatched, Linear's products
}

// Exact returns the tolerance of the CPU backend, which calls the CPU
// kernels themselves: equality, except for matrix products, which are
// compared with a float64 product. Their bound is γ_k = k·u for k ≤ 300
// terms: float32 u = 6e-8 gives 2e-5, float64 u = 1.1e-16 gives 4e-14.
func Exact[T num.Float]() Tolerance {
	if num.Is32[T]() {
		return Tolerance{Gemm: 2e-5}
	}
	return Tolerance{Gemm: 4e-14}
}

// Default returns the tolerance an accelerator backend must meet for T
// when it computes in T's own precision:
//
//   - Elementwise: the CUDA kernels compute sigmoid in float64 as the CPU
//     does, so results differ by at most an ulp of exp: float32 5e-7 (4
//     ulp), float64 5e-15 (20 ulp).
//   - Rows: sums over a row (≤ 400 terms here) in another order: float32
//     2e-5, float64 1e-12 (γ_400·|x|max/|result| with margin).
//   - Attention: logits, a softmax over ≤ 300 keys and sums over the batch
//     in another order, with expf (≤ 2 ulp) instead of a float64 exp:
//     float32 5e-5, float64 1e-11.
//   - Rigid: the same formulas in the same order without fused
//     multiply-adds: float32 1e-6, float64 1e-14 (a few ulp of the 3×3
//     products, for compilers that fuse anyway).
//   - Gemm: as Exact.
func Default[T num.Float]() Tolerance {
	if num.Is32[T]() {
		return Tolerance{Elementwise: 5e-7, Rows: 2e-5, Attention: 5e-5, Rigid: 1e-6, Gemm: 2e-5}
	}
	return Tolerance{Elementwise: 5e-15, Rows: 1e-12, Attention: 1e-11, Rigid: 1e-14, Gemm: 4e-14}
}

// All runs every test of the suite as a subtest.
func All[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	t.Run("Memory", func(t *testing.T) { Memory(t, k) })
	t.Run("Gemm", func(t *testing.T) { Gemm(t, k, tol) })
	t.Run("Linear", func(t *testing.T) { Linear(t, k, tol) })
	t.Run("LayerNorm", func(t *testing.T) { LayerNorm(t, k, tol) })
	t.Run("Softmax", func(t *testing.T) { Softmax(t, k, tol) })
	t.Run("Elementwise", func(t *testing.T) { Elementwise(t, k, tol) })
	t.Run("Reshape", func(t *testing.T) { Reshape(t, k, tol) })
	t.Run("Attention", func(t *testing.T) { Attention(t, k, tol) })
	t.Run("Rigid", func(t *testing.T) { Rigid(t, k, tol) })
	t.Run("Chain", func(t *testing.T) { Chain(t, k, tol) })
	t.Run("Errors", func(t *testing.T) { Errors(t, k) })
}

// newRNG returns the suite's deterministic random source.
func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// randVec returns n values uniform on [lo, hi).
func randVec[T num.Float](rng *rand.Rand, n int, lo, hi float64) []T {
	x := make([]T, n)
	for i := range x {
		x[i] = T(lo + (hi-lo)*rng.Float64())
	}
	return x
}

// put copies x to the backend, failing the test on error.
func put[T num.Float](t testing.TB, k backend.Kernels[T], x []T) backend.Tensor[T] {
	t.Helper()
	d, err := k.FromHost(x)
	if err != nil {
		t.Fatalf("FromHost(%d values): %v", len(x), err)
	}
	return d
}

// get copies x back to the host, failing the test on error.
func get[T num.Float](t testing.TB, k backend.Kernels[T], x backend.Tensor[T]) []T {
	t.Helper()
	h := make([]T, x.Len())
	if err := k.ToHost(h, x); err != nil {
		t.Fatalf("ToHost: %v", err)
	}
	return h
}

// must fails the test if err is not nil.
func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func clone[T num.Float](x []T) []T { return append([]T(nil), x...) }

// compare checks |got − want| ≤ tol·max(1, |want|) elementwise (tol = 0:
// identical values) and logs the largest error.
func compare[T num.Float](t testing.TB, what string, got, want []T, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	worst, at, bad := 0.0, 0, 0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(w) || math.IsNaN(g) {
			if math.IsNaN(w) != math.IsNaN(g) {
				bad++
				at = i
			}
			continue
		}
		e := math.Abs(g - w)
		if tol == 0 {
			if g != w {
				bad++
				at = i
			}
		} else if e > tol*max(1, math.Abs(w)) {
			bad++
			at = i
		}
		if s := e / max(1, math.Abs(w)); s > worst {
			worst = s
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ beyond %g; e.g. [%d] = %v, want %v (max scaled error %.3g)", what, bad, len(got), tol, at, got[at], want[at], worst)
		return
	}
	t.Logf("%s: max scaled error %.3g (tolerance %g)", what, worst, tol)
}

// Memory checks allocation, copies, views and zeroing.
func Memory[T num.Float](t *testing.T, k backend.Kernels[T]) {
	rng := newRNG(1)
	x := randVec[T](rng, 1000, -1, 1)
	a, err := k.Alloc(1000)
	must(t, "Alloc", err)
	defer k.Free(a)
	if a.Len() != 1000 {
		t.Fatalf("Alloc(1000).Len() = %d", a.Len())
	}
	compare(t, "Alloc is zeroed", get(t, k, a), make([]T, 1000), 0)
	must(t, "Upload", k.Upload(a, x))
	compare(t, "Upload/ToHost round trip", get(t, k, a), x, 0)

	b := put(t, k, x)
	defer k.Free(b)
	c, err := k.Alloc(1000)
	must(t, "Alloc", err)
	defer k.Free(c)
	must(t, "Copy", k.Copy(c, b))
	compare(t, "Copy", get(t, k, c), x, 0)

	// A view shares its parent's storage: writes through it show in the
	// parent, and freeing it does not free the parent.
	v, err := k.View(c, 100, 50)
	must(t, "View", err)
	if v.Len() != 50 {
		t.Fatalf("View(100, 50).Len() = %d", v.Len())
	}
	compare(t, "View reads its range", get(t, k, v), x[100:150], 0)
	must(t, "Zero(view)", k.Zero(v))
	k.Free(v)
	want := clone(x)
	clear(want[100:150])
	compare(t, "Zero through a view", get(t, k, c), want, 0)
	y := randVec[T](rng, 50, -1, 1)
	must(t, "Upload(view)", k.Upload(v, y))
	copy(want[100:150], y)
	compare(t, "Upload through a view", get(t, k, c), want, 0)
	must(t, "Sync", k.Sync())

	// Empty tensors work everywhere.
	e, err := k.Alloc(0)
	must(t, "Alloc(0)", err)
	must(t, "Zero(empty)", k.Zero(e))
	must(t, "ToHost(empty)", k.ToHost(nil, e))
	k.Free(e)
	k.Free(nil)

	// Length mismatches are shape errors.
	if err := k.ToHost(make([]T, 3), a); !errors.Is(err, num.ErrShape) {
		t.Errorf("ToHost into a short slice: %v, want ErrShape", err)
	}
	if _, err := k.View(a, 990, 20); !errors.Is(err, num.ErrShape) {
		t.Errorf("View past the end: %v, want ErrShape", err)
	}
	if _, err := k.Alloc(-1); !errors.Is(err, num.ErrShape) {
		t.Errorf("Alloc(-1): %v, want ErrShape", err)
	}
}

// naiveGemm returns the float64 product alpha·op(A)·op(B) + beta·C for
// batch i and the bound Σ_k|a||b| + |beta·c| of each element.
func naiveGemm[T num.Float](tA, tB bool, m, n, k int, alpha float64, a []T, lda, sa int, b []T, ldb, sb int, beta float64, c []T, ldc, sc, batch int) (want, bound []float64) {
	want = make([]float64, len(c))
	bound = make([]float64, len(c))
	for i, v := range c {
		want[i] = float64(v)
	}
	for p := 0; p < batch; p++ {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s, s1 float64
				for l := 0; l < k; l++ {
					ai := p*sa + i*lda + l
					if tA {
						ai = p*sa + l*lda + i
					}
					bi := p*sb + l*ldb + j
					if tB {
						bi = p*sb + j*ldb + l
					}
					s += float64(a[ai]) * float64(b[bi])
					s1 += math.Abs(float64(a[ai]) * float64(b[bi]))
				}
				ci := p*sc + i*ldc + j
				old := float64(c[ci])
				if beta == 0 {
					old = 0
				}
				want[ci] = alpha*s + beta*old
				bound[ci] = math.Abs(alpha)*s1 + math.Abs(beta*old)
			}
		}
	}
	return want, bound
}

// Gemm checks Gemm and GemmStridedBatched on transposed and padded
// operands, broadcast (stride 0) inputs and interleaved outputs, against a
// float64 triple loop: |got − want| ≤ tol.Gemm·(Σ|a||b| + |beta·c|) + tiny.
func Gemm[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	rng := newRNG(2)
	type tc struct {
		name         string
		tA, tB       bool
		m, n, kk     int
		pa, pb, pc   int // row padding
		alpha, beta  float64
		batch        int
		sa, sb, sc   int // extra batch stride (−1: stride 0, broadcast)
		interleavedC bool
	}
	cases := []tc{
		{name: "NN", m: 17, n: 23, kk: 31, alpha: 1, beta: 0, batch: 1},
		{name: "TN padded", tA: true, m: 33, n: 8, kk: 65, pa: 3, pb: 1, pc: 2, alpha: 0.5, beta: 1, batch: 1},
		{name: "NT", tB: true, m: 64, n: 64, kk: 64, alpha: 1, beta: -0.5, batch: 1},
		{name: "TT", tA: true, tB: true, m: 5, n: 129, kk: 7, pc: 5, alpha: 2, beta: 0, batch: 1},
		{name: "k=0", m: 4, n: 6, kk: 0, alpha: 1, beta: 0.5, batch: 1},
		{name: "m=0", m: 0, n: 6, kk: 3, alpha: 1, beta: 1, batch: 1},
		{name: "batched", m: 12, n: 20, kk: 16, alpha: 1, beta: 0, batch: 5, sa: 3, sb: 0, sc: 7},
		{name: "batched TN broadcast A", tA: true, m: 9, n: 10, kk: 300, alpha: 1, beta: 1, batch: 4, sa: -1, sc: 1},
		{name: "batched interleaved C", tB: true, m: 6, n: 8, kk: 32, alpha: 1, beta: 0, batch: 3, interleavedC: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ar, ac := c.m, c.kk
			if c.tA {
				ar, ac = c.kk, c.m
			}
			br, bc := c.kk, c.n
			if c.tB {
				br, bc = c.n, c.kk
			}
			lda, ldb, ldc := max(1, ac+c.pa), max(1, bc+c.pb), max(1, c.n+c.pc)
			sa := ar*lda + c.sa
			if c.sa < 0 {
				sa = 0
			}
			sb := br*ldb + c.sb
			sc := c.m*ldc + c.sc
			if c.interleavedC {
				sc = c.n
				ldc = c.batch * c.n
			}
			size := func(rows, ld, stride int) int { return max(1, (c.batch-1)*stride+rows*ld) }
			a := randVec[T](rng, size(ar, lda, sa), -1, 1)
			b := randVec[T](rng, size(br, ldb, sb), -1, 1)
			cc := randVec[T](rng, size(c.m, ldc, sc), -1, 1)
			want, bound := naiveGemm(c.tA, c.tB, c.m, c.n, c.kk, c.alpha, a, lda, sa, b, ldb, sb, c.beta, cc, ldc, sc, c.batch)
			da, db, dc := put(t, k, a), put(t, k, b), put(t, k, cc)
			defer k.Free(da)
			defer k.Free(db)
			defer k.Free(dc)
			var err error
			if c.batch == 1 && c.sa == 0 && c.sb == 0 && c.sc == 0 {
				err = k.Gemm(c.tA, c.tB, c.m, c.n, c.kk, T(c.alpha), da, lda, db, ldb, T(c.beta), dc, ldc)
			} else {
				err = k.GemmStridedBatched(c.tA, c.tB, c.m, c.n, c.kk, T(c.alpha), da, lda, sa, db, ldb, sb, T(c.beta), dc, ldc, sc, c.batch)
			}
			must(t, "gemm", err)
			got := get(t, k, dc)
			worst := 0.0
			for i := range got {
				e := math.Abs(float64(got[i]) - want[i])
				lim := tol.Gemm*bound[i] + 1e-300
				if e > lim {
					t.Fatalf("element %d: got %v, want %v (error %.3g > %.3g)", i, got[i], want[i], e, lim)
				}
				if bound[i] > 0 {
					worst = max(worst, e/bound[i])
				}
			}
			t.Logf("max error / Σ|a||b| = %.3g (tolerance %g)", worst, tol.Gemm)
		})
	}
}
