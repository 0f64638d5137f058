package alphafold

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"
)

// heapBytes reads the bytes held by live and not yet collected heap
// objects (runtime/metrics, no stop-the-world).
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap runs f while sampling the heap every millisecond and returns the
// largest heap size seen above the size before the call. Samples can miss
// a short-lived peak between them, so the figure is a lower bound of the
// true peak; the buffers here live for many milliseconds.
func peakHeap(f func() error) (uint64, error) {
	runtime.GC()
	base := heapBytes()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapBytes(); h > peak {
				peak = h
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	err := f()
	close(done)
	wg.Wait()
	if h := heapBytes(); h > peak {
		peak = h
	}
	if peak < base {
		return 0, err
	}
	return peak - base, err
}

// benchEvo runs NewEvoformerBench and reports GFLOP/s and the peak heap of
// one run above the heap holding the module and its inputs.
func benchEvo(b *testing.B, module string, n, s int, backward bool) {
	run, flops, err := NewEvoformerBench(module, n, s, "float32", backward)
	if err != nil {
		b.Fatal(err)
	}
	peak, err := peakHeap(run) // also warms up
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	b.ReportMetric(float64(peak), "peak-heap-B")
	b.ReportMetric(sec, "s/op")
}

// Benchmarks of one Evoformer block (AF2 widths, S = 128 sequences,
// float32, inference) at the sizes of the issue, and of its heaviest
// parts. Run them with -bench and a small -benchtime (each N = 512 block
// takes tens of seconds on two cores with the pure-Go BLAS).
func BenchmarkEvoformerBlock(b *testing.B) {
	for _, n := range []int{128, 256, 512} {
		b.Run(fmt.Sprintf("N=%d/S=128", n), func(b *testing.B) { benchEvo(b, "evoformer_block", n, 128, false) })
	}
}

// BenchmarkEvoformerBlockBackward times a forward pass with a cache and the
// backward pass of one block at N = 128, S = 128.
func BenchmarkEvoformerBlockBackward(b *testing.B) {
	benchEvo(b, "evoformer_block", 128, 128, true)
}

func BenchmarkExtraMSABlock(b *testing.B) {
	// AF2 runs the extra-MSA stack on up to 1024 (and in its configs 5120)
	// sequences of width 64.
	benchEvo(b, "extra_msa_block", 128, 1024, false)
}

func BenchmarkOuterProductMean(b *testing.B) {
	for _, n := range []int{128, 256} {
		b.Run(fmt.Sprintf("N=%d/S=128", n), func(b *testing.B) { benchEvo(b, "outer_product_mean", n, 128, false) })
	}
}

func BenchmarkTransition(b *testing.B) {
	b.Run("msa/N=256/S=128", func(b *testing.B) { benchEvo(b, "msa_transition", 256, 128, false) })
	b.Run("pair/N=256", func(b *testing.B) { benchEvo(b, "pair_transition", 256, 1, false) })
}

// TestEvoformerBlockMemoryN1024 runs one inference block at N = 1024,
// S = 128 in float32 (AF2 widths) and checks that it stays within 8 GiB:
// both the sampled peak of the Go heap (inputs included) and the process's
// peak resident set. It takes minutes on two cores, so it runs only when
// FOLDKIT_LONG=1. It runs with the default GOGC, so the figures include the
// garbage the collector has not yet reclaimed.
func TestEvoformerBlockMemoryN1024(t *testing.T) {
	if os.Getenv("FOLDKIT_LONG") != "1" {
		t.Skip("set FOLDKIT_LONG=1 to run the N = 1024 memory check")
	}
	const n, s = 1024, 128
	runtime.GC()
	base := heapBytes()
	run, flops, err := NewEvoformerBench("evoformer_block", n, s, "float32", false)
	if err != nil {
		t.Fatal(err)
	}
	inputs := heapBytes() - base
	start := time.Now()
	peak, err := peakHeap(run)
	if err != nil {
		t.Fatal(err)
	}
	sec := time.Since(start).Seconds()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	rss := uint64(ru.Maxrss) * 1024 // Linux reports KiB
	total := inputs + peak
	t.Logf("N = %d, S = %d: %.1f s, %.1f GFLOP/s; heap: inputs and parameters %.2f GiB, peak above them %.2f GiB, total %.2f GiB; peak RSS %.2f GiB",
		n, s, sec, flops/sec/1e9, gib(inputs), gib(peak), gib(total), gib(rss))
	const limit = 8 << 30
	if total > limit || rss > limit {
		t.Errorf("peak memory above 8 GiB: heap %.2f GiB, RSS %.2f GiB", gib(total), gib(rss))
	}
}

func gib(b uint64) float64 { return float64(b) / (1 << 30) }
