package alphafold

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkStructureModule and BenchmarkStructureModuleBackward time the
// structure module at AF2's widths (8 iterations) in float32 at the sizes
// of the issue, reporting GFLOP/s (StructureModuleFlops) and the bytes
// allocated per run (an upper bound on the memory one run holds beyond
// its parameters and inputs).
func BenchmarkStructureModule(b *testing.B)         { benchSM(b, false) }
func BenchmarkStructureModuleBackward(b *testing.B) { benchSM(b, true) }

func benchSM(b *testing.B, backward bool) {
	for _, n := range []int{128, 256} {
		b.Run(fmt.Sprintf("float32/N=%d", n), func(b *testing.B) {
			run, flops, err := NewStructureModuleBench(n, 0, "float32", backward)
			if err != nil {
				b.Fatal(err)
			}
			if err := run(); err != nil { // warm-up
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

// TestStructureModuleBench runs the benchmark closure once at a small size
// in both element types, so that `go test` covers NewStructureModuleBench.
func TestStructureModuleBench(t *testing.T) {
	for _, dtype := range []string{"float32", "float64"} {
		for _, backward := range []bool{false, true} {
			run, flops, err := NewStructureModuleBench(6, 0, dtype, backward)
			if err != nil {
				t.Fatal(err)
			}
			if flops <= 0 {
				t.Errorf("%s backward=%v: flops %v", dtype, backward, flops)
			}
			if err := run(); err != nil {
				t.Errorf("%s backward=%v: %v", dtype, backward, err)
			}
		}
	}
	if _, _, err := NewStructureModuleBench(4, 0, "float16", false); err == nil {
		t.Error("dtype float16 accepted")
	}
	if _, _, err := NewStructureModuleBench(0, 0, "float32", false); err == nil {
		t.Error("n = 0 accepted")
	}
}
