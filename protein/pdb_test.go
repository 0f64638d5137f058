package protein

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

// structurePath returns the path of a real PDB entry in shared/structures
// (next to the reference cases), skipping the test when it is absent.
func structurePath(t testing.TB, file string) string {
	t.Helper()
	dir, err := refcase.Dir()
	if err != nil {
		t.Skipf("structures not found: %v", err)
	}
	p := filepath.Join(dir, "..", "structures", file)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("structure %s not found: %v", file, err)
	}
	return p
}

func readStructureFile(t testing.TB, file, chain string) *Structure {
	t.Helper()
	f, err := os.Open(structurePath(t, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ReadPDB(f, chain)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReadPDBRefcases reads the PDB text of each protein_* case and
// compares the arrays with OpenFold's reader (from_pdb_string) exactly:
// both round the coordinates to float32 and parse B factors in float64.
func TestReadPDBRefcases(t *testing.T) {
	for _, name := range []string{"protein_1hpv.npz", "protein_il2.npz", "protein_1a1p.npz", "protein_pept.npz"} {
		t.Run(name, func(t *testing.T) {
			cs := refcase.Open(t, name)
			text, err := cs.String("in/pdb_text")
			if err != nil {
				t.Fatal(err)
			}
			chain, err := cs.String("in/chain_id")
			if err != nil {
				t.Fatal(err)
			}
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ReadPDB(strings.NewReader(text), chain)
			if err != nil {
				t.Fatal(err)
			}
			n := s.Len()
			if seq := meta.Raw["sequence"]; s.Sequence() != seq {
				t.Errorf("sequence %s, want %v", s.Sequence(), seq)
			}
			aatype, err := params.Ints(cs, "out/aatype", n)
			if err != nil {
				t.Fatal(err)
			}
			ri, err := params.Ints(cs, "out/residue_index", n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.AAType, aatype) || !slices.Equal(s.ResidueIndex, ri) {
				t.Errorf("aatype or residue_index differ")
			}
			for _, c := range []struct {
				key   string
				got   []float64
				shape []int
			}{
				{"out/all_atom_positions", s.Positions, []int{n, 37, 3}},
				{"out/all_atom_mask", s.Mask, []int{n, 37}},
				{"out/b_factors", s.BFactors, []int{n, 37}},
			} {
				want, err := params.Get[float64](cs, c.key, c.shape...)
				if err != nil {
					t.Fatal(err)
				}
				refcase.Compare(t, c.key, c.got, want, 0, 0)
			}
			for i, c := range s.ChainID {
				if c != chain {
					t.Fatalf("residue %d in chain %q, want %q", i, c, chain)
				}
			}
		})
	}
}

// TestReadPDBFiles reads every shared structure, whole and by chain, and
// checks what refcases README §9.2 observed of OpenFold's reader on them.
func TestReadPDBFiles(t *testing.T) {
	tests := []struct {
		file, chain string
		n           int
		chains      []string
		first, last int
		unknown     int
		gap         [2]int // consecutive residue numbers that jump (0: none checked)
	}{
		{"1hpv.pdb", "A", 99, []string{"A"}, 1, 99, 0, [2]int{}},
		// The whole file: 80 waters in the blank chain become unknown
		// residues with only O; the ligand VX-478 (no atom37 name) is skipped.
		{"1hpv.pdb", AllChains, 278, []string{"A", "B", " "}, 1, 280, 80, [2]int{}},
		{"il2.pdb", " ", 126, []string{" "}, 4, 133, 0, [2]int{78, 83}},
		{"1a1p.pdb", " ", 14, []string{" "}, 1, 14, 1, [2]int{}},
		{"pept.pdb", "E", 13, []string{"E"}, 1, 13, 0, [2]int{}},
		{"1tii.pdb", "A", 186, []string{"A"}, 1, 187, 0, [2]int{46, 48}},
		{"1tii.pdb", AllChains, 927, []string{"D", "E", "F", "G", "H", "A", "C", " "}, 1, 307, 215, [2]int{}},
		{"3al1.pdb", "A", 13, []string{"A"}, 100, 112, 1, [2]int{}},
		{"3al1.pdb", AllChains, 49, []string{"A", "B", " "}, 100, 506, 2 + 23, [2]int{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%q", tt.file, tt.chain), func(t *testing.T) {
			s := readStructureFile(t, tt.file, tt.chain)
			if s.Len() != tt.n {
				t.Errorf("%d residues, want %d", s.Len(), tt.n)
			}
			if !slices.Equal(s.Chains(), tt.chains) {
				t.Errorf("chains %q, want %q", s.Chains(), tt.chains)
			}
			if s.ResidueIndex[0] != tt.first || s.ResidueIndex[s.Len()-1] != tt.last {
				t.Errorf("numbers %d..%d, want %d..%d", s.ResidueIndex[0], s.ResidueIndex[s.Len()-1], tt.first, tt.last)
			}
			if strings.Count(s.Sequence(), "X") != tt.unknown {
				t.Errorf("%d unknown residues, want %d", strings.Count(s.Sequence(), "X"), tt.unknown)
			}
			if tt.gap != [2]int{} {
				found := false
				for i := 1; i < s.Len(); i++ {
					found = found || (s.ResidueIndex[i-1] == tt.gap[0] && s.ResidueIndex[i] == tt.gap[1])
				}
				if !found {
					t.Errorf("gap %d→%d not kept", tt.gap[0], tt.gap[1])
				}
			}
			// Standard residues carry exactly their heavy atoms (plus OXT at
			// a C terminus): no hydrogen, and none of these chains lacks a
			// heavy atom.
			std := residue.Atom37Mask()
			for i, a := range s.AAType {
				if a == residue.Unk {
					continue
				}
				for k := range residue.NumAtomTypes {
					m := s.Mask[i*residue.NumAtomTypes+k]
					if k == residue.AtomOXT {
						continue
					}
					if m != std[a][k] {
						t.Fatalf("residue %d (%s %d): atom %s mask %v, standard %v", i, residue.ThreeLetter(a), s.ResidueIndex[i], residue.AtomTypes()[k], m, std[a][k])
					}
				}
			}
		})
	}
}

// TestReadPDBCaps checks the unknown residues README §9.2 describes: 1a1p's
// C-terminal NH2 (only N) and 3al1's ACE cap (C and O; CH3 dropped).
func TestReadPDBCaps(t *testing.T) {
	for _, tt := range []struct {
		file, chain string
		at          int
		atoms       []string
	}{
		{"1a1p.pdb", " ", 13, []string{"N"}},
		{"3al1.pdb", "A", 0, []string{"C", "O"}},
	} {
		s := readStructureFile(t, tt.file, tt.chain)
		if s.AAType[tt.at] != residue.Unk {
			t.Errorf("%s residue %d has type %d, want unknown", tt.file, tt.at, s.AAType[tt.at])
		}
		var got []string
		for k, n := range residue.AtomTypes() {
			if s.Mask[tt.at*residue.NumAtomTypes+k] == 1 {
				got = append(got, n)
			}
		}
		if !slices.Equal(got, tt.atoms) {
			t.Errorf("%s residue %d has atoms %v, want %v", tt.file, tt.at, got, tt.atoms)
		}
	}
}

// TestReadPDBAltlocs checks 3al1 chain A against an independent reading of
// its alternate locations: per atom, the alternate of highest occupancy
// (the first on a tie). Over all atoms (hydrogens included) that keeps A
// for 38 atoms and B for 16, as README §9.2 observed.
func TestReadPDBAltlocs(t *testing.T) {
	p := structurePath(t, "3al1.pdb")
	text, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	type alt struct {
		loc      byte
		occ      float64
		xyz      [3]float64
		resseq   int
		atomName string
	}
	best := map[string]alt{}
	var order []string
	for _, l := range strings.Split(string(text), "\n") {
		if !(strings.HasPrefix(l, "ATOM  ") || strings.HasPrefix(l, "HETATM")) || l[21] != 'A' || l[16] == ' ' {
			continue
		}
		a := alt{loc: l[16], atomName: strings.TrimSpace(l[12:16])}
		a.resseq, _ = strconv.Atoi(strings.TrimSpace(l[22:26]))
		a.occ, _ = strconv.ParseFloat(strings.TrimSpace(l[54:60]), 64)
		for k := range 3 {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[30+8*k:38+8*k]), 64)
			a.xyz[k] = float64(float32(v))
		}
		key := l[22:26] + a.atomName
		b, ok := best[key]
		if !ok {
			order = append(order, key)
		}
		if !ok || a.occ > b.occ {
			best[key] = a
		}
	}
	s := readStructureFile(t, "3al1.pdb", "A")
	kept := map[byte]int{}
	checked := 0
	for _, key := range order {
		a := best[key]
		kept[a.loc]++
		k, ok := residue.AtomTypeIndex(a.atomName)
		if !ok {
			continue
		}
		i := slices.Index(s.ResidueIndex, a.resseq)
		got := [3]float64(s.Positions[3*(i*residue.NumAtomTypes+k):])
		if got != a.xyz || s.Mask[i*residue.NumAtomTypes+k] != 1 {
			t.Errorf("residue %d atom %s: %v, want altloc %c %v", a.resseq, a.atomName, got, a.loc, a.xyz)
		}
		checked++
	}
	if len(order) != 54 || kept['A'] != 38 || kept['B'] != 16 {
		t.Errorf("%d atoms with alternates, A kept for %d, B for %d; want 54, 38, 16", len(order), kept['A'], kept['B'])
	}
	if checked == 0 {
		t.Error("no heavy atom with alternates checked")
	}
}

// pdbAtom formats an ATOM or HETATM record in the standard columns.
func pdbAtom(rec string, serial int, name, altloc, resname, chain string, resseq int, icode string, x, y, z, occ, b float64) string {
	if len(name) < 4 {
		name = " " + name
	}
	return fmt.Sprintf("%-6s%5d %-4s%1s%3s %1s%4d%1s   %8.3f%8.3f%8.3f%6.2f%6.2f          %2s",
		rec, serial, name, altloc, resname, chain, resseq, icode, x, y, z, occ, b, strings.TrimLeft(name, " ")[:1])
}

// glyLines returns the four heavy atoms of a glycine with the given number.
func glyLines(chain string, resseq int, x float64) []string {
	return []string{
		pdbAtom("ATOM", 1, "N", "", "GLY", chain, resseq, "", x, 1, 0, 1, 10),
		pdbAtom("ATOM", 2, "CA", "", "GLY", chain, resseq, "", x+1.2, 1.5, 0, 1, 11),
		pdbAtom("ATOM", 3, "C", "", "GLY", chain, resseq, "", x+2.4, 1, 0, 1, 12),
		pdbAtom("ATOM", 4, "O", "", "GLY", chain, resseq, "", x+2.5, -0.2, 0, 1, 13),
	}
}

func joinLines(parts ...[]string) string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return strings.Join(all, "\n") + "\n"
}

// atomsOf returns the atom37 names present in residue i.
func atomsOf(s *Structure, i int) []string {
	var names []string
	for k, n := range residue.AtomTypes() {
		if s.Mask[i*residue.NumAtomTypes+k] == 1 {
			names = append(names, n)
		}
	}
	return names
}

func posOf(s *Structure, i int, name string) [3]float64 {
	k, _ := residue.AtomTypeIndex(name)
	return [3]float64(s.Positions[3*(i*residue.NumAtomTypes+k):])
}

// TestReadPDBRules checks the documented handling of real-world features
// on small synthetic files.
func TestReadPDBRules(t *testing.T) {
	type check func(t *testing.T, s *Structure)
	tests := []struct {
		name  string
		text  string
		chain string
		check check
	}{
		{
			name: "HETATM residues, waters, ligands, hydrogens",
			text: joinLines(glyLines("A", 1, 0), []string{
				pdbAtom("HETATM", 5, "N", "", "MSE", "A", 2, "", 3, 1, 0, 1, 20),
				pdbAtom("HETATM", 6, "CA", "", "MSE", "A", 2, "", 4, 1, 0, 1, 20),
				pdbAtom("HETATM", 7, "SE", "", "MSE", "A", 2, "", 5, 1, 0, 1, 20),
				pdbAtom("ATOM", 8, "H", "", "MSE", "A", 2, "", 5, 2, 0, 1, 20),
				pdbAtom("HETATM", 9, "O", "", "HOH", "A", 3, "", 9, 9, 9, 1, 30),
				pdbAtom("HETATM", 10, "C1", "", "LIG", "A", 4, "", 7, 7, 7, 1, 30),
			}),
			chain: "A",
			check: func(t *testing.T, s *Structure) {
				if s.Sequence() != "GXX" || !slices.Equal(s.ResidueIndex, []int{1, 2, 3}) {
					t.Errorf("sequence %s numbers %v, want GXX 1 2 3 (ligand skipped)", s.Sequence(), s.ResidueIndex)
				}
				if !slices.Equal(atomsOf(s, 1), []string{"N", "CA"}) || !slices.Equal(atomsOf(s, 2), []string{"O"}) {
					t.Errorf("MSE atoms %v, water atoms %v", atomsOf(s, 1), atomsOf(s, 2))
				}
			},
		},
		{
			name: "missing backbone atom has mask 0",
			text: joinLines(glyLines("A", 1, 0)[:1], glyLines("A", 1, 0)[2:]),
			check: func(t *testing.T, s *Structure) {
				if !slices.Equal(atomsOf(s, 0), []string{"N", "C", "O"}) || posOf(s, 0, "CA") != [3]float64{} {
					t.Errorf("atoms %v", atomsOf(s, 0))
				}
			},
		},
		{
			name: "alternate locations: highest occupancy per atom, first on a tie",
			text: joinLines([]string{
				pdbAtom("ATOM", 1, "N", "A", "GLY", "A", 1, "", 1, 0, 0, 0.4, 10),
				pdbAtom("ATOM", 2, "N", "B", "GLY", "A", 1, "", 2, 0, 0, 0.6, 10),
				pdbAtom("ATOM", 3, "CA", "A", "GLY", "A", 1, "", 3, 0, 0, 0.5, 10),
				pdbAtom("ATOM", 4, "CA", "B", "GLY", "A", 1, "", 4, 0, 0, 0.5, 10),
				pdbAtom("ATOM", 5, "C", "", "GLY", "A", 1, "", 5, 0, 0, 0.5, 10),
				pdbAtom("ATOM", 6, "C", "A", "GLY", "A", 1, "", 6, 0, 0, 0.5, 10),
			}),
			check: func(t *testing.T, s *Structure) {
				// C: a blank-altloc atom followed by an alternate of equal
				// occupancy; Biopython selects the later one.
				if posOf(s, 0, "N")[0] != 2 || posOf(s, 0, "CA")[0] != 3 || posOf(s, 0, "C")[0] != 6 {
					t.Errorf("kept N %v CA %v C %v", posOf(s, 0, "N"), posOf(s, 0, "CA"), posOf(s, 0, "C"))
				}
			},
		},
		{
			name: "atom defined twice: the first is kept",
			text: joinLines(glyLines("A", 1, 0), []string{pdbAtom("ATOM", 5, "CA", "", "GLY", "A", 1, "", 50, 50, 50, 1, 10)}),
			check: func(t *testing.T, s *Structure) {
				if posOf(s, 0, "CA")[0] != float64(float32(1.2)) {
					t.Errorf("CA %v", posOf(s, 0, "CA"))
				}
			},
		},
		{
			name: "a chain that resumes after another joins its first part; TER ignored",
			text: joinLines(glyLines("A", 1, 0), []string{"TER"}, glyLines("B", 1, 10), glyLines("A", 2, 20)),
			check: func(t *testing.T, s *Structure) {
				if !slices.Equal(s.ChainID, []string{"A", "A", "B"}) || !slices.Equal(s.ResidueIndex, []int{1, 2, 1}) {
					t.Errorf("chains %q numbers %v", s.ChainID, s.ResidueIndex)
				}
			},
		},
		{
			name: "CONECT ends the atoms; a bare END does not, a padded one does",
			text: joinLines(glyLines("A", 1, 0), []string{"END"}, glyLines("A", 2, 10), []string{"CONECT    1    2"}, glyLines("A", 3, 20)),
			check: func(t *testing.T, s *Structure) {
				if !slices.Equal(s.ResidueIndex, []int{1, 2}) {
					t.Errorf("numbers %v, want 1 2", s.ResidueIndex)
				}
			},
		},
		{
			name: "padded END",
			text: joinLines(glyLines("A", 1, 0), []string{"END   "}, glyLines("A", 2, 10)),
			check: func(t *testing.T, s *Structure) {
				if !slices.Equal(s.ResidueIndex, []int{1}) {
					t.Errorf("numbers %v, want 1", s.ResidueIndex)
				}
			},
		},
		{
			name:  "insertion code in another chain is fine",
			text:  joinLines(glyLines("A", 1, 0), []string{pdbAtom("ATOM", 5, "CA", "", "ALA", "B", 7, "A", 1, 2, 3, 1, 1)}),
			chain: "A",
			check: func(t *testing.T, s *Structure) {
				if s.Len() != 1 {
					t.Errorf("%d residues", s.Len())
				}
			},
		},
		{
			name: "a number reused by another residue name: atoms dropped unless the first is all alternates",
			text: joinLines(glyLines("A", 1, 0), []string{
				pdbAtom("ATOM", 5, "CB", "", "ALA", "A", 1, "", 9, 9, 9, 1, 1),
				pdbAtom("ATOM", 6, "N", "A", "SER", "A", 2, "", 1, 0, 0, 0.6, 1),
				pdbAtom("ATOM", 7, "CA", "A", "SER", "A", 2, "", 2, 0, 0, 0.6, 1),
				pdbAtom("ATOM", 8, "N", "B", "THR", "A", 2, "", 3, 0, 0, 0.4, 1),
				pdbAtom("ATOM", 9, "CB", "B", "THR", "A", 2, "", 4, 0, 0, 0.4, 1),
			}),
			check: func(t *testing.T, s *Structure) {
				// Biopython: GLY 1 has blank altlocs, so ALA 1's atoms are
				// lost; SER 2 is all alternates, so THR 2 becomes a second
				// variant, and the variant named last is the one kept.
				if s.Sequence() != "GT" || !slices.Equal(atomsOf(s, 0), []string{"N", "CA", "C", "O"}) || !slices.Equal(atomsOf(s, 1), []string{"N", "CB"}) {
					t.Errorf("%s, atoms %v %v", s.Sequence(), atomsOf(s, 0), atomsOf(s, 1))
				}
			},
		},
		{
			name: "a HETATM group whose key reappears loses the later atoms",
			text: joinLines([]string{
				pdbAtom("HETATM", 1, "N", "", "MSE", "A", 2, "", 1, 0, 0, 1, 1),
				pdbAtom("HETATM", 2, "O", "", "HOH", "A", 3, "", 2, 0, 0, 1, 1),
				pdbAtom("HETATM", 3, "CA", "", "MSE", "A", 2, "", 3, 0, 0, 1, 1),
			}),
			check: func(t *testing.T, s *Structure) {
				if s.Sequence() != "XX" || !slices.Equal(atomsOf(s, 0), []string{"N"}) {
					t.Errorf("%s, atoms %v", s.Sequence(), atomsOf(s, 0))
				}
			},
		},
		{
			name: "unknown residue names are type X with their atom37 atoms",
			text: joinLines([]string{pdbAtom("ATOM", 1, "CA", "", "XYZ", "A", 5, "", 1, 2, 3, 1, 1), pdbAtom("ATOM", 2, "CB", "", "XYZ", "A", 5, "", 1, 2, 4, 1, 1)}),
			check: func(t *testing.T, s *Structure) {
				if s.Sequence() != "X" || !slices.Equal(atomsOf(s, 0), []string{"CA", "CB"}) {
					t.Errorf("%s %v", s.Sequence(), atomsOf(s, 0))
				}
			},
		},
		{
			name: "one MODEL, CRLF line ends, blank lines, missing B factor and occupancy",
			text: "HEADER    TEST\r\nMODEL        1\r\n\r\n" + pdbAtom("ATOM", 1, "CA", "", "GLY", "A", 1, "", 1, 2, 3, 1, 1)[:54] + "\r\nENDMDL\r\nEND\r\n",
			check: func(t *testing.T, s *Structure) {
				if s.Len() != 1 || s.BFactors[1] != 0 || posOf(s, 0, "CA") != [3]float64{1, 2, 3} {
					t.Errorf("%d residues, B %v, CA %v", s.Len(), s.BFactors[1], posOf(s, 0, "CA"))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ReadPDB(strings.NewReader(tt.text), tt.chain)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestReadPDBErrors checks that bad input gives a clear error (never a
// panic): the sentinel it wraps and a phrase of the message.
func TestReadPDBErrors(t *testing.T) {
	gly := joinLines(glyLines("A", 1, 0))
	tests := []struct {
		name, text, chain string
		err               error
		phrase            string
	}{
		{"empty", "", "", ErrFormat, "empty input"},
		{"blank lines only", "\n\n  \n", "", ErrFormat, "no atoms"},
		{"header only", "HEADER    NOTHING\nREMARK   1\n", "", ErrFormat, "no atoms"},
		{"truncated atom line", gly + "ATOM      5  CB  ALA A   2      11.104   6.134", "", ErrFormat, "line 5"},
		{"record name only", gly + "ATOM\n", "", ErrFormat, "columns"},
		{"coordinate not a number", strings.Replace(gly, "   1.000   0.000", "   1.0x0   0.000", 1), "", ErrFormat, "coordinate"},
		{"NaN coordinate", strings.Replace(gly, "   1.000   0.000", "     nan   0.000", 1), "", ErrFormat, "finite"},
		{"blank residue number", joinLines([]string{pdbAtom("ATOM", 1, "CA", "", "GLY", "A", 1, "", 1, 2, 3, 1, 1)[:22] + "    " + pdbAtom("ATOM", 1, "CA", "", "GLY", "A", 1, "", 1, 2, 3, 1, 1)[26:]}), "", ErrFormat, "residue number"},
		{"residue number not an integer", strings.Replace(gly, "GLY A   1", "GLY A  1x", 1), "", ErrFormat, "not an integer"},
		{"insertion code", joinLines(glyLines("A", 1, 0), []string{pdbAtom("ATOM", 5, "CA", "", "ALA", "A", 1, "B", 1, 2, 3, 1, 1)}), "A", ErrUnsupported, "insertion code"},
		{"two models", "MODEL        1\n" + gly + "ENDMDL\nMODEL        2\n" + gly + "ENDMDL\n", "", ErrUnsupported, "single-model"},
		{"atoms after ENDMDL open a second model", "MODEL        1\n" + gly + "ENDMDL\n" + gly, "", ErrUnsupported, "single-model"},
		{"chain absent", gly, "Q", ErrFormat, `chain "Q"`},
		{"only ligands and hydrogens", joinLines([]string{pdbAtom("HETATM", 1, "C1", "", "LIG", "A", 1, "", 1, 2, 3, 1, 1), pdbAtom("ATOM", 2, "HA", "", "GLY", "A", 2, "", 1, 2, 3, 1, 1)}), "", ErrFormat, "no residue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ReadPDB(strings.NewReader(tt.text), tt.chain)
			if err == nil {
				t.Fatalf("no error; read %d residues", s.Len())
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.phrase) || !strings.HasPrefix(err.Error(), "protein: ") {
				t.Errorf("error %q, want %v containing %q", err, tt.err, tt.phrase)
			}
		})
	}
}

// TestReadPDBTruncations cuts a real file at every byte offset of its first
// lines: the reader must return a structure or an error, never panic.
func TestReadPDBTruncations(t *testing.T) {
	text, err := os.ReadFile(structurePath(t, "pept.pdb"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 1200 && n < len(text); n++ {
		s, err := ReadPDB(strings.NewReader(string(text[:n])), AllChains)
		if err == nil {
			if err := s.Validate(); err != nil {
				t.Fatalf("cut at %d: %v", n, err)
			}
		} else if !errors.Is(err, ErrFormat) {
			t.Fatalf("cut at %d: error %v does not wrap ErrFormat", n, err)
		}
	}
}

func TestStructureValidate(t *testing.T) {
	s := readStructureFile(t, "pept.pdb", "E")
	if err := s.SetPLDDT(make([]float64, 3)); !errors.Is(err, num.ErrShape) {
		t.Errorf("short pLDDT: %v", err)
	}
	bad := *s
	bad.Mask = bad.Mask[:10]
	if err := bad.Validate(); !errors.Is(err, num.ErrShape) {
		t.Errorf("short mask: %v", err)
	}
	bad = *s
	bad.AAType = slices.Clone(s.AAType)
	bad.AAType[0] = 21
	if err := bad.Validate(); !errors.Is(err, ErrFormat) {
		t.Errorf("aatype 21: %v", err)
	}
	bad = *s
	bad.Positions = slices.Clone(s.Positions)
	bad.Positions[4] = posInf()
	if err := bad.Validate(); !errors.Is(err, num.ErrNaN) {
		t.Errorf("infinite position: %v", err)
	}
}

func posInf() float64 { v, _ := strconv.ParseFloat("+Inf", 64); return v }

// FuzzReadPDB feeds arbitrary text to the reader: it must return a valid
// structure or an error, never panic. The seeds run with every go test.
func FuzzReadPDB(f *testing.F) {
	f.Add(joinLines(glyLines("A", 1, 0)), "A")
	f.Add(joinLines(glyLines("A", 1, 0), []string{"ENDMDL", "MODEL        2", pdbAtom("ATOM", 1, "CA", "B", "XYZ", " ", -5, "", 1, 2, 3, 0.5, 1)}), AllChains)
	f.Add("ATOM      1  N   GLY A   1      1e400   2.000   3.000  1.00  1.00\n", AllChains)
	f.Add("HETATM    1  O   HOH A   1       1.000   2.000   3.000\nTER\nEND   \n", "A")
	f.Fuzz(func(t *testing.T, text, chain string) {
		s, err := ReadPDB(strings.NewReader(text), chain)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("invalid structure without an error: %v", err)
		}
	})
}

// BenchmarkReadPDB reads the largest shared entry (1tii, 6124 lines).
func BenchmarkReadPDB(b *testing.B) {
	text, err := os.ReadFile(structurePath(b, "1tii.pdb"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	n := 0
	for b.Loop() {
		s, err := ReadPDB(strings.NewReader(string(text)), AllChains)
		if err != nil {
			b.Fatal(err)
		}
		n = s.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/residue")
}
