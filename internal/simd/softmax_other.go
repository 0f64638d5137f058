//go:build !amd64 || purego

package simd

func expShiftSum(x *float32, n int, shift float32) float32 {
	panic("simd: no kernels in this build")
}

func expShiftScale(x *float32, n int, shift, scale float32) {
	panic("simd: no kernels in this build")
}

func maxOf(x *float32, n int, m float32) float32 {
	panic("simd: no kernels in this build")
}
