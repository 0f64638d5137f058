package msaattn

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// The sizes the issue names. Row and column attention at (S, N) = (128,
// 256), (512, 256), (128, 1024); global column attention at the extra-MSA
// size (5120, 384). The large ones (more than 2^25 MSA elements, or
// N = 1024, whose pair representation alone is 0.5 GB) are skipped with
// -short.
var benchSizes = map[string][][2]int{
	CaseRow:          {{128, 256}, {512, 256}, {128, 1024}},
	CaseColumn:       {{128, 256}, {512, 256}, {128, 1024}},
	CaseGlobalColumn: {{5120, 384}},
}

func BenchmarkRowAttention(b *testing.B)          { benchModule(b, CaseRow) }
func BenchmarkColumnAttention(b *testing.B)       { benchModule(b, CaseColumn) }
func BenchmarkGlobalColumnAttention(b *testing.B) { benchModule(b, CaseGlobalColumn) }

// benchModule runs NewBench's closure for module at every size, float32,
// forward and forward+backward, and reports GFLOP/s (matrix products as
// NewBench counts them) and the peak heap above the level before the run
// (peak-bytes, sampled every millisecond from the runtime's count of heap
// object bytes, live or not yet collected).
func benchModule(b *testing.B, module string) {
	for _, sz := range benchSizes[module] {
		s, n := sz[0], sz[1]
		for _, backward := range []bool{false, true} {
			pass := "forward"
			if backward {
				pass = "backward"
			}
			b.Run(fmt.Sprintf("S=%d/N=%d/%s", s, n, pass), func(b *testing.B) {
				if testing.Short() && (n >= 1024 || s*n >= 1<<20) {
					b.Skip("large size skipped with -short")
				}
				run, flops, err := NewBench(module, n, s, "float32", backward)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				peak := newPeakSampler()
				b.ResetTimer()
				for range b.N {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(float64(peak.stop()), "peak-bytes")
			})
		}
	}
}

// peakSampler records the largest heap size seen while it runs, above the
// heap after a collection at its start.
type peakSampler struct {
	base, peak uint64
	done       chan struct{}
	wg         sync.WaitGroup
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapBytes(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func newPeakSampler() *peakSampler {
	runtime.GC()
	p := &peakSampler{done: make(chan struct{})}
	s := []metrics.Sample{{Name: heapObjects}}
	p.base = heapBytes(s)
	p.peak = p.base
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s := []metrics.Sample{{Name: heapObjects}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			p.peak = max(p.peak, heapBytes(s))
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// stop ends the sampling and returns the peak above the base.
func (p *peakSampler) stop() uint64 {
	close(p.done)
	p.wg.Wait()
	return p.peak - p.base
}

// TestNewBench runs every NewBench closure once at a small size and checks
// its flop count against the table of bench.go for row attention, and the
// errors for a bad module, dtype or size.
func TestNewBench(t *testing.T) {
	for _, module := range benchModules {
		for _, dtype := range []string{"float32", "float64"} {
			for _, backward := range []bool{false, true} {
				run, flops, err := NewBench(module, 6, 5, dtype, backward)
				if err != nil {
					t.Fatal(err)
				}
				if err := run(); err != nil {
					t.Errorf("%s %s backward=%v: %v", module, dtype, backward, err)
				}
				if flops <= 0 {
					t.Errorf("%s: flops = %v", module, flops)
				}
			}
		}
	}
	// Row attention at S = 5, N = 6 with AF2's sizes: projections
	// 2·30·256·1024 + 2·30·256·256 + 2·36·128·8, attention 4·5·8·36·32.
	want := 2.0*30*256*1024 + 2*30*256*256 + 2*36*128*8 + 4*5*8*36*32
	if _, flops, _ := NewBench(CaseRow, 6, 5, "float32", false); flops != want {
		t.Errorf("row attention flops %v, want %v", flops, want)
	}
	for _, bad := range []struct {
		module, dtype string
		n, s          int
	}{
		{"msa_transition", "float32", 6, 5},
		{CaseRow, "int8", 6, 5},
		{CaseColumn, "float32", 0, 5},
	} {
		if _, _, err := NewBench(bad.module, bad.n, bad.s, bad.dtype, false); err == nil {
			t.Errorf("NewBench(%q, %d, %d, %q): no error", bad.module, bad.n, bad.s, bad.dtype)
		}
	}
}
