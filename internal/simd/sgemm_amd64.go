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

// Sgemm4x8 is Sgemm4x16 for a 4×8 block of C.
//
//go:noescape
func Sgemm4x8(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha float32, acc int)

// Sgemm1x16 sets one row of 16 elements of C to alpha·a·B (acc = 0) or
// adds it (acc ≠ 0), for a row a of k elements and B [k, 16] with row
// stride ldb; like Sgemm4x16 it does no bounds checks.
//
//go:noescape
func Sgemm1x16(k int, a *float32, b *float32, ldb int, c *float32, alpha float32, acc int)

// Sgemm1x8 is Sgemm1x16 for 8 columns.
//
//go:noescape
func Sgemm1x8(k int, a *float32, b *float32, ldb int, c *float32, alpha float32, acc int)
