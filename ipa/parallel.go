package ipa

import (
	"sync"

	"github.com/foldkit/foldkit/internal/gemm"
)

// minParallelWork is the number of multiply-adds below which a loop over
// residues runs on the calling goroutine only: starting a goroutine costs
// about a microsecond, the time of some 1e4 multiply-adds.
const minParallelWork = 1 << 16

// workers returns how many goroutines forRows uses for n rows of work
// multiply-adds each: gemm.Workers() of them, at most one per row, and one
// when the loop is small. gemm.Workers is GOMAXPROCS with gonum's BLAS and 1
// with OpenBLAS, which threads every product itself and slows down by an
// order of magnitude when several goroutines call it at once (measured: IPA
// forward at N = 512 went from 0.23 s to 2.6 s).
func workers(n, work int) int {
	if n*work < minParallelWork {
		return 1
	}
	return max(1, min(n, gemm.Workers()))
}

// forRows calls f(w, lo, hi) for nw disjoint ranges [lo, hi) covering
// [0, n), worker w on its own goroutine (worker 0 on the caller's), and
// returns when all have returned. Results that depend on how the rows are
// split (sums over rows) are deterministic for a given nw.
func forRows(n, nw int, f func(w, lo, hi int)) {
	if nw <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < nw; w++ {
		wg.Go(func() { f(w, w*n/nw, (w+1)*n/nw) })
	}
	f(0, 0, n/nw)
	wg.Wait()
}
