package rigid

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// Number of rigid groups per residue and torsion angles per residue
// (pre-ω, φ, ψ, χ1..χ4).
const (
	NumGroups   = residue.NumGroups
	NumTorsions = residue.NumTorsions
)

// checkTorsionInputs validates the inputs of TorsionFrames and its VJP.
func checkTorsionInputs[T num.Float](op string, bb []Rigid[T], sinCos []T, aatype []int) error {
	n := len(bb)
	if err := num.CheckLen("rigid: "+op+" angles_sin_cos", sinCos, n*NumTorsions*2, fmt.Sprintf("[%d,7,2]", n)); err != nil {
		return err
	}
	if err := num.CheckLen("rigid: "+op+" aatype", aatype, n, fmt.Sprintf("[%d]", n)); err != nil {
		return err
	}
	for i, a := range aatype {
		if a < 0 || a >= residue.NumRestypesWithX {
			return fmt.Errorf("rigid: %s: aatype[%d] = %d outside [0,%d]: %w", op, i, a, residue.NumRestypesWithX-1, num.ErrShape)
		}
	}
	if err := checkFrames("rigid: "+op+" backbone", bb); err != nil {
		return err
	}
	return num.CheckFinite("rigid: "+op+" angles_sin_cos", sinCos)
}

// rotX returns the rotation about x with the given sine and cosine,
// [[1,0,0],[0,c,−s],[0,s,c]] (not normalised).
func rotX[T num.Float](s, c T) Rigid[T] {
	return Rigid[T]{Rot: [9]T{1, 0, 0, 0, c, -s, 0, s, c}}
}

// torsionLocal returns, for one residue, the frames of the 8 groups in their
// parent frames (default frame ∘ Rx(angle); group 0 has angle 0) and in
// the backbone frame.
func torsionLocal[T num.Float](tb *groupTables[T], sinCos []T, aatype int) (local, toBB [NumGroups]Rigid[T]) {
	for g := 0; g < NumGroups; g++ {
		s, c := T(0), T(1)
		if g > 0 {
			s, c = sinCos[2*(g-1)], sinCos[2*(g-1)+1]
		}
		local[g] = tb.defaults[aatype][g].Compose(rotX(s, c))
	}
	copy(toBB[:5], local[:5])
	for g := 5; g < NumGroups; g++ {
		toBB[g] = toBB[g-1].Compose(local[g])
	}
	return local, toBB
}

// TorsionFrames implements Alg. 24 (computeAllAtomCoordinates, frame part):
// from the backbone frames bb (one per residue, translations in Å), the
// torsion angles sinCos [n,7,2] (sine and cosine of pre-ω, φ, ψ, χ1..χ4,
// expected to be unit length but used as given) and the residue types aatype
// [n] (AF2 order, 20 = unknown), it returns the n·8 global frames of the
// rigid groups (backbone, pre-ω, φ, ψ, χ1..χ4), residue-major.
//
// Each group's frame in its parent is AF2's default frame composed with the
// rotation about x by its angle; χ2, χ3 and χ4 hang off χ1, χ2 and χ3, the
// others off the backbone. The default frames are AF2's float32 constants
// (see package residue). Groups a residue type lacks have an all-zero default
// frame, so their frames come out with a zero rotation and the parent's
// translation, as in AF2; no atom uses them.
func TorsionFrames[T num.Float](bb []Rigid[T], sinCos []T, aatype []int) ([]Rigid[T], error) {
	if err := checkTorsionInputs("torsion frames", bb, sinCos, aatype); err != nil {
		return nil, err
	}
	tb := af2Tables[T]()
	out := make([]Rigid[T], NumGroups*len(bb))
	for i := range bb {
		_, toBB := torsionLocal(tb, sinCos[2*NumTorsions*i:], aatype[i])
		for g := 0; g < NumGroups; g++ {
			out[NumGroups*i+g] = bb[i].Compose(toBB[g])
		}
	}
	return out, nil
}

// TorsionFramesVJP returns the gradients of TorsionFrames with respect to
// the backbone frames and the (sin, cos) pairs, given dFrames = dL/d(frames)
// [n·8] (for example from Atom14PositionsVJP plus any direct use of the
// frames).
func TorsionFramesVJP[T num.Float](bb []Rigid[T], sinCos []T, aatype []int, dFrames []Rigid[T]) (dBB []Rigid[T], dSinCos []T, err error) {
	if err := checkTorsionInputs("torsion frames vjp", bb, sinCos, aatype); err != nil {
		return nil, nil, err
	}
	if len(dFrames) != NumGroups*len(bb) {
		return nil, nil, fmt.Errorf("rigid: torsion frames vjp: %d frame gradients, want %d: %w", len(dFrames), NumGroups*len(bb), num.ErrShape)
	}
	if err := checkFrames("rigid: torsion frames vjp gradient", dFrames); err != nil {
		return nil, nil, err
	}
	tb := af2Tables[T]()
	dBB = make([]Rigid[T], len(bb))
	dSinCos = make([]T, len(sinCos))
	for i := range bb {
		sc := sinCos[2*NumTorsions*i:]
		local, toBB := torsionLocal(tb, sc, aatype[i])
		var dTo [NumGroups]Rigid[T]
		for g := 0; g < NumGroups; g++ {
			db, dt := ComposeVJP(bb[i], toBB[g], dFrames[NumGroups*i+g])
			dBB[i].Rot = addMat(dBB[i].Rot, db.Rot)
			dBB[i].Trans = add(dBB[i].Trans, db.Trans)
			dTo[g] = dt
		}
		// Undo the χ chain, last group first.
		var dLocal [NumGroups]Rigid[T]
		for g := NumGroups - 1; g >= 5; g-- {
			dp, dl := ComposeVJP(toBB[g-1], local[g], dTo[g])
			dTo[g-1].Rot = addMat(dTo[g-1].Rot, dp.Rot)
			dTo[g-1].Trans = add(dTo[g-1].Trans, dp.Trans)
			dLocal[g] = dl
		}
		copy(dLocal[:5], dTo[:5])
		// local = default ∘ Rx: only Rx depends on the angle.
		ds := dSinCos[2*NumTorsions*i:]
		for g := 1; g < NumGroups; g++ {
			_, dRx := ComposeVJP(tb.defaults[aatype[i]][g], rotX(sc[2*(g-1)], sc[2*(g-1)+1]), dLocal[g])
			// Rx = [[1,0,0],[0,c,−s],[0,s,c]].
			ds[2*(g-1)] += dRx.Rot[7] - dRx.Rot[5]
			ds[2*(g-1)+1] += dRx.Rot[4] + dRx.Rot[8]
		}
	}
	return dBB, dSinCos, nil
}
