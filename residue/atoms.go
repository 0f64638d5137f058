package residue

// atomTypes is AF2's atom37 order (atom_types).
var atomTypes = [NumAtomTypes]string{
	"N", "CA", "C", "CB", "O", "CG", "CG1", "CG2", "OG", "OG1", "SG", "CD",
	"CD1", "CD2", "ND1", "ND2", "OD1", "OD2", "SD", "CE", "CE1", "CE2", "CE3",
	"NE", "NE1", "NE2", "OE1", "OE2", "CH2", "NH1", "NH2", "OH", "CZ", "CZ2",
	"CZ3", "NZ", "OXT",
}

// atom14Names is AF2's restype_name_to_atom14_names in Restypes order, then
// UNK; "" marks an unused slot.
var atom14Names = [NumRestypesWithX][NumAtom14]string{
	Ala: {"N", "CA", "C", "O", "CB"},
	Arg: {"N", "CA", "C", "O", "CB", "CG", "CD", "NE", "CZ", "NH1", "NH2"},
	Asn: {"N", "CA", "C", "O", "CB", "CG", "OD1", "ND2"},
	Asp: {"N", "CA", "C", "O", "CB", "CG", "OD1", "OD2"},
	Cys: {"N", "CA", "C", "O", "CB", "SG"},
	Gln: {"N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "NE2"},
	Glu: {"N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "OE2"},
	Gly: {"N", "CA", "C", "O"},
	His: {"N", "CA", "C", "O", "CB", "CG", "ND1", "CD2", "CE1", "NE2"},
	Ile: {"N", "CA", "C", "O", "CB", "CG1", "CG2", "CD1"},
	Leu: {"N", "CA", "C", "O", "CB", "CG", "CD1", "CD2"},
	Lys: {"N", "CA", "C", "O", "CB", "CG", "CD", "CE", "NZ"},
	Met: {"N", "CA", "C", "O", "CB", "CG", "SD", "CE"},
	Phe: {"N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ"},
	Pro: {"N", "CA", "C", "O", "CB", "CG", "CD"},
	Ser: {"N", "CA", "C", "O", "CB", "OG"},
	Thr: {"N", "CA", "C", "O", "CB", "OG1", "CG2"},
	Trp: {"N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "NE1", "CE2", "CE3", "CZ2", "CZ3", "CH2"},
	Tyr: {"N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ", "OH"},
	Val: {"N", "CA", "C", "O", "CB", "CG1", "CG2"},
	Unk: {},
}

// Atom37 indices of the backbone atoms and of OXT.
const (
	AtomN   = 0
	AtomCA  = 1
	AtomC   = 2
	AtomCB  = 3
	AtomO   = 4
	AtomOXT = 36
)

// AtomTypes returns AF2's atom37 atom names in order (atom_types):
// N, CA, C, CB, O, CG, CG1, ..., NZ, OXT.
func AtomTypes() [NumAtomTypes]string { return atomTypes }

// AtomTypeIndex returns the atom37 index of an atom name (AF2's atom_order)
// and whether the name is an atom37 name.
func AtomTypeIndex(name string) (int, bool) {
	for i, n := range atomTypes {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// Atom14Names returns the atom14 atom names of a residue type (AF2's
// restype_name_to_atom14_names); unused slots are "". Unk and indices out of
// range have no atoms.
func Atom14Names(restype int) [NumAtom14]string {
	if restype < 0 || restype >= NumRestypesWithX {
		return [NumAtom14]string{}
	}
	return atom14Names[restype]
}

// Atom14Index returns the atom14 slot of an atom name in a residue type and
// whether the residue type has that atom.
func Atom14Index(restype int, name string) (int, bool) {
	if name == "" || restype < 0 || restype >= NumRestypesWithX {
		return 0, false
	}
	for i, n := range atom14Names[restype] {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// Atom14ToAtom37 returns, per residue type, the atom37 index of every atom14
// slot (AF2's restype_atom14_to_atom37; 0 for unused slots and for Unk).
func Atom14ToAtom37() [NumRestypesWithX][NumAtom14]int {
	var t [NumRestypesWithX][NumAtom14]int
	for r := 0; r < NumRestypes; r++ {
		for i, n := range atom14Names[r] {
			if n != "" {
				t[r][i], _ = AtomTypeIndex(n)
			}
		}
	}
	return t
}

// Atom37ToAtom14 returns, per residue type, the atom14 slot of every atom37
// index (AF2's restype_atom37_to_atom14; 0 where the residue type lacks the
// atom, and for Unk).
func Atom37ToAtom14() [NumRestypesWithX][NumAtomTypes]int {
	var t [NumRestypesWithX][NumAtomTypes]int
	for r := 0; r < NumRestypes; r++ {
		for i, n := range atom14Names[r] {
			if n != "" {
				a, _ := AtomTypeIndex(n)
				t[r][a] = i
			}
		}
	}
	return t
}

// Atom14Mask returns, per residue type, 1 for every atom14 slot the type
// has and 0 otherwise (AF2's restype_atom14_mask; all 0 for Unk).
func Atom14Mask() [NumRestypesWithX][NumAtom14]float64 {
	var t [NumRestypesWithX][NumAtom14]float64
	for r := 0; r < NumRestypes; r++ {
		for i, n := range atom14Names[r] {
			if n != "" {
				t[r][i] = 1
			}
		}
	}
	return t
}

// Atom37Mask returns, per residue type, 1 for every atom37 atom the type has
// and 0 otherwise (AF2's restype_atom37_mask; OXT is 0 for every type, and
// Unk is all 0).
func Atom37Mask() [NumRestypesWithX][NumAtomTypes]float64 {
	var t [NumRestypesWithX][NumAtomTypes]float64
	for r := 0; r < NumRestypes; r++ {
		for _, n := range atom14Names[r] {
			if n != "" {
				a, _ := AtomTypeIndex(n)
				t[r][a] = 1
			}
		}
	}
	return t
}

// Element returns the chemical element symbol of a protein heavy-atom name
// ("CA" → "C", "SD" → "S", "OXT" → "O"): its first letter, as AF2 writes
// the element column of PDB files. It returns "" for an empty name.
func Element(atomName string) string {
	if atomName == "" {
		return ""
	}
	return atomName[:1]
}
