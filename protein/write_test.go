package protein

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/foldkit/foldkit/internal/gemmitest"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// gemmiDump reads a structure file with gemmi and prints one line per atom
// of the first model; the first line counts models and chains.
const gemmiDump = `
import sys, gemmi
st = gemmi.read_structure(sys.argv[1])
print("models", len(st), "chains", len(st[0]))
for ch in st[0]:
    for r in ch:
        for a in r:
            print("\t".join([repr(ch.name), r.name, str(r.seqid.num), repr(r.seqid.icode), a.name,
                a.element.name, repr(a.altloc), repr(a.pos.x), repr(a.pos.y), repr(a.pos.z), repr(a.occ), repr(a.b_iso)]))
`

// gemmiAtom is one atom as gemmi read it.
type gemmiAtom struct {
	chain, resname, icode, name, element, altloc string
	seq                                          int
	pos                                          [3]float64
	occ, b                                       float64
}

func readWithGemmi(t *testing.T, py, path string) (models, chains int, atoms []gemmiAtom) {
	t.Helper()
	out, err := exec.Command(py, "-c", gemmiDump, path).CombinedOutput()
	if err != nil {
		t.Fatalf("gemmi could not read %s: %v\n%s", path, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if _, err := fmt.Sscanf(lines[0], "models %d chains %d", &models, &chains); err != nil {
		t.Fatalf("gemmi output %q: %v", lines[0], err)
	}
	unq := func(s string) string { v, _ := strconv.Unquote(strings.ReplaceAll(s, "'", `"`)); return v }
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != 12 {
			t.Fatalf("gemmi output line %q", l)
		}
		a := gemmiAtom{chain: unq(f[0]), resname: f[1], icode: unq(f[3]), name: f[4], element: f[5], altloc: unq(f[6])}
		a.seq, _ = strconv.Atoi(f[2])
		for k := range 3 {
			a.pos[k], _ = strconv.ParseFloat(f[7+k], 64)
		}
		a.occ, _ = strconv.ParseFloat(f[10], 64)
		a.b, _ = strconv.ParseFloat(f[11], 64)
		atoms = append(atoms, a)
	}
	return models, chains, atoms
}

// chainRuns counts the runs of consecutive residues of one chain.
func chainRuns(s *Structure) int {
	n := 0
	for i := range s.ChainID {
		if i == 0 || s.ChainID[i] != s.ChainID[i-1] {
			n++
		}
	}
	return n
}

// Precision of the written files: coordinates have 3 decimals (rounding
// error ≤ 5e-4 Å) and B factors 2 (≤ 5e-3); gemmi holds B factors in
// float32 (≤ 1e-4 at 1000). The margins absorb the binary representations.
const (
	coordTol = 5e-4 + 1e-9
	bTol     = 5e-3 + 2e-4
)

// TestWriteGemmi writes every shared structure (all chains, with pLDDT-like
// B factors on one) as PDB and mmCIF, reads the files back with gemmi and
// checks the model, chains, residue and atom names, elements, coordinates,
// occupancies and B factors.
func TestWriteGemmi(t *testing.T) {
	py := gemmitest.Python(t)
	dir := t.TempDir()
	files := []string{"1hpv.pdb", "il2.pdb", "1a1p.pdb", "pept.pdb", "1tii.pdb", "3al1.pdb", "pept.pdb+plddt"}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			s := readStructureFile(t, strings.TrimSuffix(file, "+plddt"), AllChains)
			if strings.HasSuffix(file, "+plddt") {
				rng := rand.New(rand.NewPCG(7, 8))
				plddt := make([]float64, s.Len())
				for i := range plddt {
					plddt[i] = 100 * rng.Float64()
				}
				if err := s.SetPLDDT(plddt); err != nil {
					t.Fatal(err)
				}
			}
			for _, format := range []string{"pdb", "cif"} {
				var buf bytes.Buffer
				var err error
				if format == "pdb" {
					err = WritePDB(&buf, s)
				} else {
					err = WriteMMCIF(&buf, s, file)
				}
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, strings.ReplaceAll(file, "+", "_")+"."+format)
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				if format == "pdb" {
					checkPDBRecords(t, buf.String(), chainRuns(s))
				}
				models, chains, atoms := readWithGemmi(t, py, path)
				if models != 1 || chains != chainRuns(s) {
					t.Errorf("%s: gemmi reads %d models and %d chains, want 1 and %d", format, models, chains, chainRuns(s))
				}
				compareGemmi(t, format, s, atoms)
			}
		})
	}
}

// checkPDBRecords checks the record structure of a written PDB file: 80
// columns, MODEL first, one TER per chain run, ENDMDL and END last.
func checkPDBRecords(t *testing.T, text string, runs int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	ter := 0
	for i, l := range lines {
		if len(l) != 80 {
			t.Fatalf("line %d has %d columns: %q", i+1, len(l), l)
		}
		if strings.HasPrefix(l, "TER   ") {
			ter++
		}
	}
	if !strings.HasPrefix(lines[0], "MODEL ") || strings.TrimSpace(lines[len(lines)-2]) != "ENDMDL" || strings.TrimSpace(lines[len(lines)-1]) != "END" {
		t.Errorf("records: first %q, last %q %q", lines[0], lines[len(lines)-2], lines[len(lines)-1])
	}
	if ter != runs || !strings.HasPrefix(lines[len(lines)-3], "TER   ") {
		t.Errorf("%d TER records, want %d, one after the last atom", ter, runs)
	}
}

func compareGemmi(t *testing.T, format string, s *Structure, atoms []gemmiAtom) {
	t.Helper()
	const na = residue.NumAtomTypes
	names := residue.AtomTypes()
	j := 0
	for i, aa := range s.AAType {
		chain := s.ChainID[i]
		if format == "pdb" && chain == " " {
			chain = "" // gemmi names PDB's blank chain ""
		}
		for _, k := range atomOrder(aa) {
			if s.Mask[i*na+k] == 0 {
				continue
			}
			if j >= len(atoms) {
				t.Fatalf("%s: gemmi read %d atoms, fewer than written", format, len(atoms))
			}
			a := atoms[j]
			j++
			want := gemmiAtom{chain: chain, resname: residue.ThreeLetter(aa), icode: " ", name: names[k],
				element: residue.Element(names[k]), altloc: "\x00", seq: s.ResidueIndex[i], occ: 1}
			got := a
			got.pos, got.b = [3]float64{}, 0
			if got != want {
				t.Fatalf("%s: residue %d atom %s: gemmi reads %+v, want %+v", format, i, names[k], got, want)
			}
			for c := range 3 {
				if d := math.Abs(a.pos[c] - s.Positions[3*(i*na+k)+c]); d > coordTol {
					t.Fatalf("%s: residue %d atom %s: coordinate %d is %v, want %v", format, i, names[k], c, a.pos[c], s.Positions[3*(i*na+k)+c])
				}
			}
			if d := math.Abs(a.b - s.BFactors[i*na+k]); d > bTol {
				t.Fatalf("%s: residue %d atom %s: B factor %v, want %v", format, i, names[k], a.b, s.BFactors[i*na+k])
			}
		}
	}
	if j != len(atoms) {
		t.Errorf("%s: gemmi read %d atoms, %d written", format, len(atoms), j)
	}
}

// sameStructure checks that b equals a to the precision of the written
// files.
func sameStructure(t *testing.T, what string, a, b *Structure) {
	t.Helper()
	if !slices.Equal(a.AAType, b.AAType) || !slices.Equal(a.ResidueIndex, b.ResidueIndex) ||
		!slices.Equal(a.ChainID, b.ChainID) || !slices.Equal(a.Mask, b.Mask) {
		t.Fatalf("%s: residues, chains or masks differ (%d vs %d residues)", what, a.Len(), b.Len())
	}
	for i := range a.Positions {
		if math.Abs(a.Positions[i]-b.Positions[i]) > coordTol {
			t.Fatalf("%s: position %d: %v vs %v", what, i, a.Positions[i], b.Positions[i])
		}
	}
	for i := range a.BFactors {
		if math.Abs(a.BFactors[i]-b.BFactors[i]) > bTol {
			t.Fatalf("%s: B factor %d: %v vs %v", what, i, a.BFactors[i], b.BFactors[i])
		}
	}
}

// TestWriteReadBack writes every shared structure as PDB and mmCIF and
// reads it back with this package's readers.
func TestWriteReadBack(t *testing.T) {
	for _, file := range []string{"1hpv.pdb", "il2.pdb", "1a1p.pdb", "pept.pdb", "1tii.pdb", "3al1.pdb"} {
		t.Run(file, func(t *testing.T) {
			s := readStructureFile(t, file, AllChains)
			var p, c bytes.Buffer
			if err := WritePDB(&p, s); err != nil {
				t.Fatal(err)
			}
			if err := WriteMMCIF(&c, s, file); err != nil {
				t.Fatal(err)
			}
			sp, err := ReadPDB(&p, AllChains)
			if err != nil {
				t.Fatal(err)
			}
			sameStructure(t, "pdb", s, sp)
			sc, err := ReadMMCIF(&c, AllChains)
			if err != nil {
				t.Fatal(err)
			}
			sameStructure(t, "mmcif", s, sc)
			// Values that are already on the files' grid come back exactly.
			if !slices.Equal(sp.Positions, s.Positions) || !slices.Equal(sc.Positions, s.Positions) {
				t.Error("coordinates read from a PDB file do not survive a write and read unchanged")
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	base := func() *Structure {
		s := &Structure{AAType: []int{residue.Gly}, ResidueIndex: []int{1}, ChainID: []string{"A"},
			Positions: make([]float64, 37*3), Mask: make([]float64, 37), BFactors: make([]float64, 37)}
		s.Mask[residue.AtomCA] = 1
		return s
	}
	tests := []struct {
		name   string
		edit   func(s *Structure)
		pdb    error // error from WritePDB (nil: must succeed)
		mmcif  error
		phrase string
	}{
		{"two-letter chain", func(s *Structure) { s.ChainID[0] = "AB" }, ErrUnsupported, nil, "chain id"},
		{"residue number 10000", func(s *Structure) { s.ResidueIndex[0] = 10000 }, ErrUnsupported, nil, "columns 23–26"},
		{"residue number -1000", func(s *Structure) { s.ResidueIndex[0] = -1000 }, ErrUnsupported, nil, "columns 23–26"},
		{"coordinate 10000 Å", func(s *Structure) { s.Positions[3*residue.AtomCA] = 10000 }, ErrUnsupported, nil, "8 columns"},
		{"coordinate -1000 Å", func(s *Structure) { s.Positions[3*residue.AtomCA+2] = -1000 }, ErrUnsupported, nil, "8 columns"},
		{"B factor 1000", func(s *Structure) { s.BFactors[residue.AtomCA] = 1000 }, ErrUnsupported, nil, "6 columns"},
		{"NaN coordinate", func(s *Structure) { s.Positions[0] = math.NaN() }, num.ErrNaN, num.ErrNaN, "non-finite"},
		{"short mask", func(s *Structure) { s.Mask = s.Mask[:3] }, num.ErrShape, num.ErrShape, "mask"},
		{"aatype 25", func(s *Structure) { s.AAType[0] = 25 }, ErrFormat, ErrFormat, "type 25"},
		{"chain with a line break", func(s *Structure) { s.ChainID[0] = "\n" }, ErrUnsupported, ErrUnsupported, "chain id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []struct {
				format string
				want   error
				write  func(*bytes.Buffer, *Structure) error
			}{
				{"pdb", tt.pdb, func(b *bytes.Buffer, s *Structure) error { return WritePDB(b, s) }},
				{"mmcif", tt.mmcif, func(b *bytes.Buffer, s *Structure) error { return WriteMMCIF(b, s, "x") }},
			} {
				s := base()
				tt.edit(s)
				var buf bytes.Buffer
				err := f.write(&buf, s)
				if f.want == nil {
					if err != nil {
						t.Errorf("%s: %v", f.format, err)
					}
					continue
				}
				if !errors.Is(err, f.want) || !strings.Contains(err.Error(), tt.phrase) {
					t.Errorf("%s: error %v, want %v containing %q", f.format, err, f.want, tt.phrase)
				}
				if buf.Len() != 0 {
					t.Errorf("%s: %d bytes written before the error", f.format, buf.Len())
				}
			}
		})
	}
}

// TestWriteLimits writes the extreme values the PDB columns hold.
func TestWriteLimits(t *testing.T) {
	s := &Structure{AAType: []int{residue.Ala, residue.Unk}, ResidueIndex: []int{-999, 9999}, ChainID: []string{"z", "z"},
		Positions: make([]float64, 2*37*3), Mask: make([]float64, 2*37), BFactors: make([]float64, 2*37)}
	s.Mask[residue.AtomCA], s.Mask[37+residue.AtomN] = 1, 1
	s.Positions[3*residue.AtomCA] = -999.999
	s.Positions[3*residue.AtomCA+1] = 9999.999
	s.BFactors[residue.AtomCA] = 999.99
	s.BFactors[37+residue.AtomN] = -99.99
	var buf bytes.Buffer
	if err := WritePDB(&buf, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPDB(&buf, AllChains)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.ResidueIndex, s.ResidueIndex) || back.Sequence() != "AX" {
		t.Errorf("read back %v %s", back.ResidueIndex, back.Sequence())
	}
	// Positions read back are float32 numbers (spacing 9.8e-4 near 1e4):
	// within 5e-4 of the text, so writing them again gives the same text.
	if math.Abs(back.Positions[3*residue.AtomCA+1]-9999.999) > 5e-4 || back.BFactors[residue.AtomCA] != 999.99 {
		t.Errorf("read back %v, B %v", back.Positions[3*residue.AtomCA:3*residue.AtomCA+3], back.BFactors[residue.AtomCA])
	}
	var again bytes.Buffer
	if err := WritePDB(&again, back); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	if err := WritePDB(&first, s); err != nil {
		t.Fatal(err)
	}
	if again.String() != first.String() {
		t.Errorf("writing the read-back structure changes the file:\n%s\nvs\n%s", again.String(), first.String())
	}
}
