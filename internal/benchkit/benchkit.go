// Package benchkit measures one computation the way every foldkit benchmark
// reports it: median wall time over repeats, GFLOP/s from a stated FLOP
// count, bytes allocated and the peak live heap above the starting level.
//
// `foldkit bench` prints a Result as one JSON line, so that a run of foldkit
// and a run of another implementation (PyTorch/OpenFold) on the same machine
// can be compared line by line.
package benchkit

import (
	"runtime"
	"runtime/metrics"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one benchmark measurement.
type Result struct {
	Module    string  `json:"module"`
	N         int     `json:"n"`
	S         int     `json:"s,omitempty"`
	DType     string  `json:"dtype"`
	Backend   string  `json:"backend"`
	BLAS      string  `json:"blas"`
	Backward  bool    `json:"backward"`
	Repeats   int     `json:"repeats"`
	MedianMS  float64 `json:"median_ms"`
	MinMS     float64 `json:"min_ms"`
	FLOPs     float64 `json:"flops"`
	GFLOPS    float64 `json:"gflops"`
	AllocB    uint64  `json:"alloc_bytes_per_run"`
	PeakB     uint64  `json:"peak_heap_bytes"`
	GoMaxProc int     `json:"gomaxprocs"`
}

const heapMetric = "/memory/classes/heap/objects:bytes"

// PeakHeap samples the live heap every interval while f runs and returns f's
// error and the peak live heap above the level at the start (after a GC).
// Sampling can miss a short-lived spike between samples; allocation totals
// (TotalAlloc) bound it from above.
func PeakHeap(interval time.Duration, f func() error) (uint64, error) {
	runtime.GC()
	sample := []metrics.Sample{{Name: heapMetric}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	peak.Store(base)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	err := f()
	if v := read(); v > peak.Load() {
		peak.Store(v)
	}
	close(stop)
	wg.Wait()
	p := peak.Load()
	if p < base {
		return 0, err
	}
	return p - base, err
}

// Run calls f once to warm up, then repeats times, and fills the timing,
// throughput and memory fields of r. flops is the FLOP count of one call.
func Run(r Result, repeats int, flops float64, f func() error) (Result, error) {
	if repeats < 1 {
		repeats = 1
	}
	if err := f(); err != nil {
		return r, err
	}
	times := make([]float64, 0, repeats)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var peak uint64
	for i := 0; i < repeats; i++ {
		var d time.Duration
		p, err := PeakHeap(time.Millisecond, func() error {
			t0 := time.Now()
			err := f()
			d = time.Since(t0)
			return err
		})
		if err != nil {
			return r, err
		}
		peak = max(peak, p)
		times = append(times, float64(d.Nanoseconds())/1e6)
	}
	runtime.ReadMemStats(&ms1)
	sort.Float64s(times)
	r.Repeats = repeats
	r.MedianMS = times[len(times)/2]
	r.MinMS = times[0]
	r.FLOPs = flops
	if r.MedianMS > 0 {
		r.GFLOPS = flops / (r.MedianMS * 1e6)
	}
	r.AllocB = (ms1.TotalAlloc - ms0.TotalAlloc) / uint64(repeats)
	r.PeakB = peak
	r.GoMaxProc = runtime.GOMAXPROCS(0)
	return r, nil
}
