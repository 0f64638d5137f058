//go:build foldkit_cuda && !foldkit_cudaemu

package backend_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/cuda"
)

// The CUDA benchmarks, side by side with benchmarks/cuda/torch_bench.py,
// which runs the same shapes through PyTorch (scaled_dot_product_attention
// with an additive bias, torch.matmul); benchmarks/cuda/run.sh runs both
// on the GPU machine and prints the ratios. Each benchmark reports ms/op
// and GFLOP/s with the FLOP counts torch_bench.py uses:
//
//   - attention forward: 2·B·H·Lq·Lk·(C + Cv) (the two products; the
//     softmax is not counted), backward: 2.5× that (the four products of
//     the backward pass plus recomputing the logits, as FlashAttention
//     counts it);
//   - matrix products: 2·m·n·k.
//
// Shapes: triangle attention at N = 512 (B = 512 rows, H = 4, C = 32,
// Lq = Lk = 512, pair bias [H, N, N]), MSA row attention for 512
// sequences of 384 residues (B = 512, H = 8, C = 32, Lq = Lk = 384, pair
// bias [H, N, N]), each with and without the key mask (torch gets the
// bias alone); products 4096³ and the [N², 128]·[128, 128] projection of
// a pair tensor at N = 512.

type attnShape struct {
	name               string
	batch, heads, l, c int
}

var attnShapes = []attnShape{
	{"triangle_N512", 512, 4, 512, 32},
	{"msarow_S512_N384", 512, 8, 384, 32},
}

func randDev(b *testing.B, k backend.Kernels[float32], rng *rand.Rand, n int, scale float32) backend.Tensor[float32] {
	x := make([]float32, n)
	for i := range x {
		x[i] = scale * float32(rng.NormFloat64())
	}
	t, err := k.FromHost(x)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func BenchmarkCUDAAttention(b *testing.B) {
	k := openCUDA[float32](b, backend.CUDAOptions{SkipInputChecks: true})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range attnShapes {
		hc := s.heads * s.c
		n := s.batch * s.l * hc
		q, kk, v := randDev(b, k, rng, n, 1), randDev(b, k, rng, n, 1), randDev(b, k, rng, n, 1)
		bias := randDev(b, k, rng, s.heads*s.l*s.l, 1)
		maskH := make([]float32, s.batch*s.l)
		for i := range maskH {
			if rng.Float64() < 0.9 {
				maskH[i] = 1
			}
		}
		mask, _ := k.FromHost(maskH)
		o, _ := k.Alloc(n)
		do := randDev(b, k, rng, n, 1)
		lse, _ := k.Alloc(s.batch * s.heads * s.l)
		dq, _ := k.Alloc(n)
		dk, _ := k.Alloc(n)
		dv, _ := k.Alloc(n)
		db, _ := k.Alloc(s.heads * s.l * s.l)
		lay := attn.Layout{Batch: s.l * hc, Row: hc}
		flops := 2 * float64(s.batch) * float64(s.heads) * float64(s.l) * float64(s.l) * float64(2*s.c)
		for _, masked := range []bool{false, true} {
			p := &backend.Attention[float32]{
				Dims: attn.Dims{Batch: s.batch, Heads: s.heads, Lq: s.l, Lk: s.l, C: s.c, Cv: s.c},
				Q:    q, QL: lay, K: kk, KL: lay, V: v, VL: lay,
				Scale: float32(1 / math.Sqrt(float64(s.c))), PairBias: bias, MaskBias: attn.EvoformerMaskBias,
			}
			suffix := "_bias"
			if masked {
				p.KeyMask, suffix = mask, "_bias_mask"
			}
			b.Run("attn_"+s.name+suffix+"_fwd", func(b *testing.B) {
				run(b, k, flops, func() error { return k.Attention(p, o, lay, lse) })
			})
			b.Run("attn_"+s.name+suffix+"_bwd", func(b *testing.B) {
				if err := k.Attention(p, o, lay, lse); err != nil {
					b.Fatal(err)
				}
				run(b, k, 2.5*flops, func() error { return k.AttentionBackward(p, o, lay, lse, do, dq, dk, dv, db) })
			})
		}
		for _, x := range []backend.Tensor[float32]{q, kk, v, bias, mask, o, do, lse, dq, dk, dv, db} {
			k.Free(x)
		}
	}
}

func BenchmarkCUDAGemm(b *testing.B) {
	for _, m := range []cuda.Math{cuda.MathFP32, cuda.MathTF32, cuda.MathBF16} {
		k := openCUDA[float32](b, backend.CUDAOptions{Math: m})
		rng := rand.New(rand.NewPCG(3, 4))
		for _, s := range []struct {
			name    string
			m, n, k int
		}{{"4096", 4096, 4096, 4096}, {"pair_proj_N512", 512 * 512, 128, 128}} {
			a := randDev(b, k, rng, s.m*s.k, 1)
			w := randDev(b, k, rng, s.k*s.n, 1)
			c, _ := k.Alloc(s.m * s.n)
			b.Run("gemm_"+s.name+"_"+m.String(), func(b *testing.B) {
				run(b, k, 2*float64(s.m)*float64(s.n)*float64(s.k), func() error {
					return k.Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, w, s.n, 0, c, s.n)
				})
			})
			k.Free(a)
			k.Free(w)
			k.Free(c)
		}
	}
}

// run times f: one warm-up call, then b.N calls and a Sync, reporting
// ms/op and GFLOP/s for flops per call.
func run(b *testing.B, k backend.Kernels[float32], flops float64, f func() error) {
	if err := f(); err != nil {
		b.Fatal(err)
	}
	if err := k.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	if err := k.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec*1e3, "ms/op")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
}
