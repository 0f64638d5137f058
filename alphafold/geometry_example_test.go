package alphafold_test

import (
	"fmt"
	"math"
	"strings"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/protein"
)

// The first three residues of chain E of a real entry (pept.pdb).
const examplePept = `ATOM      1  N   ASP E   1       4.868 -17.809  25.188  1.00 34.37      E    N
ATOM      2  CA  ASP E   1       3.984 -16.723  25.698  1.00 33.85      E    C
ATOM      3  CB  ASP E   1       4.633 -16.020  26.888  1.00 35.91      E    C
ATOM      4  CG  ASP E   1       6.016 -15.468  26.567  1.00 39.23      E    C
ATOM      5  OD1 ASP E   1       6.340 -14.367  27.058  1.00 42.40      E    O
ATOM      6  OD2 ASP E   1       6.787 -16.131  25.836  1.00 39.28      E    O
ATOM      7  C   ASP E   1       3.789 -15.753  24.546  1.00 33.96      E    C
ATOM      8  O   ASP E   1       4.456 -15.889  23.517  1.00 35.44      E    O
ATOM      9  N   CYS E   2       2.908 -14.771  24.711  1.00 31.94      E    N
ATOM     10  CA  CYS E   2       2.638 -13.825  23.633  1.00 29.67      E    C
ATOM     11  CB  CYS E   2       1.198 -13.996  23.132  1.00 28.73      E    C
ATOM     12  SG  CYS E   2       0.725 -15.681  22.638  1.00 25.85      E    S
ATOM     13  C   CYS E   2       2.842 -12.366  24.012  1.00 30.31      E    C
ATOM     14  O   CYS E   2       3.025 -12.039  25.188  1.00 30.74      E    O
ATOM     15  N   ALA E   3       2.792 -11.504  22.996  1.00 30.15      E    N
ATOM     16  CA  ALA E   3       2.923 -10.056  23.151  1.00 30.15      E    C
ATOM     17  CB  ALA E   3       4.226  -9.566  22.552  1.00 30.82      E    C
ATOM     18  C   ALA E   3       1.736  -9.418  22.436  1.00 29.90      E    C
ATOM     19  O   ALA E   3       1.332  -9.867  21.362  1.00 28.16      E    O
`

func ExampleGroundTruthFromStructure() {
	s, err := protein.ReadPDB(strings.NewReader(examplePept), "E")
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := alphafold.GroundTruthFromStructure[float64](s)
	if err != nil {
		fmt.Println(err)
		return
	}
	deg := func(i, k int) float64 {
		sc := g.Torsions.SinCos[2*(7*i+k):]
		return math.Atan2(sc[0], sc[1]) * 180 / math.Pi
	}
	// Residue 2 (CYS): φ, ψ (stored as ψ through O, plus π) and χ1.
	fmt.Printf("CYS φ %.1f° ψ %.1f° χ1 %.1f°, masks %v\n", deg(1, 1), deg(1, 2), deg(1, 3), g.Torsions.Mask[7:11])
	// The backbone frame of residue 1: origin at CA.
	o := g.Groups.Frames[0].Trans
	fmt.Printf("ASP frame origin (%.3f, %.3f, %.3f) exists %v\n", o[0], o[1], o[2], g.Groups.Exists[0])

	// Rebuild every atom from the frames and torsions with AF2's ideal
	// geometry and compare with the experimental atoms.
	_, atom14, mask, err := g.Reconstruct()
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, n := 0.0, 0
	for i, m := range mask {
		if m == 1 {
			for j := range 3 {
				d := atom14[3*i+j] - g.Atom14.Positions[3*i+j]
				sum += d * d
			}
			n++
		}
	}
	fmt.Printf("all-atom RMSD %.2f Å over %d atoms\n", math.Sqrt(sum/float64(n)), n)
	// Output:
	// CYS φ -124.2° ψ 169.9° χ1 -53.6°, masks [1 1 1 1]
	// ASP frame origin (3.984, -16.723, 25.698) exists 1
	// all-atom RMSD 0.08 Å over 19 atoms
}
