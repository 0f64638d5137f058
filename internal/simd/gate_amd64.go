//go:build !purego

package simd

//go:noescape
func gateMaskAVX2(dst, x, y, m *float32, n int, bx, by float32)

//go:noescape
func gateVecAVX2(dst, x, y, bx, by *float32, n int)

//go:noescape
func sigmoidVecAVX2(dst, x, b *float32, n int)

//go:noescape
func sigmoidScalarAVX2(dst, x *float32, n int, b float32)

//go:noescape
func momentsAVX2(s1, s2, x, k *float32, n int)

//go:noescape
func normAffineAVX2(dst, x, m, r *float32, n int, s, o float32)

//go:noescape
func addAVX2(dst, x *float32, n int)

//go:noescape
func layerNormRowAVX2(dst, x, scale, offset *float32, n int, eps float32) (mean, rstd float32)
