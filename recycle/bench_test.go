package recycle

import (
	"fmt"
	"testing"
)

func benchRecycle(b *testing.B, module string, n int, backward bool) {
	run, flops, err := NewBench(module, n, 1, "float32", backward)
	if err != nil {
		b.Fatal(err)
	}
	if err := run(); err != nil { // warm up
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	if flops > 0 {
		b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	}
	b.ReportMetric(sec*1e3, "ms/op")
}

// BenchmarkEmbedder times the recycling embedder (AF2 widths, float32).
func BenchmarkEmbedder(b *testing.B) {
	for _, n := range []int{256, 512} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchRecycle(b, "recycling_embedder", n, false) })
	}
}

// BenchmarkLoopOverhead times Run's own work for 4 passes of a step that
// does nothing (state clones and the Cα criterion), the loop's overhead
// over the model it drives.
func BenchmarkLoopOverhead(b *testing.B) {
	for _, n := range []int{256, 512} {
		b.Run(fmt.Sprintf("N=%d/4passes", n), func(b *testing.B) { benchRecycle(b, "recycle_loop", n, false) })
	}
}
