package cuda

import "regexp"

// minBlock is the smallest block the allocator hands out, in bytes; it is
// also the alignment of every block (cuMemAlloc aligns to at least 256).
const minBlock = 512

// sizeClass returns the number of bytes the caching allocator reserves for a
// request of n bytes: n rounded up to the next of four classes per power of
// two (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k), and at least minBlock. The waste is
// therefore below 25% of the request, and a block freed for one request
// serves any later request of the same class. sizeClass(0) is 0.
func sizeClass(n int64) int64 {
	if n <= 0 {
		return 0
	}
	if n <= minBlock {
		return minBlock
	}
	// p is the largest power of two ≤ n; the classes in [p, 2p) are p/4 apart.
	p := int64(1)
	for p <= n/2 {
		p *= 2
	}
	step := p / 4
	return (n + step - 1) / step * step
}

// cublasNames are the cuBLAS libraries Open tries, newest first.
var cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}

// dimOK reports whether every value fits cuBLAS's 32-bit int arguments.
func dimOK(v ...int) bool {
	for _, x := range v {
		if x < 0 || x > 1<<31-1 {
			return false
		}
	}
	return true
}

// entryRE finds the kernels (entry points) a PTX module defines.
var entryRE = regexp.MustCompile(`(?m)^\s*\.(?:visible\s+)?\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// ptxEntries returns the names of the kernels defined in PTX source src.
func ptxEntries(src []byte) []string {
	var names []string
	for _, m := range entryRE.FindAllSubmatch(src, -1) {
		names = append(names, string(m[1]))
	}
	return names
}
