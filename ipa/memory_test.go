package ipa

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/foldkit/foldkit/rigid"
)

// TestForwardMemory checks the bound: at N = 1024 with AF2's widths,
// Forward in float32 (with a cache for Backward) allocates less than 1 GiB
// beyond its inputs and output. The bytes allocated during the call bound
// the extra memory it holds at any time from above. z alone is 512 MiB, so
// the test is skipped with -short.
func TestForwardMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("N = 1024 needs about 0.6 GiB; skipped with -short")
	}
	cfg := DefaultConfig()
	const n = 1024
	rng := rand.New(rand.NewPCG(1, 1))
	p, err := NewParams[float32](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]float32, n*cfg.CS)
	z := make([]float32, n*n*cfg.CZ)
	// Cheap deterministic values: the allocation does not depend on them.
	for i := range s {
		s[i] = float32(math.Sin(float64(i)))
	}
	for i := range z {
		z[i] = float32(i%17)/8 - 1
	}
	frames := make([]rigid.Rigid[float32], n)
	mask := make([]float32, n)
	for i := range frames {
		frames[i] = randomFrame[float32](rng)
		mask[i] = 1
	}
	out := make([]float32, n*cfg.CS)
	var c Cache[float32]
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	if err := Forward(p, s, z, frames, mask, out, &c); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	attn := uint64(n * cfg.Heads * n * 4)
	t.Logf("Forward at N = %d allocated %.1f MiB (the [N,H,N] attention weights are %.1f MiB)", n, float64(alloc)/(1<<20), float64(attn)/(1<<20))
	if alloc >= 1<<30 {
		t.Errorf("Forward allocated %d bytes, want < 1 GiB", alloc)
	}
}
