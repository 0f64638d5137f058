package alphafold

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
)

// geoCaseNames are the protein_* reference cases (refcases README §9).
var geoCaseNames = []string{"protein_1hpv.npz", "protein_il2.npz", "protein_1a1p.npz", "protein_pept.npz"}

// geoCaseKeys lists every out/ key of a protein case with how it is
// compared: kind "int" (exact integers), "exact" (floats that are copies or
// 0/1 masks: exact in either dtype, since the positions read are float32
// numbers), "frames" and "sincos" (computed; compared where mask, another
// out/ key, is 1, as §9 prescribes: where it is 0 the values come from
// zero coordinates and differ by ~1e-7 through cancellation) and "recon"
// (reconstructed positions).
var geoCaseKeys = []struct {
	name, kind, mask string
	stride           int // values per mask entry
}{
	{name: "aatype", kind: "int"},
	{name: "residue_index", kind: "int"},
	{name: "residx_atom14_to_atom37", kind: "int"},
	{name: "residx_atom37_to_atom14", kind: "int"},
	{name: "all_atom_positions", kind: "exact"},
	{name: "all_atom_mask", kind: "exact"},
	{name: "b_factors", kind: "exact"},
	{name: "atom14_atom_exists", kind: "exact"},
	{name: "atom37_atom_exists", kind: "exact"},
	{name: "atom14_gt_positions", kind: "exact"},
	{name: "atom14_gt_exists", kind: "exact"},
	{name: "atom14_alt_gt_positions", kind: "exact"},
	{name: "atom14_alt_gt_exists", kind: "exact"},
	{name: "atom14_atom_is_ambiguous", kind: "exact"},
	{name: "rigidgroups_gt_exists", kind: "exact"},
	{name: "rigidgroups_group_exists", kind: "exact"},
	{name: "rigidgroups_group_is_ambiguous", kind: "exact"},
	{name: "torsion_angles_mask", kind: "exact"},
	{name: "pseudo_beta", kind: "exact"},
	{name: "pseudo_beta_mask", kind: "exact"},
	{name: "recon_atom14_mask", kind: "exact"},
	{name: "rigidgroups_gt_frames", kind: "frames", mask: "rigidgroups_gt_exists", stride: 16},
	{name: "rigidgroups_alt_gt_frames", kind: "frames", mask: "rigidgroups_gt_exists", stride: 16},
	{name: "recon_frames", kind: "frames", mask: "rigidgroups_gt_exists", stride: 16},
	{name: "torsion_angles_sin_cos", kind: "sincos", mask: "torsion_angles_mask", stride: 2},
	{name: "alt_torsion_angles_sin_cos", kind: "sincos", mask: "torsion_angles_mask", stride: 2},
	// Rebuilt atoms agree everywhere, not only on recon_atom14_mask: atoms
	// placed with masked torsions come from the same formula values.
	{name: "recon_atom14_positions", kind: "recon"},
}

func TestProteinRefcases(t *testing.T) {
	for _, name := range geoCaseNames {
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(strings.TrimSuffix(name, ".npz")+"/"+dtype, func(t *testing.T) {
				cs := refcase.Open(t, name)
				meta, err := refcase.ReadMeta(cs)
				if err != nil {
					t.Fatal(err)
				}
				res, err := RunProteinCase(cs, dtype, false)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range cs.Unused() {
					if strings.HasPrefix(u, "in/") {
						t.Errorf("input %s not read", u)
					}
				}
				// Tolerances from meta.tolerance (§9.3): float64 computed
				// values 1e-8 (the formulas reproduce the files to ~1e-13;
				// the 1e-8 regulariser alone moves frames by ~5e-9);
				// float32 frames and sin/cos 1e-4, positions 5e-4 Å (ten
				// times OpenFold's own float32 error, 1.8e-7 on frames,
				// 4.6e-6 on sin/cos, 1.5e-5 Å on rebuilt atoms).
				absFrames := meta.Tol(1e-8, "float64_frames_sin_cos_positions_abs")
				absPos := absFrames
				if dtype == "float32" {
					absFrames = meta.Tol(1e-4, "float32_frames_and_sin_cos_abs")
					absPos = meta.Tol(5e-4, "float32_positions_abs_A")
				}
				for _, k := range geoCaseKeys {
					key := "out/" + k.name
					shape, err := cs.Shape(key)
					if err != nil {
						t.Fatal(err)
					}
					if k.kind == "int" {
						want, err := params.Ints(cs, key, shape...)
						if err != nil {
							t.Fatal(err)
						}
						got, err := params.Ints(res, key, shape...)
						if err != nil {
							t.Fatal(err)
						}
						if !slices.Equal(got, want) {
							t.Errorf("%s: integers differ", k.name)
						}
						continue
					}
					want, err := params.Get[float64](cs, key, shape...)
					if err != nil {
						t.Fatal(err)
					}
					got, err := params.Get[float64](res, key, shape...)
					if err != nil {
						t.Fatal(err)
					}
					var skip func(int) bool
					if k.mask != "" {
						// Every mask is [N, groups]: [N,8] for frames
						// [N,8,4,4], [N,7] for sin/cos, [N,14] for atoms.
						m, err := params.Get[float64](cs, "out/"+k.mask, shape[:2]...)
						if err != nil {
							t.Fatal(err)
						}
						skip = func(i int) bool { return m[i/k.stride] == 0 }
					}
					switch k.kind {
					case "exact":
						refcase.Compare(t, k.name, got, want, 0, 0)
					case "frames", "sincos":
						refcase.CompareSkip(t, k.name, got, want, absFrames, 0, skip)
					case "recon":
						refcase.CompareSkip(t, k.name, got, want, absPos, 0, skip)
					}
				}
			})
		}
	}
}

func TestRunProteinCaseErrors(t *testing.T) {
	cs := refcase.Open(t, "protein_pept.npz")
	if _, err := RunProteinCase(cs, "float64", true); err == nil {
		t.Error("grad accepted")
	}
	if _, err := RunProteinCase(cs, "float16", false); err == nil {
		t.Error("dtype float16 accepted")
	}
	empty := params.New()
	if _, err := RunProteinCase(empty, "float64", false); err == nil {
		t.Error("case without in/pdb_text accepted")
	}
	bad := params.New()
	if err := params.PutString(bad, "in/pdb_text", "ATOM      1  N   ALA A   1      1.0"); err != nil {
		t.Fatal(err)
	}
	if err := params.PutString(bad, "in/chain_id", "A"); err != nil {
		t.Fatal(err)
	}
	if _, err := RunProteinCase(bad, "float64", false); !errors.Is(err, protein.ErrFormat) {
		t.Errorf("truncated PDB: got %v, want ErrFormat", err)
	}
}
