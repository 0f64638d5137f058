package rigid

import "github.com/foldkit/foldkit/internal/num"

// ComposeQUpdate applies a backbone update (Alg. 23) to the frame with
// quaternion q and translation t. The update u = (b, c, d, tx, ty, tz) is a
// non-unit quaternion (1, b, c, d) and a translation in the current frame:
//
//	q_new = normalise(q + q⊗(0, b, c, d)) = normalise(q⊗(1, b, c, d))
//	t_new = t + R(q)·(tx, ty, tz)
//
// where R(q) = QuatToRot(q) is the rotation of the old quaternion, as in
// AF2's QuatAffine.pre_compose and OpenFold's Rigid.compose_q_update_vec.
// q is used as given (AF2 keeps it normalised).
func ComposeQUpdate[T num.Float](q Quat[T], t [3]T, u [6]T) (Quat[T], [3]T) {
	p := QuatMultiply(q, Quat[T]{0, u[0], u[1], u[2]})
	qn := Normalize(Quat[T]{q[0] + p[0], q[1] + p[1], q[2] + p[2], q[3] + p[3]})
	return qn, add(t, matVec(QuatToRot(q), [3]T{u[3], u[4], u[5]}))
}

// ComposeQUpdateVJP returns the gradients of ComposeQUpdate with respect to
// q, t and u, given the gradients of its outputs: dq for the new quaternion,
// and d for the new frame FromQuat(q_new, t_new) (d.Rot is dL/dR(q_new),
// d.Trans is dL/dt_new). Either part of the output gradient may be zero
// when a loss does not use it. The normalisation of q_new is differentiated
// through.
func ComposeQUpdateVJP[T num.Float](q Quat[T], t [3]T, u [6]T, dq Quat[T], d Rigid[T]) (gq Quat[T], gt [3]T, gu [6]T) {
	v := Quat[T]{1, u[0], u[1], u[2]}
	p := QuatMultiply(q, Quat[T]{0, u[0], u[1], u[2]})
	qu := Quat[T]{q[0] + p[0], q[1] + p[1], q[2] + p[2], q[3] + p[3]}
	qn := Normalize(qu)

	// Gradient at q_new from both outputs that depend on it.
	gn := QuatToRotVJP(qn, d.Rot)
	for i := range gn {
		gn[i] += dq[i]
	}
	gqu := NormalizeVJP(qu, gn)
	// q + q⊗(0,v) = q⊗(1,v): bilinear in q and (1, b, c, d).
	gq, gv := QuatMultiplyVJP(q, v, gqu)
	gu[0], gu[1], gu[2] = gv[1], gv[2], gv[3]

	// t_new = t + R(q)·tu.
	tu := [3]T{u[3], u[4], u[5]}
	gt = d.Trans
	r := QuatToRot(q)
	gtu := matTVec(r, d.Trans)
	gu[3], gu[4], gu[5] = gtu[0], gtu[1], gtu[2]
	gr := QuatToRotVJP(q, outer(d.Trans, tu))
	for i := range gq {
		gq[i] += gr[i]
	}
	return gq, gt, gu
}
