// Package simd holds foldkit's few assembly kernels for amd64 with AVX2
// and FMA: the 4×16 float32 matrix micro-kernel behind gemm.Tile, the
// vectorised exponentials, maxima and sums of the streamed softmax, and the
// fused sigmoid gates, layer-norm rows and sums of the triangle modules.
// The kernels share one exponential (Cephes' expf) and their constants
// through vec_amd64.h. Each
// kernel has a plain Go twin in the callers, used where Available is false
// (other processors, or the purego build tag), and tests that compare the
// two.
//
// It is a package of its own because Go assembly cannot sit in a package
// that uses cgo, as package gemm does in its openblas build.
package simd
