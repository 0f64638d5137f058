package ipa

import (
	"fmt"
	"os"
	"runtime"
	"testing"
)

// benchSizes are the sizes the issue names. N = 1024 needs about 1.5 GiB
// (z and dz are 512 MiB each in float32) and runs only when
// FOLDKIT_BENCH_LARGE is set.
var benchSizes = []int{128, 256, 512, 1024}

// BenchmarkForward (Forward) and BenchmarkBackward (Forward then Backward)
// report GFLOP/s (the matrix products counted by Flops) and alloc-bytes, the
// bytes allocated by one run beyond its inputs and outputs (the gradient
// buffers are allocated once, outside the timed loop). Nearly everything a
// run allocates stays live until it returns, so alloc-bytes is close to, and
// never below, its peak extra memory.
func BenchmarkForward(b *testing.B)  { benchIPA(b, false) }
func BenchmarkBackward(b *testing.B) { benchIPA(b, true) }

func benchIPA(b *testing.B, backward bool) {
	for _, dtype := range []string{"float32", "float64"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/N=%d", dtype, n), func(b *testing.B) {
				if n >= 1024 && os.Getenv("FOLDKIT_BENCH_LARGE") == "" {
					b.Skip("set FOLDKIT_BENCH_LARGE=1 to run N = 1024")
				}
				run, flops, err := NewBench("ipa", n, 0, dtype, backward)
				if err != nil {
					b.Fatal(err)
				}
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				b.ResetTimer()
				for b.Loop() {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&m1)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "alloc-bytes")
			})
		}
	}
}
