package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestTile checks Tile against a float64 triple loop over shapes that cover
// the micro-kernel's 4×16 blocks, both edges, padded leading dimensions,
// alpha and accumulation. The bound is |err| ≤ 2k·u·Σ|a||b| + ulp slack
// with u the unit roundoff of the type: Tile sums k products in one order
// (γ_k ≤ 1.01·k·u for k·u ≪ 1), and alpha and the accumulation add two
// roundings.
func TestTile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range []struct {
		m, n, k, pad int
		alpha        float64
		acc          bool
	}{
		{4, 16, 1, 0, 1, false},
		{64, 128, 32, 0, 0.17, false}, // attention logits tile
		{64, 32, 128, 96, 1, true},    // attention p·v tile, v rows strided
		{5, 17, 3, 1, -2, false},      // one edge row, one edge column
		{3, 15, 9, 0, 1, true},        // edges only
		{8, 48, 0, 2, 1, false},       // k = 0: C = 0
		{8, 48, 0, 2, 1, true},        // k = 0 accumulating: C unchanged
		{17, 33, 100, 5, 0.5, true},
		{1, 1, 1, 0, 1, false},
		{4, 8, 128, 0, 1, true},     // 4×8 kernel: a head of 8 channels (p·v)
		{1, 128, 8, 0, 0.35, false}, // one query row against 128 keys (1×16)
		{1, 8, 128, 4, 1, true},     // one query row's p·v over 8 channels (1×8)
		{7, 29, 5, 3, -1, true},     // every kernel and both edges
		{3, 24, 2, 0, 1, false},     // one-row kernels only, 16 + 8 columns
	} {
		t.Run(fmt.Sprintf("%dx%dx%d", c.m, c.n, c.k), func(t *testing.T) {
			lda, ldb, ldc := c.k+c.pad, c.n+c.pad, c.n+c.pad
			if lda == 0 {
				lda = 1
			}
			a := make([]float64, c.m*lda)
			b := make([]float64, max(c.k, 1)*ldb)
			c0 := make([]float64, c.m*ldc)
			for _, x := range [][]float64{a, b, c0} {
				for i := range x {
					x[i] = 2*rng.Float64() - 1
				}
			}
			want := make([]float64, len(c0))
			bound := make([]float64, len(c0))
			copy(want, c0)
			for i := 0; i < c.m; i++ {
				for j := 0; j < c.n; j++ {
					var s, abs float64
					for p := 0; p < c.k; p++ {
						s += a[i*lda+p] * b[p*ldb+j]
						abs += math.Abs(a[i*lda+p] * b[p*ldb+j])
					}
					if c.acc {
						want[i*ldc+j] += c.alpha * s
						bound[i*ldc+j] = math.Abs(c0[i*ldc+j]) + math.Abs(c.alpha)*abs
					} else {
						want[i*ldc+j] = c.alpha * s
						bound[i*ldc+j] = math.Abs(c.alpha) * abs
					}
				}
			}
			check := func(name string, got, orig []float64, u float64) {
				t.Helper()
				for i := 0; i < c.m; i++ {
					for j := 0; j < ldc; j++ {
						x := i*ldc + j
						if j >= c.n {
							if got[x] != orig[x] {
								t.Fatalf("%s: padding C[%d,%d] written", name, i, j)
							}
							continue
						}
						tol := 2*float64(c.k+2)*u*bound[x] + 4*u*math.Abs(want[x])
						if e := math.Abs(got[x] - want[x]); e > tol {
							t.Fatalf("%s: C[%d,%d] = %v, want %v (error %.3g > %.3g)", name, i, j, got[x], want[x], e, tol)
						}
					}
				}
			}
			c64 := append([]float64(nil), c0...)
			Tile(c.acc, c.m, c.n, c.k, c.alpha, a, lda, b, ldb, c64, ldc)
			check("float64", c64, c0, 0x1p-53)
			a32, b32, c32 := to32(a), to32(b), to32(c0)
			Tile(c.acc, c.m, c.n, c.k, float32(c.alpha), a32, lda, b32, ldb, c32, ldc)
			got, orig := make([]float64, len(c32)), make([]float64, len(c32))
			for i, v := range c32 {
				got[i], orig[i] = float64(v), float64(float32(c0[i]))
			}
			// The float32 inputs are the float64 ones rounded (relative 2^-24 each).
			check("float32", got, orig, 0x1p-24)
		})
	}
}

// TestTilePanics checks that Tile refuses sizes its slices cannot hold
// rather than reading past them (the micro-kernel does no bounds checks).
func TestTilePanics(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"short a", func() {
			Tile(false, 4, 16, 8, 1, make([]float32, 31), 8, make([]float32, 128), 16, make([]float32, 64), 16)
		}},
		{"short b", func() {
			Tile(false, 4, 16, 8, 1, make([]float32, 32), 8, make([]float32, 127), 16, make([]float32, 64), 16)
		}},
		{"short c", func() {
			Tile(false, 4, 16, 8, 1, make([]float32, 32), 8, make([]float32, 128), 16, make([]float32, 63), 16)
		}},
		{"small ldb", func() {
			Tile(false, 4, 16, 8, 1, make([]float32, 32), 8, make([]float32, 128), 15, make([]float32, 64), 16)
		}},
		{"negative", func() {
			Tile(false, -1, 16, 8, 1, make([]float32, 32), 8, make([]float32, 128), 16, make([]float32, 64), 16)
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			c.f()
		}()
	}
}

// BenchmarkTile compares Tile with Gemm at the two products of one
// attention tile (64 queries, 128 keys, 32 channels), serially, and
// reports GFLOP/s.
func BenchmarkTile(b *testing.B) {
	for _, s := range []struct{ m, n, k int }{{64, 128, 32}, {64, 32, 128}} {
		a := make([]float32, s.m*s.k)
		bb := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for i := range a {
			a[i] = float32(i%7) * 0.1
		}
		for i := range bb {
			bb[i] = float32(i%5) * 0.1
		}
		b.Run(fmt.Sprintf("Tile_%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			for range b.N {
				Tile(false, s.m, s.n, s.k, 1, a, s.k, bb, s.n, c, s.n)
			}
			b.ReportMetric(Flops(s.m, s.n, s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("Gemm_%s_%dx%dx%d", Name(), s.m, s.n, s.k), func(b *testing.B) {
			for range b.N {
				Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n)
			}
			b.ReportMetric(Flops(s.m, s.n, s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
