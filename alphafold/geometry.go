package alphafold

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/residue"
	"github.com/foldkit/foldkit/rigid"
)

// This file derives AF2's geometric ground truth from atom37 coordinates:
// the atom14 layout (make_atom14_masks, make_atom14_positions), the frames
// of the 8 rigid groups (atom37_to_frames; Alg. 21 for the backbone), the
// torsion angles with their π-periodic alternatives
// (atom37_to_torsion_angles), pseudo-β positions (pseudo_beta_fn) and the
// all-atom reconstruction from frames and torsions (Alg. 24 and 25).
//
// Inputs are aatype [N] (AF2 order, 20 = unknown), positions [N,37,3] in Å
// and mask [N,37] (1 = atom present), as protein.Structure holds them.

const (
	geoNA   = residue.NumAtomTypes // 37
	geoN14  = residue.NumAtom14    // 14
	geoNG   = residue.NumGroups    // 8
	geoNTor = residue.NumTorsions  // 7
)

// geoCheck validates the atom37 inputs shared by the functions of this file.
func geoCheck[T num.Float](op string, aatype []int, positions, mask []T) error {
	n := len(aatype)
	for i, a := range aatype {
		if a < 0 || a >= residue.NumRestypesWithX {
			return fmt.Errorf("alphafold: %s: aatype[%d] = %d outside [0,%d]: %w", op, i, a, residue.Unk, num.ErrShape)
		}
	}
	if err := num.CheckLen("alphafold: "+op+" positions", positions, n*geoNA*3, fmt.Sprintf("[%d,37,3]", n)); err != nil {
		return err
	}
	if err := num.CheckLen("alphafold: "+op+" mask", mask, n*geoNA, fmt.Sprintf("[%d,37]", n)); err != nil {
		return err
	}
	if err := num.CheckFinite("alphafold: "+op+" positions", positions); err != nil {
		return err
	}
	return num.CheckFinite("alphafold: "+op+" mask", mask)
}

// geoAtom returns the position of atom37 atom k of residue i.
func geoAtom[T num.Float](positions []T, i, k int) [3]T {
	o := 3 * (i*geoNA + k)
	return [3]T{positions[o], positions[o+1], positions[o+2]}
}

// Atom14Maps holds the per-residue maps between the atom37 and atom14
// layouts and the atoms each residue type has (AF2's make_atom14_masks).
type Atom14Maps[T num.Float] struct {
	Atom14ToAtom37 []int // [N,14] atom37 index of each atom14 slot (residx_atom14_to_atom37), 0 for unused slots
	Atom37ToAtom14 []int // [N,37] atom14 slot of each atom37 atom (residx_atom37_to_atom14), 0 where absent
	Atom14Exists   []T   // [N,14] 1 where the residue type has the atom14 slot (atom14_atom_exists)
	Atom37Exists   []T   // [N,37] 1 where the residue type has the atom37 atom (atom37_atom_exists); OXT is 0
}

// MakeAtom14Maps returns the atom14 maps and masks of the residue types
// aatype [N]. Unknown residues (20) have no atoms.
func MakeAtom14Maps[T num.Float](aatype []int) (*Atom14Maps[T], error) {
	for i, a := range aatype {
		if a < 0 || a >= residue.NumRestypesWithX {
			return nil, fmt.Errorf("alphafold: atom14 maps: aatype[%d] = %d outside [0,%d]: %w", i, a, residue.Unk, num.ErrShape)
		}
	}
	n := len(aatype)
	to37, to14 := residue.Atom14ToAtom37(), residue.Atom37ToAtom14()
	m14, m37 := residue.Atom14Mask(), residue.Atom37Mask()
	m := &Atom14Maps[T]{
		Atom14ToAtom37: make([]int, n*geoN14),
		Atom37ToAtom14: make([]int, n*geoNA),
		Atom14Exists:   make([]T, n*geoN14),
		Atom37Exists:   make([]T, n*geoNA),
	}
	for i, a := range aatype {
		for k := range geoN14 {
			m.Atom14ToAtom37[i*geoN14+k] = to37[a][k]
			m.Atom14Exists[i*geoN14+k] = T(m14[a][k])
		}
		for k := range geoNA {
			m.Atom37ToAtom14[i*geoNA+k] = to14[a][k]
			m.Atom37Exists[i*geoNA+k] = T(m37[a][k])
		}
	}
	return m, nil
}

// Atom14GroundTruth holds the atom14 form of experimental coordinates and
// its alternative with the symmetric atoms renamed (AF2's
// make_atom14_positions), which the side-chain losses choose between.
type Atom14GroundTruth[T num.Float] struct {
	Positions    []T // [N,14,3] Å, atom37 gathered into atom14 (atom14_gt_positions), 0 where absent
	Exists       []T // [N,14] atom present and in the residue type (atom14_gt_exists)
	AltPositions []T // [N,14,3] with ASP OD1↔OD2, GLU OE1↔OE2, PHE/TYR CD1↔CD2 and CE1↔CE2 swapped (atom14_alt_gt_positions)
	AltExists    []T // [N,14] the mask swapped alike (atom14_alt_gt_exists)
	IsAmbiguous  []T // [N,14] 1 on the swappable atoms (atom14_atom_is_ambiguous)
}

// MakeAtom14GroundTruth gathers atom37 positions [N,37,3] and mask [N,37]
// into the atom14 layout of the residue types aatype [N] and builds the
// renamed alternative.
func MakeAtom14GroundTruth[T num.Float](aatype []int, positions, mask []T) (*Atom14GroundTruth[T], error) {
	if err := geoCheck("atom14 ground truth", aatype, positions, mask); err != nil {
		return nil, err
	}
	return geoAtom14GroundTruth(aatype, positions, mask), nil
}

func geoAtom14GroundTruth[T num.Float](aatype []int, positions, mask []T) *Atom14GroundTruth[T] {
	n := len(aatype)
	to37, m14 := residue.Atom14ToAtom37(), residue.Atom14Mask()
	perm, amb := residue.Atom14SwapPermutation(), residue.Atom14IsAmbiguous()
	g := &Atom14GroundTruth[T]{
		Positions:    make([]T, n*geoN14*3),
		Exists:       make([]T, n*geoN14),
		AltPositions: make([]T, n*geoN14*3),
		AltExists:    make([]T, n*geoN14),
		IsAmbiguous:  make([]T, n*geoN14),
	}
	for i, a := range aatype {
		for k := range geoN14 {
			e := T(m14[a][k]) * mask[i*geoNA+to37[a][k]]
			g.Exists[i*geoN14+k] = e
			p := geoAtom(positions, i, to37[a][k])
			for j := range 3 {
				g.Positions[3*(i*geoN14+k)+j] = e * p[j]
			}
			g.IsAmbiguous[i*geoN14+k] = T(amb[a][k])
		}
		for k := range geoN14 {
			src := i*geoN14 + perm[a][k]
			g.AltExists[i*geoN14+k] = g.Exists[src]
			copy(g.AltPositions[3*(i*geoN14+k):3*(i*geoN14+k)+3], g.Positions[3*src:3*src+3])
		}
	}
	return g
}

// GroupFrames holds the ground-truth frames of the 8 rigid groups of every
// residue (AF2's atom37_to_frames): groups 0..7 are backbone, pre-ω, φ, ψ,
// χ1..χ4, residue-major ([N·8] frames, [N,8] masks), translations in Å.
type GroupFrames[T num.Float] struct {
	// Frames maps each group's local coordinates to global ones
	// (rigidgroups_gt_frames). Frames whose Exists is 0 are not zeroed:
	// they hold the three-point formula applied to whatever the base-atom
	// slots hold (AF2's values); do not use them.
	Frames []rigid.Rigid[T]
	// AltFrames are Frames with the π-periodic χ group (ASP χ2, GLU χ3,
	// PHE χ2, TYR χ2) turned by π about its x axis (rigidgroups_alt_gt_frames).
	AltFrames []rigid.Rigid[T]
	// Exists is 1 where the group exists for the type and its three base
	// atoms are present (rigidgroups_gt_exists).
	Exists []T
	// GroupExists is 1 where the residue type has the group: backbone, ψ
	// and its χ groups; pre-ω and φ have no atoms of their own and are 0
	// (rigidgroups_group_exists).
	GroupExists []T
	// IsAmbiguous is 1 on the π-periodic χ group (rigidgroups_group_is_ambiguous).
	IsAmbiguous []T
}

// geoGroupBaseAtoms returns, per residue type and group, the atom37 indices
// of the three atoms a group's frame is built from (negative-x point,
// origin, xy-plane point): C, CA, N for the backbone; CA, C, O for ψ; the
// last three chi atoms for χk; N three times for groups without base atoms.
func geoGroupBaseAtoms() [residue.NumRestypesWithX][geoNG][3]int {
	var t [residue.NumRestypesWithX][geoNG][3]int
	for r := range t {
		t[r][0] = [3]int{residue.AtomC, residue.AtomCA, residue.AtomN}
		t[r][3] = [3]int{residue.AtomCA, residue.AtomC, residue.AtomO}
		for k, chi := range residue.ChiAnglesAtoms(r) {
			for j := range 3 {
				t[r][4+k][j], _ = residue.AtomTypeIndex(chi[j+1])
			}
		}
	}
	return t
}

// geoAmbiguousGroup returns, per residue type, the rigid group that is
// π-periodic (the last χ of the types with renaming swaps), or -1.
func geoAmbiguousGroup() [residue.NumRestypesWithX]int {
	var t [residue.NumRestypesWithX]int
	for r := range t {
		t[r] = -1
		if len(residue.AtomRenamingSwaps(r)) > 0 {
			t[r] = 4 + len(residue.ChiAnglesAtoms(r)) - 1
		}
	}
	return t
}

// FramesFromAtom37 builds the ground-truth frames of the 8 rigid groups of
// every residue from atom37 positions [N,37,3] and mask [N,37] (AF2's
// atom37_to_frames). Each frame is AF2's three-point frame (origin at the
// second atom, x axis from the first to the second, the third in the xy
// plane, 1e-8 inside both square roots: rigid.FromThreePoints). The
// backbone frame is built from (C, CA, N) and turned by π about y, which
// gives Alg. 21's frame: origin CA, x axis along CA→C, N in the xy plane
// with positive y.
func FramesFromAtom37[T num.Float](aatype []int, positions, mask []T) (*GroupFrames[T], error) {
	if err := geoCheck("frames from atom37", aatype, positions, mask); err != nil {
		return nil, err
	}
	return geoFrames(aatype, positions, mask), nil
}

func geoFrames[T num.Float](aatype []int, positions, mask []T) *GroupFrames[T] {
	n := len(aatype)
	base, ambGroup, groupMask := geoGroupBaseAtoms(), geoAmbiguousGroup(), residue.RigidGroupMask()
	g := &GroupFrames[T]{
		Frames:      make([]rigid.Rigid[T], n*geoNG),
		AltFrames:   make([]rigid.Rigid[T], n*geoNG),
		Exists:      make([]T, n*geoNG),
		GroupExists: make([]T, n*geoNG),
		IsAmbiguous: make([]T, n*geoNG),
	}
	for i, a := range aatype {
		for grp := range geoNG {
			b := base[a][grp]
			// AF2 builds frames from absent atoms (zeros) too and masks
			// them afterwards, so ErrDegenerate (the only error: the
			// positions are finite) is expected and ignored here.
			f, _ := rigid.FromThreePoints(geoAtom(positions, i, b[0]), geoAtom(positions, i, b[1]), geoAtom(positions, i, b[2]))
			if grp == 0 {
				// Compose with diag(−1, 1, −1): negate columns 0 and 2.
				for r := range 3 {
					f.Rot[3*r] = -f.Rot[3*r]
					f.Rot[3*r+2] = -f.Rot[3*r+2]
				}
			}
			o := i*geoNG + grp
			g.Frames[o] = f
			alt := f
			if grp == ambGroup[a] {
				// Compose with diag(1, −1, −1): a turn by π about x.
				for r := range 3 {
					alt.Rot[3*r+1] = -alt.Rot[3*r+1]
					alt.Rot[3*r+2] = -alt.Rot[3*r+2]
				}
				g.IsAmbiguous[o] = 1
			}
			g.AltFrames[o] = alt
			ge := T(groupMask[a][grp])
			g.GroupExists[o] = ge
			g.Exists[o] = min(mask[i*geoNA+b[0]], mask[i*geoNA+b[1]], mask[i*geoNA+b[2]]) * ge
		}
	}
	return g
}

// BackboneFrames returns the backbone frame of each residue (Alg. 21 in the
// form of AF2's code: origin CA, x axis along CA→C, N in the xy plane; see
// FramesFromAtom37) from atom37 positions [N,37,3] and mask [N,37], and
// [N] masks that are 1 where N, CA and C are all present.
func BackboneFrames[T num.Float](positions, mask []T) ([]rigid.Rigid[T], []T, error) {
	n := len(mask) / geoNA
	if err := geoCheck("backbone frames", make([]int, n), positions, mask); err != nil {
		return nil, nil, err
	}
	frames := make([]rigid.Rigid[T], n)
	exists := make([]T, n)
	for i := range n {
		f, _ := rigid.FromThreePoints(geoAtom(positions, i, residue.AtomC), geoAtom(positions, i, residue.AtomCA), geoAtom(positions, i, residue.AtomN)) // degenerate for missing atoms, masked
		for r := range 3 {
			f.Rot[3*r] = -f.Rot[3*r]
			f.Rot[3*r+2] = -f.Rot[3*r+2]
		}
		frames[i] = f
		exists[i] = min(mask[i*geoNA+residue.AtomN], mask[i*geoNA+residue.AtomCA], mask[i*geoNA+residue.AtomC])
	}
	return frames, exists, nil
}

// TorsionAngles holds the torsion angles of every residue as (sin, cos)
// pairs, in the order pre-ω, φ, ψ, χ1..χ4 ([N,7,2]; AF2's
// atom37_to_torsion_angles).
type TorsionAngles[T num.Float] struct {
	// SinCos are the angles (torsion_angles_sin_cos). ψ is stored as the
	// dihedral N, CA, C, O plus π, which approximates ψ through N(i+1).
	SinCos []T
	// AltSinCos are the angles with the π-periodic χ (ASP χ2, GLU χ3, PHE
	// χ2, TYR χ2) shifted by π (alt_torsion_angles_sin_cos).
	AltSinCos []T
	// Mask [N,7] is 1 where all four atoms of the angle are present and
	// the residue type has the angle (torsion_angles_mask). Where it is 0
	// the values are what the formula gives on the zero coordinates of
	// absent atoms; do not use them.
	Mask []T
}

// geoChiAtoms returns, per residue type, the atom37 indices of the four
// atoms of each chi angle (0 for angles the type lacks).
func geoChiAtoms() [residue.NumRestypesWithX][residue.NumChi][4]int {
	var t [residue.NumRestypesWithX][residue.NumChi][4]int
	for r := range t {
		for k, chi := range residue.ChiAnglesAtoms(r) {
			for j := range 4 {
				t[r][k][j], _ = residue.AtomTypeIndex(chi[j])
			}
		}
	}
	return t
}

// TorsionAnglesFromAtom37 computes the torsion angles of every residue from
// atom37 positions [N,37,3] and mask [N,37] as AF2 does: for the four atoms
// (a0, a1, a2, a3) of an angle it builds the three-point frame with origin
// a2, x axis a1→a2 and a0 in the xy plane (rigid.FromThreePoints), maps a3
// into it and takes (sin, cos) = (z, y)/sqrt(y² + z² + 1e-8). The sign is
// the usual IUPAC one (α-helix φ ≈ −60°). Atoms:
//
//	pre-ω(i)  CA(i−1), C(i−1), N(i), CA(i)
//	φ(i)      C(i−1), N(i), CA(i), C(i)
//	ψ(i)      N(i), CA(i), C(i), O(i), then both sin and cos negated
//	χk(i)     the residue type's chi atoms (residue.ChiAnglesAtoms)
//
// The previous residue is the previous row, whatever the residue numbers
// say; the first row has no pre-ω or φ (mask 0).
func TorsionAnglesFromAtom37[T num.Float](aatype []int, positions, mask []T) (*TorsionAngles[T], error) {
	if err := geoCheck("torsion angles", aatype, positions, mask); err != nil {
		return nil, err
	}
	return geoTorsions(aatype, positions, mask), nil
}

func geoTorsions[T num.Float](aatype []int, positions, mask []T) *TorsionAngles[T] {
	n := len(aatype)
	chiAtoms, chiMask, piPeriodic := geoChiAtoms(), residue.ChiAnglesMask(), residue.ChiPiPeriodic()
	ta := &TorsionAngles[T]{
		SinCos:    make([]T, n*geoNTor*2),
		AltSinCos: make([]T, n*geoNTor*2),
		Mask:      make([]T, n*geoNTor),
	}
	const eps = 1e-8
	var zero [3]T
	for i, a := range aatype {
		m := func(k int) T { return mask[i*geoNA+k] }
		p := func(k int) [3]T { return geoAtom(positions, i, k) }
		prevCA, prevC := zero, zero
		var prevMCA, prevMC T
		if i > 0 {
			prevCA, prevC = geoAtom(positions, i-1, residue.AtomCA), geoAtom(positions, i-1, residue.AtomC)
			prevMCA, prevMC = mask[(i-1)*geoNA+residue.AtomCA], mask[(i-1)*geoNA+residue.AtomC]
		}
		var atoms [geoNTor][4][3]T
		var tmask [geoNTor]T
		atoms[0] = [4][3]T{prevCA, prevC, p(residue.AtomN), p(residue.AtomCA)}
		tmask[0] = prevMCA * prevMC * m(residue.AtomN) * m(residue.AtomCA)
		atoms[1] = [4][3]T{prevC, p(residue.AtomN), p(residue.AtomCA), p(residue.AtomC)}
		tmask[1] = prevMC * m(residue.AtomN) * m(residue.AtomCA) * m(residue.AtomC)
		atoms[2] = [4][3]T{p(residue.AtomN), p(residue.AtomCA), p(residue.AtomC), p(residue.AtomO)}
		tmask[2] = m(residue.AtomN) * m(residue.AtomCA) * m(residue.AtomC) * m(residue.AtomO)
		for k := range residue.NumChi {
			c := chiAtoms[a][k]
			atoms[3+k] = [4][3]T{p(c[0]), p(c[1]), p(c[2]), p(c[3])}
			tmask[3+k] = T(chiMask[a][k]) * m(c[0]) * m(c[1]) * m(c[2]) * m(c[3])
		}
		for t := range geoNTor {
			f, _ := rigid.FromThreePoints(atoms[t][1], atoms[t][2], atoms[t][0]) // degenerate for missing atoms, masked
			rel := f.InvertApply(atoms[t][3])
			s, c := rel[2], rel[1]
			d := T(math.Sqrt(float64(s*s + c*c + eps)))
			s, c = s/d, c/d
			if t == 2 {
				s, c = -s, -c
			}
			o := 2 * (i*geoNTor + t)
			ta.SinCos[o], ta.SinCos[o+1] = s, c
			if t >= 3 && piPeriodic[a][t-3] == 1 {
				s, c = -s, -c
			}
			ta.AltSinCos[o], ta.AltSinCos[o+1] = s, c
			ta.Mask[i*geoNTor+t] = tmask[t]
		}
	}
	return ta
}

// PseudoBeta returns the pseudo-β position of every residue [N,3] (Å) and
// its mask [N]: CA for glycine, CB for every other type, the unknown type
// included (AF2's pseudo_beta_fn).
func PseudoBeta[T num.Float](aatype []int, positions, mask []T) (pos, pmask []T, err error) {
	if err := geoCheck("pseudo beta", aatype, positions, mask); err != nil {
		return nil, nil, err
	}
	pos, pmask = geoPseudoBeta(aatype, positions, mask)
	return pos, pmask, nil
}

func geoPseudoBeta[T num.Float](aatype []int, positions, mask []T) (pos, pmask []T) {
	pos = make([]T, 3*len(aatype))
	pmask = make([]T, len(aatype))
	for i, a := range aatype {
		k := residue.AtomCB
		if a == residue.Gly {
			k = residue.AtomCA
		}
		copy(pos[3*i:3*i+3], positions[3*(i*geoNA+k):3*(i*geoNA+k)+3])
		pmask[i] = mask[i*geoNA+k]
	}
	return pos, pmask
}

// ReconstructAtom14 places every atom of each residue from its backbone
// frame [N] and torsion angles sinCos [N,7,2] with AF2's ideal geometry:
// Alg. 24 (rigid.TorsionFrames) gives the global frames of the 8 rigid
// groups [N·8], and Alg. 25 (rigid.Atom14Positions) the atom14 positions
// [N,14,3] in Å from the literature positions, 0 for slots the residue
// type does not have.
func ReconstructAtom14[T num.Float](aatype []int, backbone []rigid.Rigid[T], sinCos []T) (frames []rigid.Rigid[T], atom14 []T, err error) {
	frames, err = rigid.TorsionFrames(backbone, sinCos, aatype)
	if err != nil {
		return nil, nil, fmt.Errorf("alphafold: reconstruct atom14: %w", err)
	}
	atom14, err = rigid.Atom14Positions(frames, aatype)
	if err != nil {
		return nil, nil, fmt.Errorf("alphafold: reconstruct atom14: %w", err)
	}
	return frames, atom14, nil
}

// ReconstructionMask returns the atom14 atoms [N,14] that ReconstructAtom14
// places from ground truth that is really there: the atom is present
// (atom14Exists [N,14], Atom14GroundTruth.Exists), the backbone frame is
// present (backboneExists [N], GroupFrames.Exists of group 0) and every
// torsion on the way from the backbone to the atom's group is present
// (torsionMask [N,7]): ψ for O, χ1..χk for the atoms of group χk.
func ReconstructionMask[T num.Float](aatype []int, atom14Exists, backboneExists, torsionMask []T) ([]T, error) {
	n := len(aatype)
	for _, c := range []struct {
		what string
		x    []T
		want int
		dims string
	}{
		{"atom14 exists", atom14Exists, n * geoN14, fmt.Sprintf("[%d,14]", n)},
		{"backbone exists", backboneExists, n, fmt.Sprintf("[%d]", n)},
		{"torsion mask", torsionMask, n * geoNTor, fmt.Sprintf("[%d,7]", n)},
	} {
		if err := num.CheckLen("alphafold: reconstruction mask "+c.what, c.x, c.want, c.dims); err != nil {
			return nil, err
		}
	}
	groupOf := residue.Atom14ToRigidGroup()
	out := make([]T, n*geoN14)
	for i, a := range aatype {
		if a < 0 || a >= residue.NumRestypesWithX {
			return nil, fmt.Errorf("alphafold: reconstruction mask: aatype[%d] = %d outside [0,%d]: %w", i, a, residue.Unk, num.ErrShape)
		}
		for k := range geoN14 {
			m := atom14Exists[i*geoN14+k] * backboneExists[i]
			switch g := groupOf[a][k]; {
			case g == 3:
				m *= torsionMask[i*geoNTor+2]
			case g >= 4:
				for t := 3; t <= g-1; t++ {
					m *= torsionMask[i*geoNTor+t]
				}
			}
			out[i*geoN14+k] = m
		}
	}
	return out, nil
}

// GroundTruth holds every geometric feature AF2's data pipeline derives
// from an experimental structure: the atom37 input, the atom14 maps and
// positions, the rigid-group frames, the torsion angles and the pseudo-β
// positions. The losses (FAPE, side-chain and torsion losses, distogram)
// and the recycling of a known structure read these.
type GroundTruth[T num.Float] struct {
	AAType         []int // [N]
	Positions      []T   // [N,37,3] Å
	Mask           []T   // [N,37]
	Maps           Atom14Maps[T]
	Atom14         Atom14GroundTruth[T]
	Groups         GroupFrames[T]
	Torsions       TorsionAngles[T]
	PseudoBeta     []T // [N,3] Å
	PseudoBetaMask []T // [N]
}

// NewGroundTruth derives every ground-truth feature from residue types
// aatype [N], atom37 positions [N,37,3] (Å) and mask [N,37]. The slices are
// copied.
func NewGroundTruth[T num.Float](aatype []int, positions, mask []T) (*GroundTruth[T], error) {
	if err := geoCheck("ground truth", aatype, positions, mask); err != nil {
		return nil, err
	}
	g := &GroundTruth[T]{
		AAType:    append([]int(nil), aatype...),
		Positions: append([]T(nil), positions...),
		Mask:      append([]T(nil), mask...),
	}
	maps, err := MakeAtom14Maps[T](aatype)
	if err != nil {
		return nil, err
	}
	g.Maps = *maps
	g.Atom14 = *geoAtom14GroundTruth(aatype, positions, mask)
	g.Groups = *geoFrames(aatype, positions, mask)
	g.Torsions = *geoTorsions(aatype, positions, mask)
	g.PseudoBeta, g.PseudoBetaMask = geoPseudoBeta(aatype, positions, mask)
	return g, nil
}

// GroundTruthFromStructure derives the ground truth of a structure read by
// package protein, converting its coordinates to T.
func GroundTruthFromStructure[T num.Float](s *protein.Structure) (*GroundTruth[T], error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("alphafold: ground truth: %w", err)
	}
	return NewGroundTruth(s.AAType, geoConvert[T](s.Positions), geoConvert[T](s.Mask))
}

func geoConvert[T num.Float](x []float64) []T {
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

// Reconstruct rebuilds all atoms from the ground-truth backbone frames and
// torsion angles with AF2's ideal geometry (ReconstructAtom14) and returns
// the group frames [N·8], the atom14 positions [N,14,3] in Å and the atoms
// backed by present ground truth [N,14] (ReconstructionMask). Comparing the
// positions with Atom14.Positions under that mask measures how far a real
// structure is from ideal bond geometry.
func (g *GroundTruth[T]) Reconstruct() (frames []rigid.Rigid[T], atom14, mask []T, err error) {
	n := len(g.AAType)
	bb := make([]rigid.Rigid[T], n)
	bbExists := make([]T, n)
	for i := range n {
		bb[i] = g.Groups.Frames[i*geoNG]
		bbExists[i] = g.Groups.Exists[i*geoNG]
	}
	frames, atom14, err = ReconstructAtom14(g.AAType, bb, g.Torsions.SinCos)
	if err != nil {
		return nil, nil, nil, err
	}
	mask, err = ReconstructionMask(g.AAType, g.Atom14.Exists, bbExists, g.Torsions.Mask)
	if err != nil {
		return nil, nil, nil, err
	}
	return frames, atom14, mask, nil
}
