package attn

import (
	"math"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/simd"
)

// expShiftSum replaces every x in row by exp(x − shift) and returns their
// sum. In float32 the vector kernels of package simd do all but the last
// len(row) mod 8 elements (Cephes' expf, under 2 ulp, summed in eight
// lanes) and num.Exp32 (under 1 ulp) the rest; float64 uses math.Exp.
func expShiftSum[T num.Float](row []T, shift T) T {
	var sum T
	if num.Is32[T]() {
		j0 := 0
		if simd.Available {
			sum = T(simd.ExpShiftSum(num.As32(row), float32(shift)))
			j0 = len(row) &^ 7
		}
		for j, x := range row[j0:] {
			e := T(num.Exp32(float32(x - shift)))
			row[j0+j] = e
			sum += e
		}
		return sum
	}
	for j, x := range row {
		e := T(math.Exp(float64(x - shift)))
		row[j] = e
		sum += e
	}
	return sum
}

// expShiftScale replaces every x in row by exp(x − shift)·scale, with
// expShiftSum's exponentials.
func expShiftScale[T num.Float](row []T, shift, scale T) {
	if num.Is32[T]() {
		j0 := 0
		if simd.Available {
			simd.ExpShiftScale(num.As32(row), float32(shift), float32(scale))
			j0 = len(row) &^ 7
		}
		for j, x := range row[j0:] {
			row[j0+j] = T(num.Exp32(float32(x-shift))) * scale
		}
		return
	}
	for j, x := range row {
		row[j] = T(math.Exp(float64(x-shift))) * scale
	}
}
