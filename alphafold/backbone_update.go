package alphafold

import (
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// AffineUpdateName is the haiku name of the backbone update's linear layer
// under structure_module/fold_iteration/ (supplement Algorithm 23).
const AffineUpdateName = "affine_update"

// smBackboneUpdate implements the backbone update of Algorithm 23 for n
// residues: u = s·affine_update + b [N, 6] = (b, c, d, t_x, t_y, t_z), then
// every frame (quat[i], trans[i]) is composed with the update,
//
//	q_new = normalise(q ⊗ (1, b, c, d))
//	t_new = t + R(q)·(t_x, t_y, t_z)
//
// as AF2's QuatAffine.pre_compose does (rigid.ComposeQUpdate). Translations
// are in the structure module's internal unit, nanometres. It writes u
// [N, 6] (kept for the backward pass), newQuat and newTrans [N].
func smBackboneUpdate[T num.Float](w *nn.LinearParams[T], s []T, n int, quat []rigid.Quat[T], trans [][3]T, u []T, newQuat []rigid.Quat[T], newTrans [][3]T) {
	w.Forward(u, s, n)
	for i := range n {
		newQuat[i], newTrans[i] = rigid.ComposeQUpdate(quat[i], trans[i], [6]T(u[6*i:6*i+6]))
	}
}

// smBackboneUpdateBackward back-propagates smBackboneUpdate. Given the
// gradients with respect to the new quaternions (dNewQuat, may be nil), the
// rotation matrices of the new frames (dNewRot, nil or [N]) and the new
// translations (dNewTrans [N]), it accumulates the gradients with respect
// to s into ds [N, c_s] (nil to skip), to the affine_update layer into gw (nil
// to skip), to the old translations into dTrans [N] and, when dQuat is not
// nil, to the old quaternions into dQuat [N]. The structure module passes a
// nil dQuat from the second iteration on: AF2 stops the gradient of the
// rotations between iterations.
func smBackboneUpdateBackward[T num.Float](w, gw *nn.LinearParams[T], s []T, n int, quat []rigid.Quat[T], trans [][3]T, u []T,
	dNewQuat []rigid.Quat[T], dNewRot [][9]T, dNewTrans [][3]T, ds []T, dQuat []rigid.Quat[T], dTrans [][3]T) {
	du := make([]T, 6*n)
	for i := range n {
		var dq rigid.Quat[T]
		if dNewQuat != nil {
			dq = dNewQuat[i]
		}
		d := rigid.Rigid[T]{Trans: dNewTrans[i]}
		if dNewRot != nil {
			d.Rot = dNewRot[i]
		}
		gq, gt, gu := rigid.ComposeQUpdateVJP(quat[i], trans[i], [6]T(u[6*i:6*i+6]), dq, d)
		copy(du[6*i:], gu[:])
		for k := range 3 {
			dTrans[i][k] += gt[k]
		}
		if dQuat != nil {
			for k := range 4 {
				dQuat[i][k] += gq[k]
			}
		}
	}
	w.Backward(ds, gw, s, du, n)
}
