package residue_test

import (
	"math"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

func TestCodes(t *testing.T) {
	for i := 0; i < residue.NumRestypesWithX; i++ {
		l := residue.Letter(i)
		if residue.Index(l) != i {
			t.Errorf("Index(Letter(%d)=%q) = %d", i, l, residue.Index(l))
		}
		three := residue.ThreeLetter(i)
		if residue.FromThreeLetter(three) != i {
			t.Errorf("FromThreeLetter(%q) = %d, want %d", three, residue.FromThreeLetter(three), i)
		}
		if residue.OneToThree(l) != three || residue.ThreeToOne(three) != l {
			t.Errorf("1↔3 mismatch for %d: %q %q", i, l, three)
		}
	}
	for _, c := range []struct {
		one   byte
		three string
	}{{'A', "ALA"}, {'W', "TRP"}, {'Y', "TYR"}, {'Q', "GLN"}, {'E', "GLU"}, {'X', "UNK"}, {'B', "UNK"}} {
		if got := residue.OneToThree(c.one); got != c.three {
			t.Errorf("OneToThree(%q) = %q, want %q", c.one, got, c.three)
		}
	}
	if residue.FromThreeLetter("MSE") != residue.Unk || residue.Index('Z') != residue.Unk {
		t.Error("non-standard codes do not map to Unk")
	}
}

func TestAtomTables(t *testing.T) {
	at := residue.AtomTypes()
	if got := strings.Join(at[:6], " "); got != "N CA C CB O CG" || at[36] != "OXT" {
		t.Errorf("atom types start %q, end %q", got, at[36])
	}
	seen := map[string]bool{}
	for i, n := range at {
		if seen[n] {
			t.Errorf("atom type %q repeated", n)
		}
		seen[n] = true
		if j, ok := residue.AtomTypeIndex(n); !ok || j != i {
			t.Errorf("AtomTypeIndex(%q) = %d, %v", n, j, ok)
		}
	}
	a14to37 := residue.Atom14ToAtom37()
	a37to14 := residue.Atom37ToAtom14()
	m14 := residue.Atom14Mask()
	m37 := residue.Atom37Mask()
	// Heavy-atom counts of the 20 amino acids (standard chemistry, no OXT).
	counts := [residue.NumRestypesWithX]int{5, 11, 8, 8, 6, 9, 9, 4, 10, 8, 8, 9, 8, 11, 7, 6, 7, 14, 12, 7, 0}
	for r := 0; r < residue.NumRestypesWithX; r++ {
		names := residue.Atom14Names(r)
		n14, n37 := 0.0, 0.0
		for i := range m14[r] {
			n14 += m14[r][i]
		}
		for i := range m37[r] {
			n37 += m37[r][i]
		}
		if int(n14) != counts[r] || int(n37) != counts[r] {
			t.Errorf("%s: %v atom14 and %v atom37 atoms, want %d", residue.ThreeLetter(r), n14, n37, counts[r])
		}
		if r < residue.NumRestypes && strings.Join(names[:4], " ") != "N CA C O" {
			t.Errorf("%s: atom14 starts %v", residue.ThreeLetter(r), names[:4])
		}
		lit := residue.LiteraturePositions(r)
		if len(lit) != counts[r] {
			t.Errorf("%s: %d literature atoms, want %d", residue.ThreeLetter(r), len(lit), counts[r])
		}
		for _, a := range lit {
			if _, ok := residue.Atom14Index(r, a.Name); !ok {
				t.Errorf("%s: literature atom %s has no atom14 slot", residue.ThreeLetter(r), a.Name)
			}
		}
		for i, n := range names {
			if n == "" {
				continue
			}
			j := a14to37[r][i]
			if at[j] != n || a37to14[r][j] != i || m37[r][j] != 1 {
				t.Errorf("%s: atom14 slot %d (%s) ↔ atom37 %d (%s) inconsistent", residue.ThreeLetter(r), i, n, j, at[j])
			}
			if e := residue.Element(n); !strings.Contains("CNOS", e) {
				t.Errorf("%s: element of %s is %q", residue.ThreeLetter(r), n, e)
			}
		}
	}
	// Spot checks against AF2's tables.
	if a14to37[residue.Trp][13] != 28 || a14to37[residue.Tyr][11] != 31 || a37to14[residue.Arg][30] != 10 {
		t.Error("spot checks of atom14↔atom37 failed")
	}
}

// TestChiAndSwaps checks the chi-angle definitions against each other: each
// chi's atoms exist, and each chi axis continues the previous one (AF2's
// default-frame derivation relies on it).
func TestChiAndSwaps(t *testing.T) {
	mask := residue.ChiAnglesMask()
	pi := residue.ChiPiPeriodic()
	for r := 0; r < residue.NumRestypes; r++ {
		chis := residue.ChiAnglesAtoms(r)
		for k := 0; k < residue.NumChi; k++ {
			if want := k < len(chis); (mask[r][k] == 1) != want {
				t.Errorf("%s: chi mask %v for chi %d, %d chis", residue.ThreeLetter(r), mask[r][k], k+1, len(chis))
			}
			if pi[r][k] == 1 && mask[r][k] != 1 {
				t.Errorf("%s: π-periodic chi %d absent", residue.ThreeLetter(r), k+1)
			}
		}
		for k, c := range chis {
			for _, n := range c {
				if _, ok := residue.Atom14Index(r, n); !ok {
					t.Errorf("%s chi%d: atom %s missing", residue.ThreeLetter(r), k+1, n)
				}
			}
			if k > 0 && (c[0] != chis[k-1][1] || c[1] != chis[k-1][2] || c[2] != chis[k-1][3]) {
				t.Errorf("%s chi%d %v does not continue chi%d %v", residue.ThreeLetter(r), k+1, c, k, chis[k-1])
			}
		}
	}
	amb := residue.Atom14IsAmbiguous()
	perm := residue.Atom14SwapPermutation()
	n := 0
	for r := range amb {
		for i := range amb[r] {
			if amb[r][i] == 1 {
				n++
				if perm[r][i] == i {
					t.Errorf("%s slot %d ambiguous but not permuted", residue.ThreeLetter(r), i)
				}
			} else if perm[r][i] != i {
				t.Errorf("%s slot %d permuted but not ambiguous", residue.ThreeLetter(r), i)
			}
		}
	}
	if n != 12 { // ASP 2 + GLU 2 + PHE 4 + TYR 4
		t.Errorf("%d ambiguous atoms, want 12", n)
	}
}

// TestDerivedTablesMatchAF2 compares the tables derived here (float64) with
// the float32 tables AF2/OpenFold used for the rigid reference case.
//
// AF2 computes the default frames in float64 numpy and stores them in a
// float32 array, so the stored values are our float64 values rounded to
// float32: the difference is at most half a float32 ulp, 2^-24·|x| ≈
// 6e-8·|x|, plus float64 round-off of the derivation (~1e-15). Entries that
// are exactly zero in AF2 (and are ≲1e-16 here) need an absolute term; we
// allow rel 2^-24 + 1e-15 and abs 1e-15. After rounding our values to float32
// the tables must agree exactly except where the float64 round-off lands on a
// float32 rounding boundary, which we count and require to be none.
func TestDerivedTablesMatchAF2(t *testing.T) {
	cs := refcase.Open(t, "rigid.npz")
	const rel = 1.0/(1<<24) + 1e-15
	const abs = 1e-15

	df, err := params.Get[float64](cs, "const/restype_rigid_group_default_frame", 21, 8, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	frames := residue.RigidGroupDefaultFrame()
	got := make([]float64, 0, len(df))
	for r := range frames {
		for g := range frames[r] {
			for i := range frames[r][g] {
				got = append(got, frames[r][g][i][:]...)
			}
		}
	}
	refcase.Compare(t, "restype_rigid_group_default_frame", got, df, abs, rel)
	countInexact(t, "restype_rigid_group_default_frame", got, df)

	pos, err := params.Get[float64](cs, "const/restype_atom14_rigid_group_positions", 21, 14, 3)
	if err != nil {
		t.Fatal(err)
	}
	p14 := residue.Atom14RigidGroupPositions()
	got = got[:0]
	for r := range p14 {
		for i := range p14[r] {
			got = append(got, p14[r][i][:]...)
		}
	}
	refcase.Compare(t, "restype_atom14_rigid_group_positions", got, pos, abs, rel)
	countInexact(t, "restype_atom14_rigid_group_positions", got, pos)

	mask, err := params.Get[float64](cs, "const/restype_atom14_mask", 21, 14)
	if err != nil {
		t.Fatal(err)
	}
	m14 := residue.Atom14Mask()
	got = got[:0]
	for r := range m14 {
		got = append(got, m14[r][:]...)
	}
	refcase.Compare(t, "restype_atom14_mask", got, mask, 0, 0)

	grp, err := params.Ints(cs, "const/restype_atom14_to_rigid_group", 21, 14)
	if err != nil {
		t.Fatal(err)
	}
	g14 := residue.Atom14ToRigidGroup()
	for r := range g14 {
		for i := range g14[r] {
			if g14[r][i] != grp[14*r+i] {
				t.Errorf("restype_atom14_to_rigid_group[%d][%d] = %d, want %d", r, i, g14[r][i], grp[14*r+i])
			}
		}
	}
}

// countInexact fails if any value rounded to float32 differs from the
// float32 reference.
func countInexact(t *testing.T, what string, got, want []float64) {
	t.Helper()
	n := 0
	for i := range got {
		if float64(float32(got[i])) != want[i] && math.Abs(got[i]) > 1e-15 {
			n++
			if n <= 5 {
				t.Logf("%s[%d]: float32(%v) = %v, AF2 %v", what, i, got[i], float32(got[i]), want[i])
			}
		}
	}
	if n > 0 {
		t.Errorf("%s: %d values differ from AF2's float32 table after rounding", what, n)
	}
}

// TestTablesMatchProteinCases checks the per-residue-type integer tables and
// masks against OpenFold's features of real chains (protein_*.npz), which
// index the same tables by each residue's type. They must agree exactly.
func TestTablesMatchProteinCases(t *testing.T) {
	a14to37 := residue.Atom14ToAtom37()
	a37to14 := residue.Atom37ToAtom14()
	m14 := residue.Atom14Mask()
	m37 := residue.Atom37Mask()
	amb := residue.Atom14IsAmbiguous()
	gm := residue.RigidGroupMask()
	for _, name := range []string{"protein_1hpv.npz", "protein_il2.npz", "protein_1a1p.npz", "protein_pept.npz"} {
		cs := refcase.Open(t, name)
		aatype, err := params.Ints(cs, "out/aatype")
		if err != nil {
			t.Fatal(err)
		}
		n := len(aatype)
		ints := func(key string, shape ...int) []int {
			v, err := params.Ints(cs, key, shape...)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		floats := func(key string, shape ...int) []float64 {
			v, err := params.Get[float64](cs, key, shape...)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		i14to37 := ints("out/residx_atom14_to_atom37", n, 14)
		i37to14 := ints("out/residx_atom37_to_atom14", n, 37)
		e14 := floats("out/atom14_atom_exists", n, 14)
		e37 := floats("out/atom37_atom_exists", n, 37)
		isAmb := floats("out/atom14_atom_is_ambiguous", n, 14)
		gex := floats("out/rigidgroups_group_exists", n, 8)
		bad := 0
		for i, r := range aatype {
			for k := 0; k < 14; k++ {
				if i14to37[14*i+k] != a14to37[r][k] || e14[14*i+k] != m14[r][k] || isAmb[14*i+k] != amb[r][k] {
					t.Logf("res %d type %d slot %d: %d %v %v vs %d %v %v", i, r, k, i14to37[14*i+k], e14[14*i+k], isAmb[14*i+k], a14to37[r][k], m14[r][k], amb[r][k])
					bad++
				}
			}
			for k := 0; k < 37; k++ {
				if i37to14[37*i+k] != a37to14[r][k] || e37[37*i+k] != m37[r][k] {
					t.Logf("res %d type %d atom37 %d: %d %v vs %d %v", i, r, k, i37to14[37*i+k], e37[37*i+k], a37to14[r][k], m37[r][k])
					bad++
				}
			}
			for g := 0; g < 8; g++ {
				if gex[8*i+g] != gm[r][g] {
					t.Logf("res %d type %d group %d: %v vs %v", i, r, g, gex[8*i+g], gm[r][g])
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d table entries differ from OpenFold's features", name, bad)
		}
	}
}
