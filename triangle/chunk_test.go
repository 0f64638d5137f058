package triangle

import (
	"math"
	"testing"
)

// TestChunking checks that the chunk sizes change nothing but round-off:
// the multiplication with 1, 2 and all hidden channels per chunk, and with
// N² > blockPairs so that the pair blocks split; the attention with 1, 3
// and all rows per chunk, and with the projections kept or recomputed in
// the backward pass. Outputs and all gradients are compared in float64 to
// 1e-12 relative to the largest entry (the sums run in other groupings at
// most).
func TestChunking(t *testing.T) {
	const n = 47 // 2209 pairs: two pair blocks
	z, mask := testPair(n, 6, 21)
	cot := randn(len(z), 22)
	compare := func(t *testing.T, ref, got map[string][]float64) {
		t.Helper()
		for k, want := range ref {
			d, s := maxDiff(got[k], want)
			if d > 1e-12*s || math.IsNaN(d) {
				t.Errorf("%s: max difference %.3g (max |value| %.3g)", k, d, s)
			}
		}
	}
	for _, incoming := range []bool{false, true} {
		cfg := smallMul(incoming)
		p := testMulParams[float64](t, cfg, 2)
		ref := runMul(t, p, z, mask, cot, n)
		for _, chunk := range []int{1, 2} {
			q := *p
			q.Config.ChunkChannels = chunk
			t.Run(cfg.Name(), func(t *testing.T) { compare(t, ref, runMul(t, &q, z, mask, cot, n)) })
		}
	}
	for _, ending := range []bool{false, true} {
		cfg := smallAtt(ending)
		p := testAttParams[float64](t, cfg, 2)
		ref := runAtt(t, p, z, mask, cot, n)
		for _, rows := range []int{1, 3, 0} {
			q := *p
			q.Config.ChunkRows = rows
			t.Run(cfg.Name(), func(t *testing.T) {
				compare(t, ref, runAtt(t, &q, z, mask, cot, n))
				compare(t, ref, runAttRecompute(t, &q, z, mask, cot, n))
			})
		}
	}
}

// runAttRecompute is runAtt with the backward pass recomputing the
// projections chunk by chunk, as it does when they are too large to keep.
func runAttRecompute(t *testing.T, p *AttParams[float64], z, mask, cot []float64, n int) map[string][]float64 {
	t.Helper()
	out := make([]float64, len(z))
	c := AttCache[float64]{noKeep: true}
	if err := AttForward(p, z, mask, n, out, &c); err != nil {
		t.Fatal(err)
	}
	if c.kept {
		t.Fatal("the cache kept the projections")
	}
	dz, g := make([]float64, len(z)), p.ZerosLike()
	if err := AttBackward(p, &c, cot, dz, g); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float64{"out": out, "dz": dz}
	for k, v := range attArrays(g) {
		res[k] = v
	}
	return res
}

// TestChunkDefaults checks the automatic chunk sizes: every [chunk, N, N]
// buffer of the multiplication and the per-chunk projections of the
// attention stay under their budgets, and a chunk is never empty, for any N.
func TestChunkDefaults(t *testing.T) {
	mc, ac := DefaultMulConfig(), DefaultAttConfig()
	for _, n := range []int{1, 13, 128, 512, 1024, 2048, 4096, 20000} {
		for _, size := range []int{4, 8} {
			w := mc.chunk(n, size)
			if w < 1 || w > mc.HiddenChannels || (w > 1 && w*n*n*size > chunkBytes) {
				t.Errorf("N=%d, %d-byte: multiplication chunk %d", n, size, w)
			}
			r := ac.chunk(n, size)
			if r < 1 || r > n || (r > 1 && 4*r*n*ac.Heads*ac.HeadChannels*size > rowBytes) {
				t.Errorf("N=%d, %d-byte: attention chunk %d", n, size, r)
			}
		}
	}
	if w := mc.chunk(512, 4); w != mc.HiddenChannels {
		t.Errorf("N=512 float32: chunk %d, want all %d channels", w, mc.HiddenChannels)
	}
	if w := mc.chunk(1024, 4); w != 32 {
		t.Errorf("N=1024 float32: chunk %d, want 32", w)
	}
}
