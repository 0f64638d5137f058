// Package residue holds AlphaFold2's residue constants (the Python module
// alphafold/common/residue_constants.py), typed for Go: residue types and
// their one- and three-letter codes, the atom37 and atom14 atom layouts and
// the maps between them, atom-existence masks, the literature (ideal) atom
// positions of every rigid group, chi-angle definitions, π-periodic chi
// angles, ambiguous (renameable) atoms, and the tables derived from them that
// Algorithms 24 and 25 of the AF2 supplement read: the default frame of each
// rigid group, the rigid group of each atom14 slot and the atom positions in
// their group's frame.
//
// # Conventions
//
// Residue types are indexed in AF2's order ARNDCQEGHILKMFPSTWYV (0..19);
// index 20 (Unk) is the unknown type "X"/"UNK". atom37 is AF2's fixed list of
// 37 heavy-atom names (N, CA, C, CB, O, CG, ..., OXT); atom14 is the compact
// per-residue layout of at most 14 heavy atoms (backbone N, CA, C, O first).
// Rigid groups are 0 backbone, 1 pre-ω, 2 φ, 3 ψ, 4..7 χ1..χ4. Positions
// are in ångström. Rotation matrices act on column vectors, and a 4×4 frame
// [[R, t], [0 0 0 1]] maps group-local coordinates to the parent frame.
//
// Tables are returned by value (Go arrays) or as fresh slices, so callers
// can never change the package's constants. The derived tables are computed
// in float64 on every call from the literature positions, the way AF2's
// _make_rigid_group_constants derives them; AF2 stores them in float32, and
// rounding these values to float32 reproduces its tables.
//
// The package has no compute dependencies; it does not hold
// stereo_chemical_props.txt (per-bond ideal lengths and angles), only the
// between-residue peptide-bond constants AF2 keeps in code.
package residue
