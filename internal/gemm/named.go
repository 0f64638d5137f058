package gemm

import (
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// gemmNamed handles element types whose underlying type is float32 or float64
// but whose name differs; it reinterprets the slices without copying.
func gemmNamed[T num.Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	var z T
	if unsafe.Sizeof(z) == 4 {
		f := func(x []T) []float32 {
			if len(x) == 0 {
				return nil
			}
			return unsafe.Slice((*float32)(unsafe.Pointer(&x[0])), len(x))
		}
		impl32.Sgemm(trans(tA), trans(tB), m, n, k, float32(alpha), f(a), lda, f(b), ldb, float32(beta), f(c), ldc)
		return
	}
	f := func(x []T) []float64 {
		if len(x) == 0 {
			return nil
		}
		return unsafe.Slice((*float64)(unsafe.Pointer(&x[0])), len(x))
	}
	impl64.Dgemm(trans(tA), trans(tB), m, n, k, float64(alpha), f(a), lda, f(b), ldb, float64(beta), f(c), ldc)
}
