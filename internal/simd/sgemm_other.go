//go:build !amd64 || purego

package simd

// Available is false: this build has no micro-kernels.
const Available = false

// Sgemm4x16 is not available in this build; it panics.
func Sgemm4x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha float32, acc int) {
	panic("simd: no micro-kernel in this build")
}

// Sgemm4x8 is not available in this build; it panics.
func Sgemm4x8(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha float32, acc int) {
	panic("simd: no micro-kernel in this build")
}

// Sgemm1x16 is not available in this build; it panics.
func Sgemm1x16(k int, a *float32, b *float32, ldb int, c *float32, alpha float32, acc int) {
	panic("simd: no micro-kernel in this build")
}

// Sgemm1x8 is not available in this build; it panics.
func Sgemm1x8(k int, a *float32, b *float32, ldb int, c *float32, alpha float32, acc int) {
	panic("simd: no micro-kernel in this build")
}
