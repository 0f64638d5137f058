package nn

import (
	"math"
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// elementwise runs f on the ranges [lo, hi) that cover [0, n), on two
// goroutines when n is large (see forRows).
func elementwise(n int, f func(lo, hi int)) {
	forRows(n, 1, func(_, lo, hi int) { f(lo, hi) })
}

// Sigmoid sets y_i = 1/(1 + exp(−x_i)), the gate nonlinearity of AF2's
// gated attention and triangle updates (supplement Algorithms 7, 11, 13).
// It is computed in float64 as 1/(1 + exp(−x)), which needs no branch on the
// sign of x: when exp(−x) overflows to +Inf the result is the correct 0,
// never NaN. For float32, exp(−x) is num.Exp32Wide's (1.3e-12 relative,
// about twice as fast as math.Exp, which would be most of the cost) and the
// result is rounded once; for float64 it is math.Exp's. It agrees with
// num.Sigmoid to a few ulp. y may be x itself.
//
// Sigmoid panics with an error wrapping num.ErrShape if len(y) != len(x).
func Sigmoid[T num.Float](y, x []T) {
	mustLen("Sigmoid", "y", len(y), len(x), "len(x)")
	is32 := num.Is32[T]()
	elementwise(len(x), func(lo, hi int) {
		xs, ys := x[lo:hi], y[lo:hi]
		ys = ys[:len(xs)]
		if is32 {
			for i, v := range xs {
				ys[i] = T(1 / (1 + num.Exp32Wide(-float32(v))))
			}
			return
		}
		for i, v := range xs {
			ys[i] = T(1 / (1 + math.Exp(-float64(v))))
		}
	})
}

// SigmoidBackward accumulates the gradient of Sigmoid, dx_i += dy_i·y_i·(1 − y_i),
// from its output y (not its input). A nil dx makes it a no-op.
//
// SigmoidBackward panics with an error wrapping num.ErrShape if the lengths
// differ.
func SigmoidBackward[T num.Float](dx, y, dy []T) {
	const fn = "SigmoidBackward"
	mustLen(fn, "dy", len(dy), len(y), "len(y)")
	mustOptLen(fn, "dx", dx, len(y), "len(y)")
	if dx == nil {
		return
	}
	elementwise(len(y), func(lo, hi int) {
		ys, dys, dxs := y[lo:hi], dy[lo:hi], dx[lo:hi]
		dys, dxs = dys[:len(ys)], dxs[:len(ys)]
		for i, v := range ys {
			dxs[i] += dys[i] * (v * (1 - v))
		}
	})
}

// ReLU sets y_i = max(x_i, 0), the activation of AF2's transitions
// (supplement Algorithms 9, 15) and of the structure module's angle
// resnet (Algorithm 20). NaN propagates. y may be x itself.
//
// ReLU panics with an error wrapping num.ErrShape if len(y) != len(x).
func ReLU[T num.Float](y, x []T) {
	mustLen("ReLU", "y", len(y), len(x), "len(x)")
	elementwise(len(x), func(lo, hi int) {
		xs, ys := x[lo:hi], y[lo:hi]
		ys = ys[:len(xs)]
		for i, v := range xs {
			ys[i] = max(v, 0) // branch-free; max(NaN, 0) is NaN, max(−0, 0) is +0
		}
	})
}

// ReLUBackward accumulates the gradient of ReLU, dx_i += dy_i where the
// forward input x_i > 0 (the subgradient at 0 is taken as 0, as in JAX).
// ReLU's output may be passed as x instead of its input: it is positive at
// exactly the same places. A NaN in x gives a NaN in dx. A nil dx makes it a
// no-op.
//
// ReLUBackward panics with an error wrapping num.ErrShape if the lengths
// differ.
func ReLUBackward[T num.Float](dx, x, dy []T) {
	const fn = "ReLUBackward"
	mustLen(fn, "dy", len(dy), len(x), "len(x)")
	mustOptLen(fn, "dx", dx, len(x), "len(x)")
	if dx == nil {
		return
	}
	// step(v) = min(max(v·big·big, 0), 1) is 1 for every v > 0 (big² lifts
	// the smallest subnormal of T above 1; larger v saturate at +Inf) and
	// 0 for v ≤ 0, without the branch that mispredicts on half of the
	// elements of a typical activation. A NaN x gives a NaN dx.
	big := T(0x1p75) // (2⁷⁵)² · 2⁻¹⁴⁹ = 2
	if unsafe.Sizeof(big) == 8 {
		b64 := 0x1p537 // (2⁵³⁷)² · 2⁻¹⁰⁷⁴ = 1
		big = T(b64)
	}
	elementwise(len(x), func(lo, hi int) {
		xs, dys, dxs := x[lo:hi], dy[lo:hi], dx[lo:hi]
		dys, dxs = dys[:len(xs)], dxs[:len(xs)]
		for i, v := range xs {
			dxs[i] += dys[i] * min(max(v*big*big, 0), 1)
		}
	})
}

// Mul sets y_i = a_i·b_i, the elementwise gating product of AF2's modules.
// y may be a or b itself. Its gradients are products too: da += dy ⊙ b and
// db += dy ⊙ a (MulAdd).
//
// Mul panics with an error wrapping num.ErrShape if the lengths differ.
func Mul[T num.Float](y, a, b []T) {
	const fn = "Mul"
	mustLen(fn, "b", len(b), len(a), "len(a)")
	mustLen(fn, "y", len(y), len(a), "len(a)")
	elementwise(len(a), func(lo, hi int) {
		as, bs, ys := a[lo:hi], b[lo:hi], y[lo:hi]
		bs, ys = bs[:len(as)], ys[:len(as)]
		for i, v := range as {
			ys[i] = v * bs[i]
		}
	})
}

// MulAdd accumulates y_i += a_i·b_i, the backward step of Mul (for
// example da += dy ⊙ b). y may be a or b itself but must not otherwise
// overlap them.
//
// MulAdd panics with an error wrapping num.ErrShape if the lengths differ.
func MulAdd[T num.Float](y, a, b []T) {
	const fn = "MulAdd"
	mustLen(fn, "b", len(b), len(a), "len(a)")
	mustLen(fn, "y", len(y), len(a), "len(a)")
	elementwise(len(a), func(lo, hi int) {
		as, bs, ys := a[lo:hi], b[lo:hi], y[lo:hi]
		bs, ys = bs[:len(as)], ys[:len(as)]
		for i, v := range as {
			ys[i] += v * bs[i]
		}
	})
}
