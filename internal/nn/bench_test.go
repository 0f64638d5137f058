package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

func benchVec[T num.Float](n int, lo, hi float64) []T {
	rng := rand.New(rand.NewPCG(9, uint64(n)))
	x := make([]T, n)
	for i := range x {
		x[i] = T(lo + (hi-lo)*rng.Float64())
	}
	return x
}

func sizeOf[T num.Float]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

// linearSizes are a pair-stack projection (N = 128, c_z = 128) and a
// transition's widening layer (4·c_m).
var linearSizes = []struct{ rows, in, out int }{
	{128 * 128, 128, 128},
	{128 * 128, 128, 512},
}

func BenchmarkLinear(b *testing.B) {
	for _, sz := range linearSizes {
		b.Run(fmt.Sprintf("f32/%dx%dx%d", sz.rows, sz.in, sz.out), func(b *testing.B) { benchLinear[float32](b, sz.rows, sz.in, sz.out) })
		b.Run(fmt.Sprintf("f64/%dx%dx%d", sz.rows, sz.in, sz.out), func(b *testing.B) { benchLinear[float64](b, sz.rows, sz.in, sz.out) })
	}
}

func benchLinear[T num.Float](b *testing.B, rows, in, out int) {
	x, w, bias := benchVec[T](rows*in, -1, 1), benchVec[T](in*out, -0.1, 0.1), benchVec[T](out, -1, 1)
	y := make([]T, rows*out)
	Linear(y, x, rows, in, out, w, bias) // fault the pages in
	b.ResetTimer()
	for b.Loop() {
		Linear(y, x, rows, in, out, w, bias)
	}
	b.ReportMetric(gemm.Flops(rows, out, in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkLinearBackward(b *testing.B) {
	for _, sz := range linearSizes {
		b.Run(fmt.Sprintf("f32/%dx%dx%d", sz.rows, sz.in, sz.out), func(b *testing.B) { benchLinearBackward[float32](b, sz.rows, sz.in, sz.out) })
	}
}

func benchLinearBackward[T num.Float](b *testing.B, rows, in, out int) {
	x, w, dy := benchVec[T](rows*in, -1, 1), benchVec[T](in*out, -0.1, 0.1), benchVec[T](rows*out, -1, 1)
	dx, dw, db := make([]T, rows*in), make([]T, in*out), make([]T, out)
	LinearBackward(dx, dw, db, x, w, dy, rows, in, out)
	b.ResetTimer()
	for b.Loop() {
		LinearBackward(dx, dw, db, x, w, dy, rows, in, out)
	}
	b.ReportMetric(2*gemm.Flops(rows, out, in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// The layer-norm benchmarks use a pair representation of N = 256 (65536
// rows of c_z = 128). GB/s counts the bytes each call must move: x read and
// y written forward; x, dy and dx read and dx written backward.
const lnRows, lnC = 65536, 128

func BenchmarkLayerNorm(b *testing.B) {
	b.Run("f32", benchLayerNorm[float32])
	b.Run("f64", benchLayerNorm[float64])
}

func benchLayerNorm[T num.Float](b *testing.B) {
	x := benchVec[T](lnRows*lnC, -2, 3)
	scale, offset := benchVec[T](lnC, 0.5, 1.5), benchVec[T](lnC, -0.5, 0.5)
	y, mean, rstd := make([]T, lnRows*lnC), make([]T, lnRows), make([]T, lnRows)
	LayerNorm(y, x, lnRows, lnC, scale, offset, LayerNormEps, mean, rstd)
	b.ResetTimer()
	for b.Loop() {
		LayerNorm(y, x, lnRows, lnC, scale, offset, LayerNormEps, mean, rstd)
	}
	reportBytes(b, 2*lnRows*lnC*sizeOf[T]())
}

func BenchmarkLayerNormBackward(b *testing.B) {
	b.Run("f32", benchLayerNormBackward[float32])
	b.Run("f64", benchLayerNormBackward[float64])
}

func benchLayerNormBackward[T num.Float](b *testing.B) {
	x, dy := benchVec[T](lnRows*lnC, -2, 3), benchVec[T](lnRows*lnC, -1, 1)
	scale, offset := benchVec[T](lnC, 0.5, 1.5), benchVec[T](lnC, -0.5, 0.5)
	y, mean, rstd := make([]T, lnRows*lnC), make([]T, lnRows), make([]T, lnRows)
	LayerNorm(y, x, lnRows, lnC, scale, offset, LayerNormEps, mean, rstd)
	dx, ds, do := make([]T, lnRows*lnC), make([]T, lnC), make([]T, lnC)
	LayerNormBackward(dx, ds, do, x, scale, mean, rstd, dy, lnRows, lnC)
	b.ResetTimer()
	for b.Loop() {
		LayerNormBackward(dx, ds, do, x, scale, mean, rstd, dy, lnRows, lnC)
	}
	reportBytes(b, 4*lnRows*lnC*sizeOf[T]())
}

// BenchmarkSoftmaxRows normalises attention logits of one head of triangle
// attention at N = 256 (N² rows of N keys) in float32; GB/s counts one read
// and one write of the logits.
func BenchmarkSoftmaxRows(b *testing.B) {
	const rows, n = 256 * 256, 256
	x0 := benchVec[float32](rows*n, -5, 5)
	x := make([]float32, len(x0))
	copy(x, x0)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		copy(x, x0)
		b.StartTimer()
		SoftmaxRows(x, rows, n)
	}
	reportBytes(b, 2*rows*n*4)
}

func BenchmarkSoftmaxRowsBackward(b *testing.B) {
	const rows, n = 256 * 256, 256
	y := benchVec[float32](rows*n, 0, 1.0/n)
	dy, dx := benchVec[float32](rows*n, -1, 1), make([]float32, rows*n)
	SoftmaxRowsBackward(dx, y, dy, rows, n)
	b.ResetTimer()
	for b.Loop() {
		SoftmaxRowsBackward(dx, y, dy, rows, n)
	}
	reportBytes(b, 4*rows*n*4)
}

// BenchmarkElementwise runs the activations on a pair tensor of N = 256,
// c = 128 in float32; GB/s counts the bytes each call reads and writes.
func BenchmarkElementwise(b *testing.B) {
	const n = 256 * 256 * 128
	x, dy := benchVec[float32](n, -5, 5), benchVec[float32](n, -1, 1)
	y, dx := benchVec[float32](n, 0, 1), benchVec[float32](n, 0, 1)
	for _, bc := range []struct {
		name  string
		bytes int
		f     func()
	}{
		{"Sigmoid", 2, func() { Sigmoid(y, x) }},
		{"SigmoidBackward", 4, func() { SigmoidBackward(dx, y, dy) }},
		{"ReLU", 2, func() { ReLU(y, x) }},
		{"ReLUBackward", 4, func() { ReLUBackward(dx, x, dy) }},
		{"Mul", 3, func() { Mul(y, x, dy) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.f()
			b.ResetTimer()
			for b.Loop() {
				bc.f()
			}
			reportBytes(b, bc.bytes*n*4)
		})
	}
}

func reportBytes(b *testing.B, bytes int) {
	b.SetBytes(int64(bytes))
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/call")
}
