// Package num holds the element-type constraint shared by foldkit's
// kernels and modules, and small numerical helpers.
//
// Every compute package in foldkit is generic over float32 (the working type)
// and float64 (the type that shows exactness against the reference cases).
package num

import (
	"errors"
	"fmt"
	"math"
)

// Float is the set of element types foldkit computes in.
type Float interface {
	~float32 | ~float64
}

// ErrShape is returned (wrapped with context) when an argument has the wrong
// length or shape.
var ErrShape = errors.New("shape mismatch")

// ErrNaN is returned (wrapped with context) when an input holds NaN or an
// infinity.
var ErrNaN = errors.New("non-finite value")

// CheckFinite returns an error wrapping ErrNaN that names what and the index of
// the first element of x that is NaN or infinite, or nil.
func CheckFinite[T Float](what string, x []T) error {
	for i, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s[%d] = %v: %w", what, i, f, ErrNaN)
		}
	}
	return nil
}

// CheckLen returns an error wrapping ErrShape if len(x) != want.
// shape describes the expected shape for the message, for example "[N,N,c_z] = [13 13 128]".
func CheckLen[T any](what string, x []T, want int, shape string) error {
	if len(x) != want {
		return fmt.Errorf("%s has %d elements, want %s = %d: %w", what, len(x), shape, want, ErrShape)
	}
	return nil
}

// Eps returns the machine epsilon of T.
func Eps[T Float]() T {
	var z T
	if _, ok := any(z).(float32); ok {
		return T(math.Nextafter32(1, 2) - 1)
	}
	return T(math.Nextafter(1, 2) - 1)
}

// Exp is math.Exp for T (float32 goes through float64, which is exact to
// within float32 rounding).
func Exp[T Float](x T) T { return T(math.Exp(float64(x))) }

// Sqrt is math.Sqrt for T.
func Sqrt[T Float](x T) T { return T(math.Sqrt(float64(x))) }

// Sigmoid returns 1/(1+exp(-x)) without overflow for large |x|.
func Sigmoid[T Float](x T) T {
	if x >= 0 {
		return T(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return T(e / (1 + e))
}

// Softplus returns log(1+exp(x)) without overflow.
func Softplus[T Float](x T) T {
	f := float64(x)
	if f > 30 {
		return x
	}
	return T(math.Log1p(math.Exp(f)))
}
