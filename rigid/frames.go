package rigid

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/num"
)

// FromThreePointsEps is the regulariser AF2's code adds under the square
// roots when it builds frames from three points (Rigid.from_3_points,
// r3.rigids_from_3_points): 1e-8 in squared coordinate units.
const FromThreePointsEps = 1e-8

// minSquaredLength is the squared length (in squared coordinate units) at or
// below which an axis counts as degenerate: 100 times FromThreePointsEps,
// where the regulariser changes the axis length by 0.5% and more.
const minSquaredLength = 100 * FromThreePointsEps

// FromThreePoints returns the frame AF2's code builds from three points
// (Alg. 21 in the form of Rigid.from_3_points): origin at origin, x axis
// along origin − pNegX, and pXY in the xy plane on the positive-y side:
//
//	e0 = v/sqrt(|v|² + 1e-8),     v = origin − pNegX
//	e1 = w/sqrt(|w|² + 1e-8),     w = u − (e0·u)·e0, u = pXY − origin
//	e2 = e0 × e1,  R = [e0 e1 e2] (columns),  t = origin.
//
// AF2 builds backbone frames with (C, CA, N) and then turns them by 180°
// about y; FromThreePointsAlg21 gives that frame directly.
//
// The returned frame is always AF2's value for finite input; err wraps
// num.ErrNaN for non-finite input, and wraps ErrDegenerate when the points
// are coincident or collinear (|v|² or |w|² at most 1e-6, or |w| at most
// sqrt(ε_T)·|u|), where AF2's regularised frame is not a rotation. Callers
// that want AF2's behaviour on missing atoms (zero coordinates) may use the
// frame and ignore ErrDegenerate: that error is a constant, which costs
// nothing to return.
func FromThreePoints[T num.Float](pNegX, origin, pXY [3]T) (Rigid[T], error) {
	if err := checkPoints3("from three points", pNegX, origin, pXY); err != nil {
		return Rigid[T]{}, err
	}
	// v = origin − pNegX, u = pXY − origin.
	r, bad := gramSchmidt(origin[0]-pNegX[0], origin[1]-pNegX[1], origin[2]-pNegX[2],
		pXY[0]-origin[0], pXY[1]-origin[1], pXY[2]-origin[2], T(FromThreePointsEps), origin)
	switch bad {
	case shortAxis:
		return r, errThreePointsAxis
	case collinear:
		return r, errThreePointsCollinear
	}
	return r, nil
}

// FromThreePointsAlg21 returns the backbone frame of Alg. 21 from the N, CA
// and C positions: origin at CA, e1 = (C − CA)/|C − CA|, e2 the normalised
// component of N − CA orthogonal to e1, e3 = e1 × e2, R = (e1, e2, e3) as
// columns, t = CA (no regulariser). So the x axis runs along CA→C and N lies
// in the xy plane with positive y.
//
// err wraps num.ErrNaN for non-finite input and ErrDegenerate for coincident
// or collinear atoms (the same test as FromThreePoints); the frame then may
// hold NaNs.
func FromThreePointsAlg21[T num.Float](n, ca, c [3]T) (Rigid[T], error) {
	if err := checkPoints3("alg21 frame", n, ca, c); err != nil {
		return Rigid[T]{}, err
	}
	// v = C − CA, u = N − CA.
	r, bad := gramSchmidt(c[0]-ca[0], c[1]-ca[1], c[2]-ca[2], n[0]-ca[0], n[1]-ca[1], n[2]-ca[2], 0, ca)
	switch bad {
	case shortAxis:
		return r, errAlg21Axis
	case collinear:
		return r, errAlg21Collinear
	}
	return r, nil
}

// checkPoints3 returns an error wrapping num.ErrNaN naming the first
// non-finite point; the message is built only then.
func checkPoints3[T num.Float](op string, a, b, c [3]T) error {
	// x − x is 0 for finite x and NaN for ±Inf and NaN, so the sum is NaN
	// exactly when a coordinate is not finite.
	z := (a[0] - a[0]) + (a[1] - a[1]) + (a[2] - a[2]) +
		(b[0] - b[0]) + (b[1] - b[1]) + (b[2] - b[2]) +
		(c[0] - c[0]) + (c[1] - c[1]) + (c[2] - c[2])
	if z == 0 {
		return nil
	}
	for i, p := range [3][3]T{a, b, c} {
		if err := num.CheckFinite(fmt.Sprintf("rigid: %s point %d", op, i), p[:]); err != nil {
			return err
		}
	}
	return nil
}

// Why gramSchmidt finds points degenerate (0: they are not).
const (
	shortAxis = 1 + iota // the x axis v is too short
	collinear            // the off-axis part w of u is too short
)

// gramSchmidt returns the frame with translation t and the rotation with
// columns e0 = v/sqrt(|v|²+eps), e1 = w/sqrt(|w|²+eps) with
// w = u − (e0·u)e0, and e2 = e0 × e1, and why v or w is too short
// (shortAxis or collinear), or 0.
//
// The normalisations divide, as AF2's code does (rather than multiply by a
// reciprocal, which rounds twice), so AF2's frames are reproduced to the
// last bit in float64. v and u come as scalars and the arithmetic is spelled
// out on scalars, which the compiler keeps in registers, unlike [3]T arrays:
// that makes a frame about half as costly as with the vector helpers.
func gramSchmidt[T num.Float](vx, vy, vz, ux, uy, uz, eps T, t [3]T) (Rigid[T], int) {
	vv := vx*vx + vy*vy + vz*vz
	n0 := T(math.Sqrt(float64(vv + eps)))
	e0x, e0y, e0z := vx/n0, vy/n0, vz/n0
	d := e0x*ux + e0y*uy + e0z*uz
	wx, wy, wz := ux-d*e0x, uy-d*e0y, uz-d*e0z
	ww := wx*wx + wy*wy + wz*wz
	n1 := T(math.Sqrt(float64(ww + eps)))
	e1x, e1y, e1z := wx/n1, wy/n1, wz/n1
	e2x, e2y, e2z := e0y*e1z-e0z*e1y, e0z*e1x-e0x*e1z, e0x*e1y-e0y*e1x
	r := Rigid[T]{Rot: [9]T{e0x, e1x, e2x, e0y, e1y, e2y, e0z, e1z, e2z}, Trans: t}
	switch {
	case vv <= minSquaredLength:
		return r, shortAxis
	case ww <= minSquaredLength || float64(ww) <= float64(num.Eps[T]())*float64(ux*ux+uy*uy+uz*uz):
		return r, collinear
	}
	return r, 0
}

// degenerateError is the error of points that do not define a frame. The
// frame constructors return one constant per constructor and reason, which
// costs nothing: ground-truth geometry builds frames from missing atoms (all
// zero) for about a third of a real structure's rigid groups and discards
// the error, so an error that copied the points or formatted a message would
// cost more than the frame. The caller has the points.
type degenerateError string

func (e degenerateError) Error() string { return string(e) }

// Unwrap returns ErrDegenerate, so that errors.Is(err, ErrDegenerate) holds.
func (e degenerateError) Unwrap() error { return ErrDegenerate }

// The errors of FromThreePoints and FromThreePointsAlg21; the thresholds are
// those of minSquaredLength and gramSchmidt. Each message ends with
// ErrDegenerate's, as if wrapped with %w.
const (
	errThreePointsAxis      degenerateError = "rigid: from three points: x axis origin − pNegX is at most 1e-3 long: degenerate points"
	errThreePointsCollinear degenerateError = "rigid: from three points: points are collinear (the part of pXY − origin off the x axis is at most 1e-3 or sqrt(ε)·|pXY − origin| long): degenerate points"
	errAlg21Axis            degenerateError = "rigid: alg21 frame: x axis C − CA is at most 1e-3 long: degenerate points"
	errAlg21Collinear       degenerateError = "rigid: alg21 frame: N, CA and C are collinear (the part of N − CA off the x axis is at most 1e-3 or sqrt(ε)·|N − CA| long): degenerate points"
)

// quo returns a/s.
func quo[T num.Float](a [3]T, s T) [3]T { return [3]T{a[0] / s, a[1] / s, a[2] / s} }

// gramSchmidtVJP returns dL/dv and dL/du for the rotation of gramSchmidt,
// given dR = dL/dR (row-major).
func gramSchmidtVJP[T num.Float](v, u [3]T, eps T, dR [9]T) (dv, du [3]T) {
	// Forward again.
	n0 := T(math.Sqrt(float64(dot(v, v) + eps)))
	e0 := quo(v, n0)
	d := dot(e0, u)
	w := sub(u, scale(d, e0))
	n1 := T(math.Sqrt(float64(dot(w, w) + eps)))
	e1 := quo(w, n1)

	g0 := [3]T{dR[0], dR[3], dR[6]}
	g1 := [3]T{dR[1], dR[4], dR[7]}
	g2 := [3]T{dR[2], dR[5], dR[8]}
	// e2 = e0 × e1.
	g0 = add(g0, cross(e1, g2))
	g1 = add(g1, cross(g2, e0))
	// e1 = w/n1, n1 = sqrt(|w|² + eps).
	gw := sub(scale(1/n1, g1), scale(dot(w, g1)/(n1*n1*n1), w))
	// w = u − d·e0, d = e0·u.
	du = gw
	gd := -dot(e0, gw)
	g0 = sub(g0, scale(d, gw))
	g0 = add(g0, scale(gd, u))
	du = add(du, scale(gd, e0))
	// e0 = v/n0.
	dv = sub(scale(1/n0, g0), scale(dot(v, g0)/(n0*n0*n0), v))
	return dv, du
}

// FromThreePointsVJP returns the gradients of FromThreePoints with respect
// to its three points, given d = dL/d(frame).
func FromThreePointsVJP[T num.Float](pNegX, origin, pXY [3]T, d Rigid[T]) (dNegX, dOrigin, dXY [3]T) {
	dv, du := gramSchmidtVJP(sub(origin, pNegX), sub(pXY, origin), T(FromThreePointsEps), d.Rot)
	// v = origin − pNegX, u = pXY − origin, t = origin.
	return scale(-1, dv), add(sub(dv, du), d.Trans), du
}

// FromThreePointsAlg21VJP returns the gradients of FromThreePointsAlg21 with
// respect to N, CA and C, given d = dL/d(frame).
func FromThreePointsAlg21VJP[T num.Float](n, ca, c [3]T, d Rigid[T]) (dn, dca, dc [3]T) {
	dv, du := gramSchmidtVJP(sub(c, ca), sub(n, ca), 0, d.Rot)
	// v = C − CA, u = N − CA, t = CA.
	return du, sub(d.Trans, add(dv, du)), dv
}
