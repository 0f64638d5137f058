package alphafold

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foldkit/foldkit/internal/benchkit"
)

// mdlBenchMSA returns the MSA sizes of the model benchmarks: AF2's
// inference sizes S = 512 cluster centres and Se = 1024 extra sequences
// (max_extra_msa of model_2 and model_5), or FOLDKIT_BENCH_MSA="S,Se".
func mdlBenchMSA(tb testing.TB) (s, se int) {
	s, se = 512, 1024
	if v := os.Getenv("FOLDKIT_BENCH_MSA"); v != "" {
		a, b, ok := strings.Cut(v, ",")
		var err1, err2 error
		s, err1 = strconv.Atoi(a)
		se, err2 = strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			tb.Fatalf("FOLDKIT_BENCH_MSA=%q, want S,Se", v)
		}
	}
	return s, se
}

// BenchmarkModel times whole-model inference (one pass of Predict: input
// embedding, extra-MSA stack, Evoformer, structure module, heads) in
// float32 on the CPU at N = 64, 128 and 256 residues with S = 512 and
// Se = 1024 sequences (FOLDKIT_BENCH_MSA overrides), for the reduced
// configuration (2 Evoformer and 1 extra-MSA block, the reference case's
// depth) and the full one (48 and 4; skipped with -short). It reports
// GFLOP/s (ModelFlops + HeadsFlops), ms per pass and the peak live heap
// above the model and features (sampled every millisecond).
func BenchmarkModel(b *testing.B) {
	s, se := mdlBenchMSA(b)
	for _, config := range []string{"reduced", "full"} {
		for _, n := range []int{64, 128, 256} {
			b.Run(fmt.Sprintf("%s/N=%d/S=%d/Se=%d", config, n, s, se), func(b *testing.B) {
				if config == "full" && testing.Short() {
					b.Skip("full configuration skipped with -short")
				}
				run, flops, err := NewModelBench(config, n, s, se, "float32")
				if err != nil {
					b.Fatal(err)
				}
				var peak uint64
				b.ResetTimer()
				for b.Loop() {
					p, err := benchkit.PeakHeap(time.Millisecond, run)
					if err != nil {
						b.Fatal(err)
					}
					peak = max(peak, p)
				}
				b.StopTimer()
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
				b.ReportMetric(sec*1e3, "ms/pass")
				b.ReportMetric(float64(peak), "peak-heap-B")
			})
		}
	}
}

// TestModelBench runs the benchmark closure once at a small size in both
// element types, so that `go test` covers NewModelBench and RandomFeatures.
func TestModelBench(t *testing.T) {
	for _, dtype := range []string{"float32", "float64"} {
		run, flops, err := NewModelBench("reduced", 6, 3, 2, dtype)
		if err != nil {
			t.Fatal(err)
		}
		if flops <= 0 {
			t.Errorf("%s: flops %v", dtype, flops)
		}
		if err := run(); err != nil {
			t.Errorf("%s: %v", dtype, err)
		}
	}
	if _, _, err := NewModelBench("huge", 4, 1, 0, "float32"); !errors.Is(err, ErrConfig) {
		t.Errorf("config huge: %v", err)
	}
	if _, _, err := NewModelBench("reduced", 4, 1, 0, "float16"); !errors.Is(err, ErrConfig) {
		t.Errorf("dtype float16: %v", err)
	}
	if _, err := RandomFeatures(0, 1, 0, 1); err == nil {
		t.Error("n = 0 accepted")
	}
}

// mdlPeakRSS returns the process's peak resident set size (VmHWM) in
// bytes, and resets it when reset is set (Linux: clear_refs 5), so that
// successive measurements in one process are separate. ok is false where
// /proc is not available.
func mdlPeakRSS(reset bool) (bytes uint64, ok bool) {
	if reset {
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			return 0, false
		}
	}
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if rest, found := strings.CutPrefix(sc.Text(), "VmHWM:"); found {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// TestModelMemory measures the memory of whole-model inference on the CPU
// in float32 with S = 512 and Se = 1024 sequences (FOLDKIT_BENCH_MSA
// overrides) at the sizes listed in FOLDKIT_MODEL_MEMORY (for example
// "128,256,512,1024"; the test is skipped when it is unset, since N = 1024
// takes minutes). It runs the reduced configuration for one pass: blocks
// update the representations in place one after another, so the peak does
// not depend on the number of blocks or passes beyond the one recycled
// state, which a single pass already holds (the initial zero state). It
// logs the peak live heap (sampled every 5 ms; a lower bound), the peak
// resident set size of the process (VmHWM, which includes the parameters,
// features and garbage not yet collected) and the stage timings, and fails
// if the resident set exceeds 16 GiB.
func TestModelMemory(t *testing.T) {
	sizes := os.Getenv("FOLDKIT_MODEL_MEMORY")
	if sizes == "" {
		t.Skip("set FOLDKIT_MODEL_MEMORY=128,256,512,1024 to measure")
	}
	s, se := mdlBenchMSA(t)
	cfg, err := ModelBenchConfig("reduced")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel[float32](cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			t.Fatalf("FOLDKIT_MODEL_MEMORY entry %q", v)
		}
		f, err := RandomFeatures(n, s, se, 1)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		rss0, okRSS := mdlPeakRSS(true)
		var res *Result[float32]
		peak, err := benchkit.PeakHeap(5*time.Millisecond, func() error {
			var err error
			res, err = m.Predict(context.Background(), f, PredictOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rss, _ := mdlPeakRSS(false)
		tm := res.Timings
		t.Logf("N=%d S=%d Se=%d: peak live heap %.2f GiB, peak RSS %.2f GiB (%.2f GiB before); %.1f s: embedding %.1f s, extra-MSA block %.1f s, Evoformer block %.1f s, structure module %.1f s, heads %.1f s",
			n, s, se, float64(peak)/(1<<30), float64(rss)/(1<<30), float64(rss0)/(1<<30), tm.Total.Seconds(),
			tm.Embedding.Seconds(), tm.ExtraMSA.Seconds()/float64(cfg.ExtraMSABlocks), tm.Evoformer.Seconds()/float64(cfg.EvoformerBlocks),
			tm.StructureModule.Seconds(), tm.Heads.Seconds())
		if okRSS && rss > 16<<30 {
			t.Errorf("N=%d: peak RSS %.2f GiB exceeds 16 GiB", n, float64(rss)/(1<<30))
		}
	}
}
