package rigid

import "github.com/foldkit/foldkit/internal/num"

// ComposeVJP returns the vector-Jacobian product of r1∘r2: given d, the
// gradient of a loss L with respect to the composed frame (dL/dRot, dL/dTrans),
// it returns dL/dr1 and dL/dr2 in the same form:
// dR1 = dR·R2ᵀ + dt·t2ᵀ, dt1 = dt, dR2 = R1ᵀ·dR, dt2 = R1ᵀ·dt.
func ComposeVJP[T num.Float](r1, r2, d Rigid[T]) (d1, d2 Rigid[T]) {
	d1.Rot = addMat(matMul(d.Rot, transpose(r2.Rot)), outer(d.Trans, r2.Trans))
	d1.Trans = d.Trans
	d2.Rot = matMul(transpose(r1.Rot), d.Rot)
	d2.Trans = matTVec(r1.Rot, d.Trans)
	return d1, d2
}

// InvertVJP returns dL/dr for the inverse frame (Rᵀ, −Rᵀt), given d =
// dL/d(inverse): dR = dRinvᵀ − t·dtinvᵀ, dt = −R·dtinv.
func InvertVJP[T num.Float](r, d Rigid[T]) Rigid[T] {
	var g Rigid[T]
	g.Rot = transpose(d.Rot)
	o := outer(r.Trans, d.Trans)
	for i := range g.Rot {
		g.Rot[i] -= o[i]
	}
	t := matVec(r.Rot, d.Trans)
	g.Trans = [3]T{-t[0], -t[1], -t[2]}
	return g
}

// ApplyVJP returns the gradients of y = R·p + t with respect to the frame
// (dR = dy·pᵀ, dt = dy) and the point (dp = Rᵀ·dy), given dy = dL/dy. For a
// frame applied to many points, sum the frame gradients.
func ApplyVJP[T num.Float](r Rigid[T], p, dy [3]T) (Rigid[T], [3]T) {
	return Rigid[T]{Rot: outer(dy, p), Trans: dy}, matTVec(r.Rot, dy)
}

// InvertApplyVJP returns the gradients of y = Rᵀ·(p − t) with respect to the
// frame (dR = (p − t)·dyᵀ, dt = −R·dy) and the point (dp = R·dy).
func InvertApplyVJP[T num.Float](r Rigid[T], p, dy [3]T) (Rigid[T], [3]T) {
	dp := matVec(r.Rot, dy)
	return Rigid[T]{Rot: outer(sub(p, r.Trans), dy), Trans: [3]T{-dp[0], -dp[1], -dp[2]}}, dp
}

// ApplyVecVJP returns the gradients of y = R·v with respect to the frame
// (dR = dy·vᵀ, dt = 0) and the vector (dv = Rᵀ·dy).
func ApplyVecVJP[T num.Float](r Rigid[T], v, dy [3]T) (Rigid[T], [3]T) {
	return Rigid[T]{Rot: outer(dy, v)}, matTVec(r.Rot, dy)
}

// InvertApplyVecVJP returns the gradients of y = Rᵀ·v with respect to the
// frame (dR = v·dyᵀ, dt = 0) and the vector (dv = R·dy).
func InvertApplyVecVJP[T num.Float](r Rigid[T], v, dy [3]T) (Rigid[T], [3]T) {
	return Rigid[T]{Rot: outer(v, dy)}, matVec(r.Rot, dy)
}
