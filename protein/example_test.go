package protein_test

import (
	"fmt"
	"strings"

	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/residue"
)

// Two residues of chain E of a real entry (pept.pdb), with a water and a
// hydrogen that the reader leaves out.
const examplePDB = `HEADER    EXAMPLE
ATOM      1  N   ASP E   1       4.868 -17.809  25.188  1.00 34.37      E    N
ATOM      2  CA  ASP E   1       3.984 -16.723  25.698  1.00 33.85      E    C
ATOM      3  CB  ASP E   1       4.633 -16.020  26.888  1.00 35.91      E    C
ATOM      4  CG  ASP E   1       6.016 -15.468  26.567  1.00 39.23      E    C
ATOM      5  OD1 ASP E   1       6.340 -14.367  27.058  1.00 42.40      E    O
ATOM      6  OD2 ASP E   1       6.787 -16.131  25.836  1.00 39.28      E    O
ATOM      7  C   ASP E   1       3.789 -15.753  24.546  1.00 33.96      E    C
ATOM      8  O   ASP E   1       4.456 -15.889  23.517  1.00 35.44      E    O
ATOM      9  N   CYS E   2       2.908 -14.771  24.711  1.00 31.94      E    N
ATOM     10  CA  CYS E   2       2.638 -13.825  23.633  1.00 29.67      E    C
ATOM     11  HA  CYS E   2       2.700 -14.000  22.600  1.00 29.67      E    H
ATOM     12  CB  CYS E   2       1.198 -13.996  23.132  1.00 28.73      E    C
ATOM     13  SG  CYS E   2       0.725 -15.681  22.638  1.00 25.85      E    S
ATOM     14  C   CYS E   2       2.842 -12.366  24.012  1.00 30.31      E    C
ATOM     15  O   CYS E   2       3.025 -12.039  25.188  1.00 30.74      E    O
HETATM   16  O   HOH W 101       9.000   9.000   9.000  1.00 20.00           O
END
`

func ExampleReadPDB() {
	s, err := protein.ReadPDB(strings.NewReader(examplePDB), "E")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Len(), "residues:", s.Sequence(), "numbered", s.ResidueIndex, "chains", s.Chains())
	sg, _ := residue.AtomTypeIndex("SG")
	p := s.Positions[3*(1*residue.NumAtomTypes+sg):]
	fmt.Printf("CYS SG at (%.3f, %.3f, %.3f) Å, B = %.2f\n", p[0], p[1], p[2], s.BFactors[1*residue.NumAtomTypes+sg])

	_, err = protein.ReadPDB(strings.NewReader(examplePDB), "B")
	fmt.Println(err)
	// Output:
	// 2 residues: DC numbered [1 2] chains [E]
	// CYS SG at (0.725, -15.681, 22.638) Å, B = 25.85
	// protein: pdb: chain "B" has no residue with a protein heavy atom (chains in the file: "E", "W"): protein: malformed input
}

func ExampleWritePDB() {
	s, err := protein.ReadPDB(strings.NewReader(examplePDB), "E")
	if err != nil {
		fmt.Println(err)
		return
	}
	// A prediction writes its per-residue confidence in the B-factor column.
	if err := s.SetPLDDT([]float64{91.5, 78.25}); err != nil {
		fmt.Println(err)
		return
	}
	var b strings.Builder
	if err := protein.WritePDB(&b, s); err != nil {
		fmt.Println(err)
		return
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for _, l := range append(lines[:3], lines[len(lines)-4:]...) {
		fmt.Println(strings.TrimRight(l, " "))
	}
	// Output:
	// MODEL        1
	// ATOM      1  N   ASP E   1       4.868 -17.809  25.188  1.00 91.50           N
	// ATOM      2  CA  ASP E   1       3.984 -16.723  25.698  1.00 91.50           C
	// ATOM     14  SG  CYS E   2       0.725 -15.681  22.638  1.00 78.25           S
	// TER      15      CYS E   2
	// ENDMDL
	// END
}

func ExampleWriteMMCIF() {
	s, err := protein.ReadPDB(strings.NewReader(examplePDB), "E")
	if err != nil {
		fmt.Println(err)
		return
	}
	var b strings.Builder
	if err := protein.WriteMMCIF(&b, s, "example"); err != nil {
		fmt.Println(err)
		return
	}
	back, err := protein.ReadMMCIF(strings.NewReader(b.String()), protein.AllChains)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.SplitN(b.String(), "\n", 2)[0])
	fmt.Println("read back:", back.Sequence(), back.ResidueIndex, back.Chains())
	// Output:
	// data_example
	// read back: DC [1 2] [E]
}

func ExampleReadMMCIF() {
	const cif = `data_tiny
loop_
_atom_site.group_PDB
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.auth_asym_id
_atom_site.auth_seq_id
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.occupancy
_atom_site.B_iso_or_equiv
ATOM N  . GLY A 10 0.000 1.000 0.000 1.00 10.0
ATOM CA A GLY A 10 1.200 1.500 0.000 0.30 11.0
ATOM CA B GLY A 10 1.250 1.450 0.100 0.70 12.0
ATOM C  . GLY A 10 2.400 1.000 0.000 1.00 13.0
`
	s, err := protein.ReadMMCIF(strings.NewReader(cif), "A")
	if err != nil {
		fmt.Println(err)
		return
	}
	// The alternate location of higher occupancy (B) is kept.
	fmt.Println(s.Sequence(), s.ResidueIndex, s.Positions[3*residue.AtomCA:3*residue.AtomCA+3], s.BFactors[residue.AtomCA])
	// Output:
	// G [10] [1.25 1.4500000476837158 0.10000000149011612] 12
}
