//go:build !purego

package simd

import "golang.org/x/sys/cpu"

// Sgemm4x16 sets C[0:4, 0:16] = alpha·A[0:4, 0:k]·B[0:k, 0:16] (acc = 0)
// or adds alpha·A·B to it (acc ≠ 0), for row-major A, B and C with row
// strides lda, ldb and ldc in elements, with AVX2 and FMA (sgemm_amd64.s).
// It does no bounds checks: the caller guarantees k > 0 and that the
// pointers address the whole blocks. Call it only when Available.
//
//go:noescape
func Sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha float32, acc int)

// Available reports whether the processor and the operating system support
// the kernels (AVX2 and FMA; x/sys/cpu checks that the OS saves the AVX
// state). It is fixed at start-up.
var Available = cpu.X86.HasAVX2 && cpu.X86.HasFMA
