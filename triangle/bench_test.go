package triangle

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foldkit/foldkit/internal/gemm"
)

// The benchmarks run the four triangle modules at N = 128, 256, 512 and
// 1024 (c_z = 128, AF2's widths), forward and forward+backward, in float32,
// and report
//
//   - GFLOP/s of the matrix products (MulFlops, AttFlops), over the runs
//     after the first (which allocates the cache and workspace), or of the
//     first when it is the only one;
//   - pct_of_sgemm_peak: that rate as a percentage of the sgemm rate at
//     1024³ measured in the same benchmark (sgemmPeak: the best of five
//     products, measured before the runs, after each run and at the end,
//     and the best of these taken), so that
//     `go test -bench 'TriMul.*512' -tags openblas ./triangle/` shows the
//     ratio against OpenBLAS on the machine at hand;
//   - best_pct_of_sgemm_peak: the same for the fastest run (on a shared
//     machine the mean suffers from other load more than the best does);
//   - peak_heap_MiB: the largest heap sampled every millisecond during the
//     first run (cache and workspace cold), above the level before it; the
//     inputs and outputs are allocated before, so this is the memory the op
//     needs beyond them. That run collects garbage eagerly (GOGC=10), so
//     the figure is within about 10% of the live heap (garbage not yet
//     collected counts too, so it can only overstate);
//   - alloc_MiB_first_run: the bytes the first run allocates, an upper bound
//     on what one run holds at once beyond its inputs and outputs (loose
//     where scratch is allocated per chunk and dropped, as in the attention
//     backward pass).
//
// N = 1024 is skipped with -short. Use -benchtime=1x for the large sizes.

// BenchmarkSgemmPeak measures the single-precision matrix product at
// 1024×1024×1024 through internal/gemm: the machine's reference rate.
func BenchmarkSgemmPeak(b *testing.B) {
	const n = 1024
	a, bb, c := sgemmOperands(n)
	for b.Loop() {
		gemm.Gemm(false, false, n, n, n, 1, a, n, bb, n, 0, c, n)
	}
	b.ReportMetric(gemm.Flops(n, n, n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func sgemmOperands(n int) (a, b, c []float32) {
	a, b, c = make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) - 3
		b[i] = float32(i%5) - 2
	}
	return a, b, c
}

// sgemmPeak returns the best sgemm rate (GFLOP/s) at 1024³ over a few runs.
func sgemmPeak() float64 {
	const n = 1024
	a, b, c := sgemmOperands(n)
	gemm.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) // warm up
	best := 0.0
	for range 5 {
		t0 := time.Now()
		gemm.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		best = max(best, gemm.Flops(n, n, n)/time.Since(t0).Seconds()/1e9)
	}
	return best
}

func BenchmarkTriMulN128(b *testing.B)  { benchModules(b, 128, CaseMulOutgoing, CaseMulIncoming) }
func BenchmarkTriMulN256(b *testing.B)  { benchModules(b, 256, CaseMulOutgoing, CaseMulIncoming) }
func BenchmarkTriMulN512(b *testing.B)  { benchModules(b, 512, CaseMulOutgoing, CaseMulIncoming) }
func BenchmarkTriMulN1024(b *testing.B) { benchModules(b, 1024, CaseMulOutgoing, CaseMulIncoming) }
func BenchmarkTriAttN128(b *testing.B)  { benchModules(b, 128, CaseAttStarting, CaseAttEnding) }
func BenchmarkTriAttN256(b *testing.B)  { benchModules(b, 256, CaseAttStarting, CaseAttEnding) }
func BenchmarkTriAttN512(b *testing.B)  { benchModules(b, 512, CaseAttStarting, CaseAttEnding) }
func BenchmarkTriAttN1024(b *testing.B) { benchModules(b, 1024, CaseAttStarting, CaseAttEnding) }

// benchModules runs sub-benchmarks <module>/forward and <module>/backward
// (forward + backward) at n residues in float32.
func benchModules(b *testing.B, n int, modules ...string) {
	if n >= 1024 && testing.Short() {
		b.Skip("N = 1024 skipped with -short")
	}
	for _, m := range modules {
		for _, pass := range []string{"forward", "backward"} {
			b.Run(m+"/"+pass, func(b *testing.B) {
				run, flops, err := NewBench(m, n, 0, "float32", pass == "backward")
				if err != nil {
					b.Fatal(err)
				}
				measure(b, flops, run)
			})
		}
	}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

// measure times run with b.Loop and reports GFLOP/s and its percentage of
// the sgemm peak (the best rate measured before the runs, after each and
// after the last: on a shared machine the quietest moment is the fairest
// reference), the same for the fastest run, and for the first (cold) run
// the sampled peak heap above the level before it and the bytes it
// allocated.
func measure(b *testing.B, flops float64, run func() error) {
	b.StopTimer()
	peak := sgemmPeak()
	b.StartTimer()
	sample := []metrics.Sample{{Name: heapMetric}}
	var mu sync.Mutex // metrics.Read must not run concurrently on one slice
	read := func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	var top atomic.Uint64
	var base, alloc uint64
	cold := func() error {
		base = read()
		top.Store(base)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if v := read(); v > top.Load() {
						top.Store(v)
					}
				}
			}
		})
		// Collect garbage eagerly during this run, so that the sampled heap
		// is close to the live heap rather than to twice it.
		gc := debug.SetGCPercent(10)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		err := run()
		runtime.ReadMemStats(&ms1)
		debug.SetGCPercent(gc)
		close(stop)
		wg.Wait()
		if v := read(); v > top.Load() {
			top.Store(v)
		}
		alloc = ms1.TotalAlloc - ms0.TotalAlloc
		return err
	}
	first := true
	best := time.Duration(1 << 62)
	var coldTime time.Duration
	for b.Loop() {
		f := run
		if first {
			f = cold
		}
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if first {
			coldTime, first = d, false
		}
		best = min(best, d)
		b.StopTimer()
		peak = max(peak, sgemmPeak())
		b.StartTimer()
	}
	b.StopTimer()
	peak = max(peak, sgemmPeak())
	// The rate is that of the warm runs (the first one allocates the cache
	// and workspace and samples the heap), or of the only run.
	rate := flops / coldTime.Seconds() / 1e9
	if b.N > 1 {
		rate = flops * float64(b.N-1) / (b.Elapsed() - coldTime).Seconds() / 1e9
	}
	b.ReportMetric(rate, "GFLOP/s")
	b.ReportMetric(100*rate/peak, "pct_of_sgemm_peak")
	b.ReportMetric(100*flops/best.Seconds()/1e9/peak, "best_pct_of_sgemm_peak")
	b.ReportMetric(peak, "sgemm_GFLOP/s")
	b.ReportMetric(float64(top.Load()-base)/(1<<20), "peak_heap_MiB")
	b.ReportMetric(float64(alloc)/(1<<20), "alloc_MiB_first_run")
}
