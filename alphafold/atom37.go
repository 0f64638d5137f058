package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// smCheckAAType reports a residue type outside 0..20.
func smCheckAAType(what string, aatype []int) error {
	for i, a := range aatype {
		if a < 0 || a >= residue.NumRestypesWithX {
			return fmt.Errorf("alphafold: %s: aatype[%d] = %d outside [0, %d]: %w", what, i, a, residue.NumRestypesWithX-1, num.ErrShape)
		}
	}
	return nil
}

// Atom14ToAtom37 converts atom positions from the atom14 layout [N, 14, 3]
// to AF2's atom37 layout [N, 37, 3] for the residue types aatype [N], as
// AF2's all_atom.atom14_to_atom37 does: each atom37 atom takes the position
// of its atom14 slot, times atom37_atom_exists, so atoms the residue type
// lacks (and OXT, which AF2 does not predict) are zero. This gives AF2's
// final_atom_positions from the structure module's last atom14 positions.
// The error wraps num.ErrShape for a length that does not match or a type
// outside 0..20.
func Atom14ToAtom37[T num.Float](pos14 []T, aatype []int) ([]T, error) {
	n := len(aatype)
	if err := num.CheckLen("alphafold: atom14 positions", pos14, n*residue.NumAtom14*3, fmt.Sprintf("[N 14 3] = [%d 14 3]", n)); err != nil {
		return nil, err
	}
	if err := smCheckAAType("atom14 to atom37", aatype); err != nil {
		return nil, err
	}
	m37, to14 := residue.Atom37Mask(), residue.Atom37ToAtom14()
	out := make([]T, n*residue.NumAtomTypes*3)
	for i, r := range aatype {
		for a := range residue.NumAtomTypes {
			if m37[r][a] == 0 {
				continue
			}
			copy(out[(i*residue.NumAtomTypes+a)*3:][:3], pos14[(i*residue.NumAtom14+to14[r][a])*3:][:3])
		}
	}
	return out, nil
}

// Atom14ToAtom37VJP returns the gradient with respect to the atom14
// positions [N, 14, 3] of Atom14ToAtom37, given d37 = ∂L/∂(atom37
// positions) [N, 37, 3]: every existing atom37 atom passes its gradient to
// its atom14 slot. The error wraps num.ErrShape for a length that does not
// match or a type outside 0..20.
func Atom14ToAtom37VJP[T num.Float](d37 []T, aatype []int) ([]T, error) {
	n := len(aatype)
	if err := num.CheckLen("alphafold: atom37 gradient", d37, n*residue.NumAtomTypes*3, fmt.Sprintf("[N 37 3] = [%d 37 3]", n)); err != nil {
		return nil, err
	}
	if err := smCheckAAType("atom14 to atom37 VJP", aatype); err != nil {
		return nil, err
	}
	m37, to14 := residue.Atom37Mask(), residue.Atom37ToAtom14()
	d14 := make([]T, n*residue.NumAtom14*3)
	for i, r := range aatype {
		for a := range residue.NumAtomTypes {
			if m37[r][a] == 0 {
				continue
			}
			src := d37[(i*residue.NumAtomTypes+a)*3:][:3]
			dst := d14[(i*residue.NumAtom14+to14[r][a])*3:][:3]
			for k := range 3 {
				dst[k] += src[k]
			}
		}
	}
	return d14, nil
}
