// Package protein reads and writes protein structures, sequences and
// alignments: PDB and mmCIF files in AlphaFold2's atom37 layout, FASTA
// records and A3M multiple sequence alignments (with AF2's rules for
// insertions and deletion counts).
//
// # Structures
//
// ReadPDB and ReadMMCIF read one model of one chain (or of all chains) into
// a Structure: per residue its type in AF2's order (residue.Restypes, 20 for
// anything else), the atom37 coordinates in ångström with a presence mask,
// B factors, the residue number as written and the chain identifier. They
// follow the reader AF2 and OpenFold use (from_pdb_string, through
// Biopython), so the arrays equal theirs: ATOM and HETATM records are read,
// atoms without an atom37 name (hydrogens, ligand atoms) are ignored, the
// alternate location of highest occupancy is kept atom by atom, residues
// are not renumbered, and insertion codes and multi-model files are refused
// (ErrUnsupported). Malformed files give errors wrapping ErrFormat that
// name the line; no input makes the readers panic. The frames, torsion
// angles and other geometry AF2 derives from a structure are in package
// alphafold (GroundTruthFromStructure).
//
// WritePDB and WriteMMCIF write a Structure as one model with all its atoms,
// standard atom and residue names, element symbols and the B factors (a
// prediction's pLDDT after SetPLDDT); the PDB writer adds TER records after
// each chain and ENDMDL and END. Files written this way read back unchanged
// to their precision (three decimals for coordinates, two for B factors),
// here and in other parsers (the tests check with gemmi).
//
// # Sequences and alignments
//
// ParseFASTA reads FASTA records and ParseA3M the A3M alignments that
// HHblits, MMseqs2 and ColabFold write.
//
// The package depends only on the standard library and on package residue
// (and the shared numeric helpers): a researcher can read a structure or an
// alignment without loading any compute package.
package protein
