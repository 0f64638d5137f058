package residue

import "math"

// Atom14ToRigidGroup returns, per residue type, the rigid group (0..7) each
// atom14 slot moves with (AF2's restype_atom14_to_rigid_group; 0 for unused
// slots and for Unk). It is the table Alg. 25 reads.
func Atom14ToRigidGroup() [NumRestypesWithX][NumAtom14]int {
	var t [NumRestypesWithX][NumAtom14]int
	for r := 0; r < NumRestypes; r++ {
		for _, a := range literature[r] {
			i, _ := Atom14Index(r, a.Name)
			t[r][i] = a.Group
		}
	}
	return t
}

// Atom37ToRigidGroup returns, per residue type, the rigid group of each
// atom37 atom (AF2's restype_atom37_to_rigid_group; 0 where absent).
func Atom37ToRigidGroup() [NumRestypesWithX][NumAtomTypes]int {
	var t [NumRestypesWithX][NumAtomTypes]int
	for r := 0; r < NumRestypes; r++ {
		for _, a := range literature[r] {
			i, _ := AtomTypeIndex(a.Name)
			t[r][i] = a.Group
		}
	}
	return t
}

// Atom14RigidGroupPositions returns, per residue type, the literature
// position of each atom14 atom in the frame of its rigid group, in ångström
// (AF2's restype_atom14_rigid_group_positions; 0 for unused slots and Unk).
// These are the positions Alg. 25 places with the group frames.
func Atom14RigidGroupPositions() [NumRestypesWithX][NumAtom14][3]float64 {
	var t [NumRestypesWithX][NumAtom14][3]float64
	for r := 0; r < NumRestypes; r++ {
		for _, a := range literature[r] {
			i, _ := Atom14Index(r, a.Name)
			t[r][i] = a.Pos
		}
	}
	return t
}

// Atom37RigidGroupPositions returns the atom37 form of
// Atom14RigidGroupPositions (AF2's restype_atom37_rigid_group_positions).
func Atom37RigidGroupPositions() [NumRestypesWithX][NumAtomTypes][3]float64 {
	var t [NumRestypesWithX][NumAtomTypes][3]float64
	for r := 0; r < NumRestypes; r++ {
		for _, a := range literature[r] {
			i, _ := AtomTypeIndex(a.Name)
			t[r][i] = a.Pos
		}
	}
	return t
}

// RigidGroupMask returns, per residue type, 1 for the rigid groups that move
// atoms or carry a torsion the type has: the backbone (0), ψ (3) and the chi
// groups of ChiAnglesMask (AF2's restype_rigidgroup_mask of atom37_to_frames;
// pre-ω and φ are 0). As in AF2, Unk has the backbone and ψ groups too (its
// frames are built from whatever backbone atoms it has).
func RigidGroupMask() [NumRestypesWithX][NumGroups]float64 {
	var t [NumRestypesWithX][NumGroups]float64
	chi := ChiAnglesMask()
	for r := range t {
		t[r][0] = 1
		t[r][3] = 1
	}
	for r := 0; r < NumRestypes; r++ {
		for k := 0; k < NumChi; k++ {
			t[r][4+k] = chi[r][k]
		}
	}
	return t
}

// RigidGroupDefaultFrame returns, per residue type and rigid group, the 4×4
// transform [[R, t], [0 0 0 1]] from the group's frame at torsion angle 0 to
// its parent frame (AF2's restype_rigid_group_default_frame, [21,8,4,4],
// translations in ångström), the default frames of Alg. 24.
//
// The parent of groups 1..4 (pre-ω, φ, ψ, χ1) is the backbone frame; the
// parent of χ2, χ3, χ4 is χ1, χ2, χ3. It is derived from the literature
// positions as AF2's _make_rigid_group_constants does: each frame has its
// x axis along a rotation axis and a reference atom in its xy plane
// (Gram–Schmidt on two vectors). Groups 0 and 1 are the identity; groups a
// type lacks, and every group of Unk, are all zero.
func RigidGroupDefaultFrame() [NumRestypesWithX][NumGroups][4][4]float64 {
	var t [NumRestypesWithX][NumGroups][4][4]float64
	chiMask := ChiAnglesMask()
	for r := 0; r < NumRestypes; r++ {
		pos := make(map[string][3]float64, len(literature[r]))
		for _, a := range literature[r] {
			pos[a.Name] = a.Pos
		}
		t[r][0] = identity4()
		t[r][1] = identity4()
		// φ frame: x along CA→N, through the backbone x axis.
		t[r][2] = frame4(sub(pos["N"], pos["CA"]), [3]float64{1, 0, 0}, pos["N"])
		// ψ frame: x along CA→C, with N on the negative y side.
		t[r][3] = frame4(sub(pos["C"], pos["CA"]), sub(pos["CA"], pos["N"]), pos["C"])
		if chiMask[r][0] == 1 {
			b := chiAtoms[r][0]
			t[r][4] = frame4(sub(pos[b[2]], pos[b[1]]), sub(pos[b[0]], pos[b[1]]), pos[b[2]])
		}
		// Each later chi axis starts at the origin of its parent chi frame
		// (the parent's axis-end atom) and ends at an atom given in that
		// frame, so the axis is that atom's position; the reference atom
		// (the parent's axis start) lies on the parent's negative x axis,
		// hence ey = (-1, 0, 0).
		for k := 1; k < NumChi; k++ {
			if chiMask[r][k] == 1 {
				end := pos[chiAtoms[r][k][2]]
				t[r][4+k] = frame4(end, [3]float64{-1, 0, 0}, end)
			}
		}
	}
	return t
}

func identity4() [4][4]float64 {
	return [4][4]float64{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
}

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }

func dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// frame4 is AF2's _make_rigid_transformation_4x4: ex normalised is the x
// axis, ey made perpendicular to it and normalised is the y axis, z = x × y,
// and translation is the origin.
func frame4(ex, ey, translation [3]float64) [4][4]float64 {
	n := math.Sqrt(dot(ex, ex))
	e0 := [3]float64{ex[0] / n, ex[1] / n, ex[2] / n}
	d := dot(ey, e0)
	e1 := [3]float64{ey[0] - d*e0[0], ey[1] - d*e0[1], ey[2] - d*e0[2]}
	n = math.Sqrt(dot(e1, e1))
	e1 = [3]float64{e1[0] / n, e1[1] / n, e1[2] / n}
	e2 := [3]float64{
		e0[1]*e1[2] - e0[2]*e1[1],
		e0[2]*e1[0] - e0[0]*e1[2],
		e0[0]*e1[1] - e0[1]*e1[0],
	}
	var m [4][4]float64
	for i := 0; i < 3; i++ {
		m[i] = [4]float64{e0[i], e1[i], e2[i], translation[i]}
	}
	m[3] = [4]float64{0, 0, 0, 1}
	return m
}
