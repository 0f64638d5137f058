//go:build !amd64 || purego

package simd

func gateMaskAVX2(dst, x, y, m *float32, n int, bx, by float32) {
	panic("simd: no kernels in this build")
}
func gateVecAVX2(dst, x, y, bx, by *float32, n int)       { panic("simd: no kernels in this build") }
func sigmoidVecAVX2(dst, x, b *float32, n int)            { panic("simd: no kernels in this build") }
func sigmoidScalarAVX2(dst, x *float32, n int, b float32) { panic("simd: no kernels in this build") }
func momentsAVX2(s1, s2, x, k *float32, n int)            { panic("simd: no kernels in this build") }
func normAffineAVX2(dst, x, m, r *float32, n int, s, o float32) {
	panic("simd: no kernels in this build")
}
func addAVX2(dst, x *float32, n int) { panic("simd: no kernels in this build") }
func layerNormRowAVX2(dst, x, scale, offset *float32, n int, eps float32) (mean, rstd float32) {
	panic("simd: no kernels in this build")
}
