package rigid

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// NumAtom14 is the number of atom slots per residue in the atom14 layout.
const NumAtom14 = residue.NumAtom14

func checkAtomInputs(op string, nFrames int, aatype []int) error {
	if nFrames != NumGroups*len(aatype) {
		return fmt.Errorf("rigid: %s: %d frames for %d residues, want [%d,8]: %w", op, nFrames, len(aatype), len(aatype), num.ErrShape)
	}
	for i, a := range aatype {
		if a < 0 || a >= residue.NumRestypesWithX {
			return fmt.Errorf("rigid: %s: aatype[%d] = %d outside [0,%d]: %w", op, i, a, residue.NumRestypesWithX-1, num.ErrShape)
		}
	}
	return nil
}

// Atom14Positions implements Alg. 25 (computeAllAtomCoordinates, atom part):
// it places every atom14 atom of each residue with the global frame of its
// rigid group and AF2's literature position in that group, in the frames'
// units (Å with AF2's constants). frames is [n·8] as returned by
// TorsionFrames and aatype is [n]; the result is [n,14,3], zero for slots the
// residue type does not have.
func Atom14Positions[T num.Float](frames []Rigid[T], aatype []int) ([]T, error) {
	if err := checkAtomInputs("atom14 positions", len(frames), aatype); err != nil {
		return nil, err
	}
	if err := checkFrames("rigid: atom14 positions", frames); err != nil {
		return nil, err
	}
	tb := af2Tables[T]()
	out := make([]T, len(aatype)*NumAtom14*3)
	for i, a := range aatype {
		for k := 0; k < NumAtom14; k++ {
			p := frames[NumGroups*i+tb.group[a][k]].Apply(tb.pos[a][k])
			m := tb.mask[a][k]
			o := 3 * (NumAtom14*i + k)
			out[o], out[o+1], out[o+2] = p[0]*m, p[1]*m, p[2]*m
		}
	}
	return out, nil
}

// Atom14PositionsVJP returns dL/d(frames) [n·8] for Atom14Positions given
// dPos = dL/d(positions) [n,14,3]. The positions are linear in each frame:
// a group's frame receives the sum over its atoms of (dp·litᵀ, dp).
func Atom14PositionsVJP[T num.Float](aatype []int, dPos []T) ([]Rigid[T], error) {
	if err := checkAtomInputs("atom14 positions vjp", NumGroups*len(aatype), aatype); err != nil {
		return nil, err
	}
	if err := num.CheckLen("rigid: atom14 positions vjp gradient", dPos, len(aatype)*NumAtom14*3, fmt.Sprintf("[%d,14,3]", len(aatype))); err != nil {
		return nil, err
	}
	if err := num.CheckFinite("rigid: atom14 positions vjp gradient", dPos); err != nil {
		return nil, err
	}
	tb := af2Tables[T]()
	d := make([]Rigid[T], NumGroups*len(aatype))
	for i, a := range aatype {
		for k := 0; k < NumAtom14; k++ {
			m := tb.mask[a][k]
			if m == 0 {
				continue
			}
			o := 3 * (NumAtom14*i + k)
			dp := [3]T{dPos[o] * m, dPos[o+1] * m, dPos[o+2] * m}
			f := &d[NumGroups*i+tb.group[a][k]]
			f.Rot = addMat(f.Rot, outer(dp, tb.pos[a][k]))
			f.Trans = add(f.Trans, dp)
		}
	}
	return d, nil
}
