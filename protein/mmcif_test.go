package protein

import (
	"errors"
	"github.com/foldkit/foldkit/internal/gemmitest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/residue"
)

// gemmiToCIF converts a PDB file to mmCIF with gemmi. 1hpv's columns 73–80
// are not what gemmi expects (it fails on the charge column), so lines are
// cut to 72 columns first, which keeps every column the readers use.
const gemmiToCIF = `
import sys, gemmi
text = ''.join(l[:72].rstrip() + '\n' for l in open(sys.argv[1]))
st = gemmi.read_pdb_string(text)
st.setup_entities()
st.make_mmcif_document().write_file(sys.argv[2])
`

// TestReadMMCIFGemmi converts every shared structure to mmCIF with gemmi (a
// real-world mmCIF writer: label and author columns, alternate locations
// with occupancies, waters, no group_PDB column) and checks that ReadMMCIF
// gives exactly what ReadPDB gives on the original, chain by chain.
func TestReadMMCIFGemmi(t *testing.T) {
	py := gemmitest.Python(t)
	dir := t.TempDir()
	for _, file := range []string{"1hpv.pdb", "il2.pdb", "1a1p.pdb", "pept.pdb", "1tii.pdb", "3al1.pdb"} {
		t.Run(file, func(t *testing.T) {
			src := structurePath(t, file)
			cif := filepath.Join(dir, file+".cif")
			if out, err := exec.Command(py, "-c", gemmiToCIF, src, cif).CombinedOutput(); err != nil {
				t.Fatalf("gemmi: %v\n%s", err, out)
			}
			all := readStructureFile(t, file, AllChains)
			for _, chain := range append([]string{AllChains}, all.Chains()...) {
				want := readStructureFile(t, file, chain)
				f, err := os.Open(cif)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ReadMMCIF(f, chain)
				f.Close()
				if err != nil {
					t.Fatalf("chain %q: %v", chain, err)
				}
				if !slices.Equal(got.AAType, want.AAType) || !slices.Equal(got.ResidueIndex, want.ResidueIndex) ||
					!slices.Equal(got.ChainID, want.ChainID) || !slices.Equal(got.Mask, want.Mask) ||
					!slices.Equal(got.Positions, want.Positions) || !slices.Equal(got.BFactors, want.BFactors) {
					t.Errorf("chain %q: mmCIF and PDB readings differ (%d vs %d residues)", chain, got.Len(), want.Len())
				}
			}
		})
	}
}

// TestReadMMCIFSyntax reads small files that use CIF's quoting, text
// fields, comments, single-row categories and several data blocks.
func TestReadMMCIFSyntax(t *testing.T) {
	const header = "loop_\n_atom_site.group_PDB\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n" +
		"_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n" +
		"_atom_site.B_iso_or_equiv\n"
	tests := []struct {
		name, text, chain string
		seq               string
		chains            []string
		atoms             [][]string
	}{
		{
			name: "quotes, comments, text fields, other categories",
			text: "# a comment\ndata_test\n_entry.id 'my entry'\n_struct.title\n;A title\nwith two lines\n;\n" +
				"loop_\n_other.a\n_other.b\n1 \"x y\"\n2 'it''s'\n#\n" + header +
				"ATOM N GLY A 1 1.0 2.0 3.0 10\nATOM \"CA\" GLY A 1 2 3 4 11 # trailing comment\n" +
				"ATOM 'C' GLY A 1 3 4 5 12\nHETATM O HOH A 2 9 9 9 20\nATOM \"O5'\" DG A 3 1 1 1 0\n#\n",
			seq: "GX", chains: []string{"A", "A"}, atoms: [][]string{{"N", "CA", "C"}, {"O"}},
		},
		{
			name: "single-row _atom_site, case-insensitive tags",
			text: "data_one\n_ATOM_SITE.label_atom_id CA\n_atom_site.label_comp_id ALA\n_atom_site.auth_asym_id B\n" +
				"_atom_site.auth_seq_id 7\n_atom_site.Cartn_x 1\n_atom_site.cartn_y 2\n_atom_site.Cartn_z 3\n",
			seq: "A", chains: []string{"B"}, atoms: [][]string{{"CA"}},
		},
		{
			name: "only the first data block; label columns as fallback; null insertion code",
			text: "data_a\nloop_\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.label_asym_id\n" +
				"_atom_site.label_seq_id\n_atom_site.pdbx_PDB_ins_code\n_atom_site.label_alt_id\n_atom_site.occupancy\n" +
				"_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n" +
				"CA SER C 5 ? A 0.4 1 1 1\nCA SER C 5 . B 0.6 2 2 2\ndata_b\n_atom_site.label_atom_id N\n",
			seq: "S", chains: []string{"C"}, atoms: [][]string{{"CA"}},
		},
		{
			name:  "chain selection, blank chain as ''",
			text:  "data_x\n" + header + "ATOM CA ALA '' 1 1 1 1 0\nATOM CA CYS Z 2 1 1 1 0\n",
			chain: " ", seq: "A", chains: []string{" "}, atoms: [][]string{{"CA"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ReadMMCIF(strings.NewReader(tt.text), tt.chain)
			if err != nil {
				t.Fatal(err)
			}
			if s.Sequence() != tt.seq || !slices.Equal(s.ChainID, tt.chains) {
				t.Fatalf("sequence %s chains %q, want %s %q", s.Sequence(), s.ChainID, tt.seq, tt.chains)
			}
			for i, want := range tt.atoms {
				if got := atomsOf(s, i); !slices.Equal(got, want) {
					t.Errorf("residue %d atoms %v, want %v", i, got, want)
				}
			}
		})
	}
	// The alternate of higher occupancy (B, x = 2) is kept.
	s, err := ReadMMCIF(strings.NewReader(tests[2].text), AllChains)
	if err != nil {
		t.Fatal(err)
	}
	if p := posOf(s, 0, "CA"); p != [3]float64{2, 2, 2} || s.ResidueIndex[0] != 5 {
		t.Errorf("CA %v residue %d, want altloc B at 2,2,2 and number 5", p, s.ResidueIndex[0])
	}
	if b := s.BFactors[residue.AtomCA]; b != 0 {
		t.Errorf("missing B factor read as %v", b)
	}
}

func TestReadMMCIFErrors(t *testing.T) {
	const head = "data_x\nloop_\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.auth_asym_id\n" +
		"_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n"
	tests := []struct {
		name, text, chain string
		err               error
		phrase            string
	}{
		{"empty", "", "", ErrFormat, "empty input"},
		{"comments only", "# nothing\n#\n", "", ErrFormat, "empty input"},
		{"no atom_site", "data_x\n_entry.id x\n", "", ErrFormat, "no _atom_site"},
		{"truncated loop", head + "CA ALA A 1 1 2 3\nCB ALA A 1 1 2\n", "", ErrFormat, "not a multiple"},
		{"missing coordinate column", "data_x\nloop_\n_atom_site.label_atom_id\n_atom_site.auth_seq_id\nCA 1\n", "", ErrFormat, "cartn_x"},
		{"coordinate not a number", head + "CA ALA A 1 1 2 x\n", "", ErrFormat, "cartn_z"},
		{"null coordinate", head + "CA ALA A 1 1 ? 3\n", "", ErrFormat, "cartn_y"},
		{"residue number not an integer", head + "CA ALA A 1.5 1 2 3\n", "", ErrFormat, "not an integer"},
		{"no residue number", "data_x\nloop_\n_atom_site.label_atom_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\nCA 1 2 3\n", "", ErrFormat, "residue number"},
		{"unterminated quote", head + "'CA ALA A 1 1 2 3\n", "", ErrFormat, "unterminated"},
		{"unterminated text field", "data_x\n_struct.title\n;text\n", "", ErrFormat, "text field"},
		{"tag without value", "data_x\n_entry.id\n_struct.title x\n", "", ErrFormat, "no value"},
		{"value without tag", "data_x\nfoo\n", "", ErrFormat, "without a tag"},
		{"loop without tags", "data_x\nloop_\n", "", ErrFormat, "without tags"},
		{"two models", "data_x\nloop_\n_atom_site.label_atom_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n" +
			"_atom_site.Cartn_z\n_atom_site.pdbx_PDB_model_num\nCA 1 1 2 3 1\nCA 1 1 2 3 2\n", "", ErrUnsupported, "single-model"},
		{"insertion code", "data_x\nloop_\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.auth_seq_id\n" +
			"_atom_site.pdbx_PDB_ins_code\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\nCA ALA 1 A 1 2 3\n", "", ErrUnsupported, "insertion code"},
		{"chain absent", head + "CA ALA A 1 1 2 3\n", "B", ErrFormat, `chain "B"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadMMCIF(strings.NewReader(tt.text), tt.chain)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.phrase) || !strings.HasPrefix(err.Error(), "protein: ") {
				t.Errorf("error %v, want %v containing %q", err, tt.err, tt.phrase)
			}
		})
	}
}

// TestReadMMCIFTruncations cuts a written mmCIF file at many offsets: the
// reader returns a structure or an error, never panics.
func TestReadMMCIFTruncations(t *testing.T) {
	s := readStructureFile(t, "pept.pdb", "E")
	var b strings.Builder
	if err := WriteMMCIF(&b, s, "pept"); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for n := 0; n < len(text); n += 7 {
		got, err := ReadMMCIF(strings.NewReader(text[:n]), AllChains)
		if err == nil {
			if err := got.Validate(); err != nil {
				t.Fatalf("cut at %d: %v", n, err)
			}
		} else if !errors.Is(err, ErrFormat) {
			t.Fatalf("cut at %d: %v does not wrap ErrFormat", n, err)
		}
	}
}

// FuzzReadMMCIF feeds arbitrary text to the mmCIF reader: it must return a
// valid structure or an error, never panic.
func FuzzReadMMCIF(f *testing.F) {
	f.Add("data_x\nloop_\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\nCA GLY 1 1 2 3\n", AllChains)
	f.Add("data_x\n_atom_site.label_atom_id 'CA'\n_atom_site.auth_seq_id 1\n_atom_site.Cartn_x 1\n_atom_site.Cartn_y ;\n;\n_atom_site.Cartn_z 3\n", " ")
	f.Add("data_x\n_t\n;a\n;\nloop_\n_atom_site.x\n\"a\"b\" 'c'\n", "A")
	f.Fuzz(func(t *testing.T, text, chain string) {
		s, err := ReadMMCIF(strings.NewReader(text), chain)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("invalid structure without an error: %v", err)
		}
	})
}
