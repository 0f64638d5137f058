package residue

// Residue-type indices in AF2's order ARNDCQEGHILKMFPSTWYV; Unk (20) is the
// unknown residue type.
const (
	Ala = iota
	Arg
	Asn
	Asp
	Cys
	Gln
	Glu
	Gly
	His
	Ile
	Leu
	Lys
	Met
	Phe
	Pro
	Ser
	Thr
	Trp
	Tyr
	Val
	Unk
)

// Sizes of AF2's residue tables.
const (
	// NumRestypes is the number of standard residue types (AF2's restype_num).
	NumRestypes = 20
	// NumRestypesWithX counts the unknown type as well.
	NumRestypesWithX = 21
	// NumAtomTypes is the size of the atom37 layout (AF2's atom_type_num).
	NumAtomTypes = 37
	// NumAtom14 is the size of the atom14 layout.
	NumAtom14 = 14
	// NumGroups is the number of rigid groups per residue
	// (backbone, pre-ω, φ, ψ, χ1..χ4).
	NumGroups = 8
	// NumChi is the largest number of chi angles of a residue type.
	NumChi = 4
	// NumTorsions is the number of torsion angles per residue
	// (pre-ω, φ, ψ, χ1..χ4), the angles of groups 1..7.
	NumTorsions = 7
)

// Restypes is AF2's residue-type order as one-letter codes (restypes).
const Restypes = "ARNDCQEGHILKMFPSTWYV"

// RestypesWithX is Restypes followed by the unknown type X (restypes_with_x).
const RestypesWithX = Restypes + "X"

// threeLetter lists the three-letter codes in Restypes order, then UNK.
var threeLetter = [NumRestypesWithX]string{
	"ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
	"LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
	"UNK",
}

// Index returns the residue-type index of a one-letter code (upper case), or
// Unk for any other byte.
func Index(letter byte) int {
	for i := 0; i < NumRestypes; i++ {
		if Restypes[i] == letter {
			return i
		}
	}
	return Unk
}

// Letter returns the one-letter code of a residue type, 'X' for Unk and for
// indices out of range.
func Letter(restype int) byte {
	if restype < 0 || restype >= NumRestypes {
		return 'X'
	}
	return Restypes[restype]
}

// ThreeLetter returns the three-letter code of a residue type ("ALA"), or
// "UNK" for Unk and for indices out of range.
func ThreeLetter(restype int) string {
	if restype < 0 || restype >= NumRestypes {
		return "UNK"
	}
	return threeLetter[restype]
}

// FromThreeLetter returns the residue-type index of a three-letter code of a
// standard amino acid ("ALA"), or Unk for any other name (AF2 maps every
// non-standard name, MSE included, to the unknown type).
func FromThreeLetter(name string) int {
	for i := 0; i < NumRestypes; i++ {
		if threeLetter[i] == name {
			return i
		}
	}
	return Unk
}

// OneToThree maps a one-letter code to its three-letter code (AF2's
// restype_1to3); any other byte maps to "UNK".
func OneToThree(letter byte) string { return ThreeLetter(Index(letter)) }

// ThreeToOne maps a three-letter code to its one-letter code (AF2's
// restype_3to1); any other name maps to 'X'.
func ThreeToOne(name string) byte { return Letter(FromThreeLetter(name)) }
