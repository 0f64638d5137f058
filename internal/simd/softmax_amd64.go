//go:build !purego

package simd

//go:noescape
func expShiftSum(x *float32, n int, shift float32) float32

//go:noescape
func expShiftScale(x *float32, n int, shift, scale float32)

//go:noescape
func maxOf(x *float32, n int, m float32) float32
