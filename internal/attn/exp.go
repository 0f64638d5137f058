package attn

import (
	"math"
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// is32 reports whether T is a 4-byte float.
func is32[T num.Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

// expShiftSum replaces every x in row by exp(x − shift) and returns their sum.
func expShiftSum[T num.Float](row []T, shift T) T {
	var sum T
	if is32[T]() {
		for j, x := range row {
			e := T(num.Exp32(float32(x - shift)))
			row[j] = e
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

// expShiftScale replaces every x in row by exp(x − shift)·scale.
func expShiftScale[T num.Float](row []T, shift, scale T) {
	if is32[T]() {
		for j, x := range row {
			row[j] = T(num.Exp32(float32(x-shift))) * scale
		}
		return
	}
	for j, x := range row {
		row[j] = T(math.Exp(float64(x-shift))) * scale
	}
}
