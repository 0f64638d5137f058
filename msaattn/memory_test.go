package msaattn

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// allocated returns the bytes the Go heap allocated while f ran.
func allocated(t *testing.T, f func() error) uint64 {
	t.Helper()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	if err := f(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// TestMemoryBound checks the memory claims of the package by counting the
// bytes each pass allocates (an upper bound on what it holds) against a
// budget linear in the sizes.
//
// Row and column attention: the budget counts the layer-normed input, the
// output, the gated-attention projections (q, k, v, gate: 4·H·c per
// position) and output before gating (H·c), and for row attention the pair
// bias [H, N, N], the pair layer-norm statistics and one chunk of the
// layer-normed pair representation, at 10 bytes per float64
// element (25% for kernel buffers not counted here), plus 1 MiB. The sizes
// are such that one quadratic tensor — the logits of every sequence
// [S, H, N, N] in row attention, of every column [N, H, S, S] in column
// attention — would alone exceed the budget several times over.
//
// Global column attention: the budget counts the output, the keys and
// values (2c per position), the statistics, the transposed mask and the
// chunk buffers (and in Backward the gradients of msa and of the keys and
// values), plus 1 MiB, plus 64 KiB per gemm call: gonum's gemm allocates
// tens of KiB per call for its parallel blocks, and global attention makes
// a few calls per chunk of chunkRows positions. It is about 3 times the
// size of the input; one [S, S] matrix per column would be 8192²·8 bytes =
// 512 MiB.
func TestMemoryBound(t *testing.T) {
	const slack = 1 << 20
	rng := rand.New(rand.NewPCG(41, 42))

	t.Run("row", func(t *testing.T) {
		cfg := RowConfig{MSAChannels: 8, PairChannels: 4, Heads: 2, HeadChannels: 3}
		s, n := 64, 256
		m := newRow[float64](t, rng, cfg)
		msa, z, mask := randn[float64](rng, s*n*cfg.MSAChannels), randn[float64](rng, n*n*cfg.PairChannels), randMask[float64](rng, s, n)
		hc := cfg.Heads * cfg.HeadChannels
		budget := 10*(s*n*(2*cfg.MSAChannels+5*hc+2)+n*n*(2*cfg.Heads+2)+chunkRows*(cfg.PairChannels+cfg.Heads)) + slack
		quad := 8 * s * cfg.Heads * n * n
		got := allocated(t, func() error { _, err := m.Forward(msa, z, mask, s, n, nil); return err })
		t.Logf("row attention S=%d N=%d: Forward allocated %d bytes, budget %d, one [S,H,N,N] tensor %d", s, n, got, budget, quad)
		if got > uint64(budget) || quad < 2*budget {
			t.Errorf("Forward allocated %d bytes, over the linear budget %d (a [S,H,N,N] tensor is %d)", got, budget, quad)
		}
	})

	t.Run("column", func(t *testing.T) {
		cfg := ColumnConfig{MSAChannels: 8, Heads: 2, HeadChannels: 3}
		s, n := 512, 8
		m := newColumn[float64](t, rng, cfg)
		msa, mask := randn[float64](rng, s*n*cfg.MSAChannels), randMask[float64](rng, s, n)
		hc := cfg.Heads * cfg.HeadChannels
		budget := 10*s*n*(2*cfg.MSAChannels+5*hc+3) + slack
		quad := 8 * n * cfg.Heads * s * s
		got := allocated(t, func() error { _, err := m.Forward(msa, mask, s, n, nil); return err })
		t.Logf("column attention S=%d N=%d: Forward allocated %d bytes, budget %d, one [N,H,S,S] tensor %d", s, n, got, budget, quad)
		if got > uint64(budget) || quad < 2*budget {
			t.Errorf("Forward allocated %d bytes, over the linear budget %d (an [N,H,S,S] tensor is %d)", got, budget, quad)
		}
	})

	t.Run("global", func(t *testing.T) {
		cfg := GlobalColumnConfig{MSAChannels: 8, Heads: 2, HeadChannels: 3}
		s, n := 8192, 32
		m := newGlobal[float64](t, rng, cfg)
		ce, c, hc := cfg.MSAChannels, cfg.HeadChannels, cfg.Heads*cfg.HeadChannels
		msa, mask, dout := randn[float64](rng, s*n*ce), randMask[float64](rng, s, n), randn[float64](rng, s*n*ce)
		chunks := 8 * chunkRows * (2*ce + 3*hc)
		gemmCalls := (s*n + chunkRows - 1) / chunkRows // per gemm per chunk
		// Forward: output, keys and values, statistics and transposed mask;
		// three products per chunk.
		fwd := 8*s*n*(ce+2*c+3) + chunks + slack + 3*gemmCalls<<16
		// Backward adds the gradient of msa and of the keys and values, and
		// seven products per chunk.
		bwd := fwd + 8*s*n*(ce+2*c) + chunks + 7*gemmCalls<<16
		got := allocated(t, func() error { _, err := m.Forward(msa, mask, s, n, nil); return err })
		t.Logf("global column attention S=%d N=%d: Forward allocated %d bytes, budget %d", s, n, got, fwd)
		if got > uint64(fwd) {
			t.Errorf("Forward allocated %d bytes, over the linear budget %d", got, fwd)
		}
		got = allocated(t, func() error {
			var cache GlobalColumnCache[float64]
			if _, err := m.Forward(msa, mask, s, n, &cache); err != nil {
				return err
			}
			_, err := m.Backward(&cache, dout)
			return err
		})
		t.Logf("global column attention S=%d N=%d: Forward and Backward allocated %d bytes, budget %d", s, n, got, bwd)
		if got > uint64(bwd) {
			t.Errorf("Forward and Backward allocated %d bytes, over the linear budget %d", got, bwd)
		}
	})
}
