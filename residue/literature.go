package residue

// LiteratureAtom is one entry of AF2's rigid_group_atom_positions: an atom,
// the rigid group it moves with, and its ideal position in that group's
// frame, in ångström.
//
// The position is relative to the group's frame: the backbone frame has its
// origin at CA, x along CA→C and N in the xy plane; the other frames have
// their origin at the end atom of the rotation axis, x along the axis and the
// atom that defines the torsion in the xy plane with positive y.
type LiteratureAtom struct {
	Name  string
	Group int
	Pos   [3]float64
}

// literature is AF2's rigid_group_atom_positions in Restypes order.
var literature = [NumRestypes][]LiteratureAtom{
	Ala: {
		{"N", 0, [3]float64{-0.525, 1.363, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.526, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.529, -0.774, -1.205}},
		{"O", 3, [3]float64{0.627, 1.062, 0.000}},
	},
	Arg: {
		{"N", 0, [3]float64{-0.524, 1.362, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.525, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.524, -0.778, -1.209}},
		{"O", 3, [3]float64{0.626, 1.062, 0.000}},
		{"CG", 4, [3]float64{0.616, 1.390, -0.000}},
		{"CD", 5, [3]float64{0.564, 1.414, 0.000}},
		{"NE", 6, [3]float64{0.539, 1.357, -0.000}},
		{"NH1", 7, [3]float64{0.206, 2.301, 0.000}},
		{"NH2", 7, [3]float64{2.078, 0.978, -0.000}},
		{"CZ", 7, [3]float64{0.758, 1.093, -0.000}},
	},
	Asn: {
		{"N", 0, [3]float64{-0.536, 1.357, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.526, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.531, -0.787, -1.200}},
		{"O", 3, [3]float64{0.625, 1.062, 0.000}},
		{"CG", 4, [3]float64{0.584, 1.399, 0.000}},
		{"ND2", 5, [3]float64{0.593, -1.188, 0.001}},
		{"OD1", 5, [3]float64{0.633, 1.059, 0.000}},
	},
	Asp: {
		{"N", 0, [3]float64{-0.525, 1.362, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.527, 0.000, -0.000}},
		{"CB", 0, [3]float64{-0.526, -0.778, -1.208}},
		{"O", 3, [3]float64{0.626, 1.062, -0.000}},
		{"CG", 4, [3]float64{0.593, 1.398, -0.000}},
		{"OD1", 5, [3]float64{0.610, 1.091, 0.000}},
		{"OD2", 5, [3]float64{0.592, -1.101, -0.003}},
	},
	Cys: {
		{"N", 0, [3]float64{-0.522, 1.362, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.524, 0.000, 0.000}},
		{"CB", 0, [3]float64{-0.519, -0.773, -1.212}},
		{"O", 3, [3]float64{0.625, 1.062, -0.000}},
		{"SG", 4, [3]float64{0.728, 1.653, 0.000}},
	},
	Gln: {
		{"N", 0, [3]float64{-0.526, 1.361, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.526, 0.000, 0.000}},
		{"CB", 0, [3]float64{-0.525, -0.779, -1.207}},
		{"O", 3, [3]float64{0.626, 1.062, -0.000}},
		{"CG", 4, [3]float64{0.615, 1.393, 0.000}},
		{"CD", 5, [3]float64{0.587, 1.399, -0.000}},
		{"NE2", 6, [3]float64{0.593, -1.189, -0.001}},
		{"OE1", 6, [3]float64{0.634, 1.060, 0.000}},
	},
	Glu: {
		{"N", 0, [3]float64{-0.528, 1.361, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.526, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.526, -0.781, -1.207}},
		{"O", 3, [3]float64{0.626, 1.062, 0.000}},
		{"CG", 4, [3]float64{0.615, 1.392, 0.000}},
		{"CD", 5, [3]float64{0.600, 1.397, 0.000}},
		{"OE1", 6, [3]float64{0.607, 1.095, -0.000}},
		{"OE2", 6, [3]float64{0.589, -1.104, -0.001}},
	},
	Gly: {
		{"N", 0, [3]float64{-0.572, 1.337, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.517, -0.000, -0.000}},
		{"O", 3, [3]float64{0.626, 1.062, -0.000}},
	},
	His: {
		{"N", 0, [3]float64{-0.527, 1.360, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.525, 0.000, 0.000}},
		{"CB", 0, [3]float64{-0.525, -0.778, -1.208}},
		{"O", 3, [3]float64{0.625, 1.063, 0.000}},
		{"CG", 4, [3]float64{0.600, 1.370, -0.000}},
		{"CD2", 5, [3]float64{0.889, -1.021, 0.003}},
		{"ND1", 5, [3]float64{0.744, 1.160, -0.000}},
		{"CE1", 5, [3]float64{2.030, 0.851, 0.002}},
		{"NE2", 5, [3]float64{2.145, -0.466, 0.004}},
	},
	Ile: {
		{"N", 0, [3]float64{-0.493, 1.373, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.527, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.536, -0.793, -1.213}},
		{"O", 3, [3]float64{0.627, 1.062, -0.000}},
		{"CG1", 4, [3]float64{0.534, 1.437, -0.000}},
		{"CG2", 4, [3]float64{0.540, -0.785, -1.199}},
		{"CD1", 5, [3]float64{0.619, 1.391, 0.000}},
	},
	Leu: {
		{"N", 0, [3]float64{-0.520, 1.363, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.525, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.522, -0.773, -1.214}},
		{"O", 3, [3]float64{0.625, 1.063, -0.000}},
		{"CG", 4, [3]float64{0.678, 1.371, 0.000}},
		{"CD1", 5, [3]float64{0.530, 1.430, -0.000}},
		{"CD2", 5, [3]float64{0.535, -0.774, 1.200}},
	},
	Lys: {
		{"N", 0, [3]float64{-0.526, 1.362, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.526, 0.000, 0.000}},
		{"CB", 0, [3]float64{-0.524, -0.778, -1.208}},
		{"O", 3, [3]float64{0.626, 1.062, -0.000}},
		{"CG", 4, [3]float64{0.619, 1.390, 0.000}},
		{"CD", 5, [3]float64{0.559, 1.417, 0.000}},
		{"CE", 6, [3]float64{0.560, 1.416, 0.000}},
		{"NZ", 7, [3]float64{0.554, 1.387, 0.000}},
	},
	Met: {
		{"N", 0, [3]float64{-0.521, 1.364, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.525, 0.000, 0.000}},
		{"CB", 0, [3]float64{-0.523, -0.776, -1.210}},
		{"O", 3, [3]float64{0.625, 1.062, -0.000}},
		{"CG", 4, [3]float64{0.613, 1.391, -0.000}},
		{"SD", 5, [3]float64{0.703, 1.695, 0.000}},
		{"CE", 6, [3]float64{0.320, 1.786, -0.000}},
	},
	Phe: {
		{"N", 0, [3]float64{-0.518, 1.363, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.524, 0.000, -0.000}},
		{"CB", 0, [3]float64{-0.525, -0.776, -1.212}},
		{"O", 3, [3]float64{0.626, 1.062, -0.000}},
		{"CG", 4, [3]float64{0.607, 1.377, 0.000}},
		{"CD1", 5, [3]float64{0.709, 1.195, -0.000}},
		{"CD2", 5, [3]float64{0.706, -1.196, 0.000}},
		{"CE1", 5, [3]float64{2.102, 1.198, -0.000}},
		{"CE2", 5, [3]float64{2.098, -1.201, -0.000}},
		{"CZ", 5, [3]float64{2.794, -0.003, -0.001}},
	},
	Pro: {
		{"N", 0, [3]float64{-0.566, 1.351, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.527, -0.000, 0.000}},
		{"CB", 0, [3]float64{-0.546, -0.611, -1.293}},
		{"O", 3, [3]float64{0.621, 1.066, 0.000}},
		{"CG", 4, [3]float64{0.382, 1.445, 0.0}},
		// AF2 keeps the older value (0.427, 1.440, 0.0) commented out and
		// uses this one, with the angle made 2 degrees larger by hand.
		{"CD", 5, [3]float64{0.477, 1.424, 0.0}},
	},
	Ser: {
		{"N", 0, [3]float64{-0.529, 1.360, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.525, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.518, -0.777, -1.211}},
		{"O", 3, [3]float64{0.626, 1.062, -0.000}},
		{"OG", 4, [3]float64{0.503, 1.325, 0.000}},
	},
	Thr: {
		{"N", 0, [3]float64{-0.517, 1.364, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.526, 0.000, -0.000}},
		{"CB", 0, [3]float64{-0.516, -0.793, -1.215}},
		{"O", 3, [3]float64{0.626, 1.062, 0.000}},
		{"CG2", 4, [3]float64{0.550, -0.718, -1.228}},
		{"OG1", 4, [3]float64{0.472, 1.353, 0.000}},
	},
	Trp: {
		{"N", 0, [3]float64{-0.521, 1.363, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.525, -0.000, 0.000}},
		{"CB", 0, [3]float64{-0.523, -0.776, -1.212}},
		{"O", 3, [3]float64{0.627, 1.062, 0.000}},
		{"CG", 4, [3]float64{0.609, 1.370, -0.000}},
		{"CD1", 5, [3]float64{0.824, 1.091, 0.000}},
		{"CD2", 5, [3]float64{0.854, -1.148, -0.005}},
		{"CE2", 5, [3]float64{2.186, -0.678, -0.007}},
		{"CE3", 5, [3]float64{0.622, -2.530, -0.007}},
		{"NE1", 5, [3]float64{2.140, 0.690, -0.004}},
		{"CH2", 5, [3]float64{3.028, -2.890, -0.013}},
		{"CZ2", 5, [3]float64{3.283, -1.543, -0.011}},
		{"CZ3", 5, [3]float64{1.715, -3.389, -0.011}},
	},
	Tyr: {
		{"N", 0, [3]float64{-0.522, 1.362, 0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.524, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.522, -0.776, -1.213}},
		{"O", 3, [3]float64{0.627, 1.062, -0.000}},
		{"CG", 4, [3]float64{0.607, 1.382, -0.000}},
		{"CD1", 5, [3]float64{0.716, 1.195, -0.000}},
		{"CD2", 5, [3]float64{0.713, -1.194, -0.001}},
		{"CE1", 5, [3]float64{2.107, 1.200, -0.002}},
		{"CE2", 5, [3]float64{2.104, -1.201, -0.003}},
		{"OH", 5, [3]float64{4.168, -0.002, -0.005}},
		{"CZ", 5, [3]float64{2.791, -0.001, -0.003}},
	},
	Val: {
		{"N", 0, [3]float64{-0.494, 1.373, -0.000}},
		{"CA", 0, [3]float64{0.000, 0.000, 0.000}},
		{"C", 0, [3]float64{1.527, -0.000, -0.000}},
		{"CB", 0, [3]float64{-0.533, -0.795, -1.213}},
		{"O", 3, [3]float64{0.627, 1.062, -0.000}},
		{"CG1", 4, [3]float64{0.540, 1.429, -0.000}},
		{"CG2", 4, [3]float64{0.533, -0.776, 1.203}},
	},
}

// LiteraturePositions returns AF2's rigid_group_atom_positions entries of a
// residue type (a fresh slice, in AF2's listing order), or nil for Unk and
// indices out of range.
func LiteraturePositions(restype int) []LiteratureAtom {
	if restype < 0 || restype >= NumRestypes {
		return nil
	}
	return append([]LiteratureAtom(nil), literature[restype]...)
}

// chiAtoms is AF2's chi_angles_atoms in Restypes order: the four atoms that
// define each chi angle.
var chiAtoms = [NumRestypes][][4]string{
	Ala: nil,
	// χ5 of arginine is always 0 ± 5 degrees, so AF2 leaves it out.
	Arg: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD"}, {"CB", "CG", "CD", "NE"}, {"CG", "CD", "NE", "CZ"}},
	Asn: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "OD1"}},
	Asp: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "OD1"}},
	Cys: {{"N", "CA", "CB", "SG"}},
	Gln: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD"}, {"CB", "CG", "CD", "OE1"}},
	Glu: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD"}, {"CB", "CG", "CD", "OE1"}},
	Gly: nil,
	His: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "ND1"}},
	Ile: {{"N", "CA", "CB", "CG1"}, {"CA", "CB", "CG1", "CD1"}},
	Leu: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD1"}},
	Lys: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD"}, {"CB", "CG", "CD", "CE"}, {"CG", "CD", "CE", "NZ"}},
	Met: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "SD"}, {"CB", "CG", "SD", "CE"}},
	Phe: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD1"}},
	Pro: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD"}},
	Ser: {{"N", "CA", "CB", "OG"}},
	Thr: {{"N", "CA", "CB", "OG1"}},
	Trp: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD1"}},
	Tyr: {{"N", "CA", "CB", "CG"}, {"CA", "CB", "CG", "CD1"}},
	Val: {{"N", "CA", "CB", "CG1"}},
}

// ChiAnglesAtoms returns the four atom names of each chi angle of a residue
// type, χ1 first (AF2's chi_angles_atoms; a fresh slice, nil for types
// without chi angles, for Unk and for indices out of range).
func ChiAnglesAtoms(restype int) [][4]string {
	if restype < 0 || restype >= NumRestypes {
		return nil
	}
	return append([][4]string(nil), chiAtoms[restype]...)
}

// ChiAnglesMask returns, per residue type, 1 for every chi angle the type
// has (AF2's chi_angles_mask, with a row of zeros appended for Unk as AF2's
// data pipeline does).
func ChiAnglesMask() [NumRestypesWithX][NumChi]float64 {
	var t [NumRestypesWithX][NumChi]float64
	for r := 0; r < NumRestypes; r++ {
		for k := range chiAtoms[r] {
			t[r][k] = 1
		}
	}
	return t
}

// ChiPiPeriodic returns, per residue type, 1 for the chi angles that are
// π-periodic because the atoms they move are symmetric (AF2's
// chi_pi_periodic: χ2 of Asp, Phe and Tyr, χ3 of Glu).
func ChiPiPeriodic() [NumRestypesWithX][NumChi]float64 {
	var t [NumRestypesWithX][NumChi]float64
	t[Asp][1] = 1
	t[Glu][2] = 1
	t[Phe][1] = 1
	t[Tyr][1] = 1
	return t
}

// ambiguousSwaps is AF2's residue_atom_renaming_swaps.
var ambiguousSwaps = [NumRestypes][][2]string{
	Asp: {{"OD1", "OD2"}},
	Glu: {{"OE1", "OE2"}},
	Phe: {{"CD1", "CD2"}, {"CE1", "CE2"}},
	Tyr: {{"CD1", "CD2"}, {"CE1", "CE2"}},
}

// AtomRenamingSwaps returns the pairs of atom names of a residue type that
// are interchangeable by symmetry (AF2's residue_atom_renaming_swaps: Asp
// OD1↔OD2, Glu OE1↔OE2, Phe and Tyr CD1↔CD2 and CE1↔CE2); nil for the other
// types.
func AtomRenamingSwaps(restype int) [][2]string {
	if restype < 0 || restype >= NumRestypes {
		return nil
	}
	return append([][2]string(nil), ambiguousSwaps[restype]...)
}

// Atom14IsAmbiguous returns, per residue type, 1 on the atom14 slots of
// atoms that take part in a renaming swap (AF2's
// restype_atom14_is_ambiguous).
func Atom14IsAmbiguous() [NumRestypesWithX][NumAtom14]float64 {
	var t [NumRestypesWithX][NumAtom14]float64
	for r, swaps := range ambiguousSwaps {
		for _, s := range swaps {
			i, _ := Atom14Index(r, s[0])
			j, _ := Atom14Index(r, s[1])
			t[r][i], t[r][j] = 1, 1
		}
	}
	return t
}

// Atom14SwapPermutation returns, per residue type, the permutation of the
// atom14 slots that applies the renaming swaps: slot i of the renamed residue
// takes the atom in slot perm[i] (the identity for types without swaps).
// AF2 applies it to build the alternative ground truth (atom14_alt_gt_positions).
func Atom14SwapPermutation() [NumRestypesWithX][NumAtom14]int {
	var t [NumRestypesWithX][NumAtom14]int
	for r := range t {
		for i := range t[r] {
			t[r][i] = i
		}
	}
	for r, swaps := range ambiguousSwaps {
		for _, s := range swaps {
			i, _ := Atom14Index(r, s[0])
			j, _ := Atom14Index(r, s[1])
			t[r][i], t[r][j] = j, i
		}
	}
	return t
}
