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
// frame and ignore ErrDegenerate.
func FromThreePoints[T num.Float](pNegX, origin, pXY [3]T) (Rigid[T], error) {
	if err := checkPoints3("from three points", pNegX, origin, pXY); err != nil {
		return Rigid[T]{}, err
	}
	v := sub(origin, pNegX)
	u := sub(pXY, origin)
	r, err := gramSchmidt(v, u, T(FromThreePointsEps))
	r.Trans = origin
	if err != nil {
		err = fmt.Errorf("rigid: from three points %v %v %v: %w", pNegX, origin, pXY, err)
	}
	return r, err
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
	r, err := gramSchmidt(sub(c, ca), sub(n, ca), 0)
	r.Trans = ca
	if err != nil {
		err = fmt.Errorf("rigid: alg21 frame from N %v CA %v C %v: %w", n, ca, c, err)
	}
	return r, err
}

func checkPoints3[T num.Float](op string, a, b, c [3]T) error {
	for i, p := range [3][3]T{a, b, c} {
		if err := num.CheckFinite(fmt.Sprintf("rigid: %s point %d", op, i), p[:]); err != nil {
			return err
		}
	}
	return nil
}

// gramSchmidt returns the rotation with columns e0 = v/sqrt(|v|²+eps),
// e1 = w/sqrt(|w|²+eps) with w = u − (e0·u)e0, and e2 = e0 × e1, and an
// error wrapping ErrDegenerate when v or w is too short.
func gramSchmidt[T num.Float](v, u [3]T, eps T) (Rigid[T], error) {
	vv := dot(v, v)
	e0 := scale(1/T(math.Sqrt(float64(vv+eps))), v)
	d := dot(e0, u)
	w := sub(u, scale(d, e0))
	ww := dot(w, w)
	e1 := scale(1/T(math.Sqrt(float64(ww+eps))), w)
	e2 := cross(e0, e1)
	var r Rigid[T]
	for i := 0; i < 3; i++ {
		r.Rot[3*i], r.Rot[3*i+1], r.Rot[3*i+2] = e0[i], e1[i], e2[i]
	}
	if vv <= minSquaredLength {
		return r, fmt.Errorf("x axis has length %.3g: %w", math.Sqrt(float64(vv)), ErrDegenerate)
	}
	if uu := float64(dot(u, u)); ww <= minSquaredLength || float64(ww) <= float64(num.Eps[T]())*uu {
		return r, fmt.Errorf("points are collinear (off-axis length %.3g): %w", math.Sqrt(float64(ww)), ErrDegenerate)
	}
	return r, nil
}

// gramSchmidtVJP returns dL/dv and dL/du for the rotation of gramSchmidt,
// given dR = dL/dR (row-major).
func gramSchmidtVJP[T num.Float](v, u [3]T, eps T, dR [9]T) (dv, du [3]T) {
	// Forward again.
	n0 := T(math.Sqrt(float64(dot(v, v) + eps)))
	e0 := scale(1/n0, v)
	d := dot(e0, u)
	w := sub(u, scale(d, e0))
	n1 := T(math.Sqrt(float64(dot(w, w) + eps)))
	e1 := scale(1/n1, w)

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
