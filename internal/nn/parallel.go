package nn

import (
	"fmt"
	"sync"

	"github.com/foldkit/foldkit/internal/num"
)

// parallelMin is the number of elements above which a row or elementwise
// kernel splits its rows across maxWorkers goroutines. Below it the cost of
// starting a goroutine (about a microsecond) is not repaid.
const parallelMin = 1 << 17

// maxWorkers is the number of goroutines a kernel uses at most: foldkit's
// CPU machines have two cores, and callers that want more parallelism run
// independent calls concurrently.
const maxWorkers = 2

// forRows calls f(w, lo, hi) on disjoint row ranges [lo, hi) that cover
// [0, rows), with w the worker index in [0, maxWorkers). It runs them on
// maxWorkers goroutines (the caller's among them) when rows·rowLen is at
// least parallelMin, and as one call f(0, 0, rows) otherwise. It returns when
// every call has returned.
func forRows(rows, rowLen int, f func(w, lo, hi int)) {
	if rows < 2 || rows*rowLen < parallelMin {
		f(0, 0, rows)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < maxWorkers; w++ {
		lo, hi := w*rows/maxWorkers, (w+1)*rows/maxWorkers
		wg.Go(func() { f(w, lo, hi) })
	}
	f(0, 0, rows/maxWorkers)
	wg.Wait()
}

// workers returns the number of distinct w values forRows passes to f for
// the same rows and rowLen.
func workers(rows, rowLen int) int {
	if rows < 2 || rows*rowLen < parallelMin {
		return 1
	}
	return maxWorkers
}

// mustLen panics with an error wrapping num.ErrShape when got != want.
// fn names the kernel, what the argument, and shape its expected shape.
func mustLen(fn, what string, got, want int, shape string) {
	if got != want {
		panic(fmt.Errorf("nn: %s: %s has %d elements, want %s = %d: %w", fn, what, got, shape, want, num.ErrShape))
	}
}

// mustOptLen is mustLen for an optional argument: a nil slice is accepted.
func mustOptLen[T any](fn, what string, x []T, want int, shape string) {
	if x != nil {
		mustLen(fn, what, len(x), want, shape)
	}
}

// mustDims panics with an error wrapping num.ErrShape when a dimension is
// negative.
func mustDims(fn string, dims ...int) {
	for _, d := range dims {
		if d < 0 {
			panic(fmt.Errorf("nn: %s: negative dimension %v: %w", fn, dims, num.ErrShape))
		}
	}
}

// sum returns the sum of x, accumulated in four interleaved partial sums:
// they break the add-latency chain (about 4× the throughput of one
// accumulator) and lower the round-off growth by the same factor.
func sum[T num.Float](x []T) T {
	var s0, s1, s2, s3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// sumSqDev returns Σ (x_i − m)², accumulated as sum does.
func sumSqDev[T num.Float](x []T, m T) T {
	var s0, s1, s2, s3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := v[0]-m, v[1]-m, v[2]-m, v[3]-m
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := x[i] - m
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// dot returns Σ x_i·y_i, accumulated as sum does; len(y) ≥ len(x).
func dot[T num.Float](x, y []T) T {
	y = y[:len(x)]
	var s0, s1, s2, s3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		u := y[i : i+4 : i+4]
		s0 += v[0] * u[0]
		s1 += v[1] * u[1]
		s2 += v[2] * u[2]
		s3 += v[3] * u[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// blockRows is the number of rows whose per-channel contributions are summed
// into a block partial before the block is added to the running total, so a
// column sum over R rows accumulates round-off like blockRows + R/blockRows
// additions instead of R.
const blockRows = 256
