package triangle

import (
	"runtime"
	"sync"

	"github.com/foldkit/foldkit/internal/num"
)

// parallelMin is the number of elements a loop must touch before it is split
// across goroutines; below it the start-up cost (about a microsecond per
// goroutine) is not repaid.
const parallelMin = 1 << 15

// workers returns the number of goroutines parallelFor uses for n items
// touching work elements in all.
func workers(n, work int) int {
	w := runtime.GOMAXPROCS(0)
	if n < 2 || w < 2 || work < parallelMin {
		return 1
	}
	return min(w, n)
}

// parallelFor calls f(w, lo, hi) on disjoint ranges [lo, hi) covering
// [0, n), with w in [0, workers(n, work)), and returns when all calls have
// returned. The calling goroutine runs the first range.
func parallelFor(n, work int, f func(w, lo, hi int)) {
	nw := workers(n, work)
	if nw == 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 1; k < nw; k++ {
		lo, hi := k*n/nw, (k+1)*n/nw
		wg.Go(func() { f(k, lo, hi) })
	}
	f(0, 0, n/nw)
	wg.Wait()
}

// sum returns Σ x, in four interleaved partial sums (shorter add-latency
// chains and smaller round-off growth than one accumulator).
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

// colSum adds the column sums of the [rows, n] matrix a to dst [n]. The rows
// are summed into a partial first, so that each column of a large gradient
// accumulates round-off over one block instead of the whole tensor.
func colSum[T num.Float](dst, a []T, rows, n int) {
	part := make([]T, n)
	for r := 0; r < rows; r++ {
		row := a[r*n : (r+1)*n]
		for j, v := range row {
			part[j] += v
		}
	}
	for j, v := range part {
		dst[j] += v
	}
}

// grow returns x resized to n elements, reusing its storage when it can.
func grow[T num.Float](x []T, n int) []T {
	if cap(x) >= n {
		return x[:n]
	}
	return make([]T, n)
}

// sizeOf returns the size of T in bytes.
func sizeOf[T num.Float]() int {
	if num.Is32[T]() {
		return 4
	}
	return 8
}
