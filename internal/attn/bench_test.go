package attn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/foldkit/foldkit/internal/gemm"
)

// benchProblem returns a float32 attention problem of triangle-attention
// shape: batch rows of l queries and l keys, 4 heads of 32 channels, with a
// pair bias and a key mask (every key present), in contiguous layouts.
func benchProblem(batch, l int) (*Problem[float32], Layout) {
	const heads, c = 4, 32
	rng := rand.New(rand.NewPCG(1, 1))
	d := Dims{Batch: batch, Heads: heads, Lq: l, Lk: l, C: c, Cv: c}
	lay := Layout{Batch: l * heads * c, Row: heads * c}
	rnd := func(n int, sd float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = sd * float32(rng.NormFloat64())
		}
		return x
	}
	n := batch * l * heads * c
	mask := make([]float32, batch*l)
	for i := range mask {
		mask[i] = 1
	}
	return &Problem[float32]{
		Dims: d, Q: rnd(n, 1), QL: lay, K: rnd(n, 1), KL: lay, V: rnd(n, 1), VL: lay,
		Scale: float32(1 / math.Sqrt(c)), PairBias: rnd(heads*l*l, 1), KeyMask: mask, MaskBias: EvoformerMaskBias,
	}, lay
}

// benchShapes are triangle attention at N = 256 and N = 512 residues (Batch =
// N rows, L = N); the second is about 8× the work of the first.
var benchShapes = []struct{ batch, l int }{{256, 256}, {512, 512}}

// BenchmarkForward measures Forward in float32 at triangle-attention shapes
// and reports GFLOP/s by Dims.Flops (4·B·H·Lq·Lk·C for the two products;
// exponentials not counted) and bytes allocated per call.
func BenchmarkForward(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("B%d_L%d_%s", s.batch, s.l, gemm.Name()), func(b *testing.B) {
			p, lay := benchProblem(s.batch, s.l)
			o := make([]float32, len(p.Q))
			lse := make([]float32, s.batch*p.Heads*s.l)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := Forward(p, o, lay, lse); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(p.Flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkBackward measures Backward (all four gradients) in float32 and
// reports GFLOP/s by Dims.BackwardFlops (the five products, recomputation of
// q·kᵀ included) and bytes allocated per call.
func BenchmarkBackward(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("B%d_L%d_%s", s.batch, s.l, gemm.Name()), func(b *testing.B) {
			p, lay := benchProblem(s.batch, s.l)
			o := make([]float32, len(p.Q))
			lse := make([]float32, s.batch*p.Heads*s.l)
			if err := Forward(p, o, lay, lse); err != nil {
				b.Fatal(err)
			}
			do, dq, dk, dv := make([]float32, len(o)), make([]float32, len(o)), make([]float32, len(o)), make([]float32, len(o))
			for i := range do {
				do[i] = float32(i%7) - 3
			}
			dpb := make([]float32, len(p.PairBias))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := Backward(p, o, lay, lse, do, dq, dk, dv, dpb); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(p.BackwardFlops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGated measures the gated module forward and backward at
// triangle-attention shape (N = 256: batch 256 rows of 256, c_in = c_out =
// 128, 4 heads of 32) in float32. GFLOP/s counts the core's products plus
// the projections (x·[q|k|v|g] and the output projection forward; their
// three gradient products each backward).
func BenchmarkGated(b *testing.B) {
	const n, cin, heads, c = 256, 128, 4, 32
	rng := rand.New(rand.NewPCG(2, 2))
	p := NewGated[float32](rng, cin, heads, c, cin)
	for i := range p.OutputW {
		p.OutputW[i] = float32(rng.NormFloat64()) / 12
	}
	lay := Layout{Batch: n * cin, Row: cin}
	x := make([]float32, n*n*cin)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	pb := make([]float32, heads*n*n)
	out := make([]float32, len(x))
	d := Dims{Batch: n, Heads: heads, Lq: n, Lk: n, C: c, Cv: c}
	rows := n * n
	proj := gemm.Flops(rows, 4*heads*c, cin) + gemm.Flops(rows, cin, heads*c)
	var cache GatedCache[float32]
	b.Run("forward", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if err := GatedForward(&p, x, lay, n, n, pb, nil, out, lay, &cache); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric((d.Flops()+proj)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("backward", func(b *testing.B) {
		if err := GatedForward(&p, x, lay, n, n, pb, nil, out, lay, &cache); err != nil {
			b.Fatal(err)
		}
		dx, dpb, g := make([]float32, len(x)), make([]float32, len(pb)), p.ZerosLike()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := GatedBackward(&p, &cache, out, dx, dpb, &g); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric((d.BackwardFlops()+2*proj)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// allocated returns the bytes f allocates on the heap (TotalAlloc before and
// after; other goroutines of this test binary are idle while it runs).
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// TestMemoryIsTiled checks that Forward and Backward allocate O(tile) memory
// per worker, not the Lq×Lk logits of even one (batch, head), on a problem
// where one logit matrix alone would be 8 MiB.
func TestMemoryIsTiled(t *testing.T) {
	const batch, heads, l, c = 2, 3, 1024, 16
	rng := rand.New(rand.NewPCG(9, 9))
	d := Dims{Batch: batch, Heads: heads, Lq: l, Lk: l, C: c, Cv: c}
	lay := Layout{Batch: l * heads * c, Row: heads * c}
	n := batch * l * heads * c
	rnd := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		return x
	}
	p := &Problem[float64]{Dims: d, Q: rnd(n), QL: lay, K: rnd(n), KL: lay, V: rnd(n), VL: lay, Scale: 0.25, PairBias: rnd(heads * l * l)}
	o, lse, do := make([]float64, n), make([]float64, batch*heads*l), rnd(n)
	dq, dk, dv, dpb := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, heads*l*l)

	workers := uint64(min(gemm.Workers(), batch*heads*(l/DefaultTileQ)))
	const elem = 8
	tile := uint64(DefaultTileQ * DefaultTileK)
	// Per worker: the logit tile, the TileQ×Cv accumulator, two TileQ-long
	// and one TileK-long vector; plus 16 KiB of fixed overhead per worker
	// (closures, the worker struct, gemm's own small allocations).
	fwdBound := workers * ((tile+uint64(DefaultTileQ*(c+2)+DefaultTileK))*elem + 16<<10)
	logits := uint64(l * l * elem) // one (batch, head) logit matrix
	got := allocated(func() {
		if err := Forward(p, o, lay, lse); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Forward: %d workers allocated %d B (bound %d B; one logit matrix is %d B)", workers, got, fwdBound, logits)
	if got > fwdBound || got >= logits/4 {
		t.Errorf("Forward allocated %d B, want ≤ %d B (O(tile) per worker)", got, fwdBound)
	}

	bw := uint64(min(gemm.Workers(), batch*heads))
	// Per worker: the logit and dP tiles, five TileQ-long and one
	// TileK-long vector.
	bwdBound := bw * ((2*tile+uint64(5*DefaultTileQ+DefaultTileK))*elem + 16<<10)
	got = allocated(func() {
		if err := Backward(p, o, lay, lse, do, dq, dk, dv, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Backward without dPairBias: %d workers allocated %d B (bound %d B)", bw, got, bwdBound)
	if got > bwdBound || got >= logits/4 {
		t.Errorf("Backward allocated %d B, want ≤ %d B", got, bwdBound)
	}
	// With dPairBias, each further worker sharing a head gets a private
	// [Lq, Lk] buffer: at most (workers − 1) of them when KVHeads = Heads.
	bwdBound += (bw - 1) * logits
	got = allocated(func() {
		if err := Backward(p, o, lay, lse, do, dq, dk, dv, dpb); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Backward with dPairBias: %d workers allocated %d B (bound %d B)", bw, got, bwdBound)
	if got > bwdBound {
		t.Errorf("Backward allocated %d B, want ≤ %d B", got, bwdBound)
	}
}
