package rigid

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/foldkit/foldkit/internal/num"
)

// Quat is a quaternion (w, x, y, z) with w the scalar part. Unit quaternions
// represent rotations; q and −q represent the same rotation.
//
// The arithmetic here is written once for float32 and float64 rather than
// through gonum's num/quat, whose quat.Number is float64 only; the tests use
// num/quat and spatial/r3 as the independent float64 reference.
type Quat[T num.Float] [4]T

// QuatToRot returns the rotation matrix of q (row-major) by AF2's formula,
// without normalising q first:
//
//	[[w²+x²−y²−z², 2(xy−wz),    2(xz+wy)],
//	 [2(xy+wz),    w²−x²+y²−z², 2(yz−wx)],
//	 [2(xz−wy),    2(yz+wx),    w²−x²−y²+z²]]
//
// For a quaternion of norm s the result is s² times a rotation.
func QuatToRot[T num.Float](q Quat[T]) [9]T {
	w, x, y, z := q[0], q[1], q[2], q[3]
	return [9]T{
		w*w + x*x - y*y - z*z, 2 * (x*y - w*z), 2 * (x*z + w*y),
		2 * (x*y + w*z), w*w - x*x + y*y - z*z, 2 * (y*z - w*x),
		2 * (x*z - w*y), 2 * (y*z + w*x), w*w - x*x - y*y + z*z,
	}
}

// QuatToRotVJP returns dL/dq for R = QuatToRot(q), given dR = dL/dR
// (row-major).
func QuatToRotVJP[T num.Float](q Quat[T], dR [9]T) Quat[T] {
	w, x, y, z := q[0], q[1], q[2], q[3]
	g := dR
	// Each R entry is a quadratic form in q; sum dR_ij·∂R_ij/∂q.
	return Quat[T]{
		2 * (w*(g[0]+g[4]+g[8]) + z*(g[3]-g[1]) + y*(g[2]-g[6]) + x*(g[7]-g[5])),
		2 * (x*(g[0]-g[4]-g[8]) + y*(g[1]+g[3]) + z*(g[2]+g[6]) + w*(g[7]-g[5])),
		2 * (y*(-g[0]+g[4]-g[8]) + x*(g[1]+g[3]) + w*(g[2]-g[6]) + z*(g[5]+g[7])),
		2 * (z*(-g[0]-g[4]+g[8]) + w*(g[3]-g[1]) + x*(g[2]+g[6]) + y*(g[5]+g[7])),
	}
}

// FromQuat returns the frame with rotation QuatToRot(q) and translation t.
func FromQuat[T num.Float](q Quat[T], t [3]T) Rigid[T] {
	return Rigid[T]{Rot: QuatToRot(q), Trans: t}
}

// QuatMultiply returns the Hamilton product a⊗b.
func QuatMultiply[T num.Float](a, b Quat[T]) Quat[T] {
	return Quat[T]{
		a[0]*b[0] - a[1]*b[1] - a[2]*b[2] - a[3]*b[3],
		a[0]*b[1] + a[1]*b[0] + a[2]*b[3] - a[3]*b[2],
		a[0]*b[2] - a[1]*b[3] + a[2]*b[0] + a[3]*b[1],
		a[0]*b[3] + a[1]*b[2] - a[2]*b[1] + a[3]*b[0],
	}
}

// QuatMultiplyVJP returns dL/da and dL/db for a⊗b given d = dL/d(a⊗b):
// da = d⊗b̄ and db = ā⊗d (the product is bilinear, and the transposed
// left and right multiplication matrices are those of the conjugates).
func QuatMultiplyVJP[T num.Float](a, b, d Quat[T]) (da, db Quat[T]) {
	return QuatMultiply(d, Conj(b)), QuatMultiply(Conj(a), d)
}

// Conj returns the conjugate (w, −x, −y, −z).
func Conj[T num.Float](q Quat[T]) Quat[T] { return Quat[T]{q[0], -q[1], -q[2], -q[3]} }

// Normalize returns q/|q|. The zero quaternion gives NaNs.
func Normalize[T num.Float](q Quat[T]) Quat[T] {
	n := T(math.Sqrt(float64(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])))
	return Quat[T]{q[0] / n, q[1] / n, q[2] / n, q[3] / n}
}

// NormalizeVJP returns dL/dq for n = q/|q| given dn = dL/dn:
// (dn − n·(n·dn))/|q|.
func NormalizeVJP[T num.Float](q, dn Quat[T]) Quat[T] {
	s := T(math.Sqrt(float64(q[0]*q[0] + q[1]*q[1] + q[2]*q[2] + q[3]*q[3])))
	var n Quat[T]
	var nd T
	for i := range q {
		n[i] = q[i] / s
		nd += n[i] * dn[i]
	}
	var g Quat[T]
	for i := range q {
		g[i] = (dn[i] - n[i]*nd) / s
	}
	return g
}

// RotToQuat returns the unit quaternion of a rotation matrix (row-major) the
// way AF2 computes it: the unit eigenvector of the largest eigenvalue of the
// symmetric 4×4 matrix
//
//	K = 1/3 [[xx+yy+zz, zy−yz,    xz−zx,    yx−xy   ],
//	         [zy−yz,    xx−yy−zz, xy+yx,    xz+zx   ],
//	         [xz−zx,    xy+yx,    yy−xx−zz, yz+zy   ],
//	         [yx−xy,    xz+zx,    yz+zy,    zz−xx−yy]]
//
// (xy = R[0][1] and so on), with the sign chosen so that w ≥ 0 (when w is
// 0, the first non-zero of x, y, z is made positive). For a rotation K has
// eigenvalues 1 and −1/3 (three times), so the eigenvector is well
// conditioned for every rotation, 180° included, and for a matrix that is
// orthonormal only to rounding it is the closest rotation's quaternion in
// the least-squares sense. The eigenproblem is solved in float64 with gonum's
// mat.EigenSym for both T.
func RotToQuat[T num.Float](rot [9]T) Quat[T] {
	var r [9]float64
	for i, v := range rot {
		r[i] = float64(v)
	}
	xx, xy, xz := r[0], r[1], r[2]
	yx, yy, yz := r[3], r[4], r[5]
	zx, zy, zz := r[6], r[7], r[8]
	k := mat.NewSymDense(4, []float64{
		xx + yy + zz, zy - yz, xz - zx, yx - xy,
		zy - yz, xx - yy - zz, xy + yx, xz + zx,
		xz - zx, xy + yx, yy - xx - zz, yz + zy,
		yx - xy, xz + zx, yz + zy, zz - xx - yy,
	})
	k.ScaleSym(1.0/3, k)
	var eig mat.EigenSym
	if !eig.Factorize(k, true) {
		return Quat[T]{T(math.NaN()), T(math.NaN()), T(math.NaN()), T(math.NaN())}
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	best := 0
	for i, v := range vals {
		if v > vals[best] {
			best = i
		}
	}
	q := [4]float64{vecs.At(0, best), vecs.At(1, best), vecs.At(2, best), vecs.At(3, best)}
	neg := q[0] < 0
	if q[0] == 0 {
		for _, v := range q[1:] {
			if v != 0 {
				neg = v < 0
				break
			}
		}
	}
	if neg {
		for i := range q {
			q[i] = -q[i]
		}
	}
	return Quat[T]{T(q[0]), T(q[1]), T(q[2]), T(q[3])}
}
