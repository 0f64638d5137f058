package alphafold

import (
	"strings"

	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/rigid"
)

// RunProteinCase runs a protein_* reference case for `foldkit run-module`:
// it reads the PDB text in/pdb_text, keeps chain in/chain_id (" " is the
// blank chain), derives the ground truth (NewGroundTruth) and rebuilds the
// atoms from it (GroundTruth.Reconstruct), in float32 or float64 (dtype),
// and returns every out/ array of the case under its name: integer arrays
// as integers, frames as [N,8,4,4] homogeneous matrices, the read positions
// and masks in dtype, B factors in float64 (they are read, not computed).
// There are no gradients; grad is refused.
func RunProteinCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	c := casekit.New(cs, "alphafold: protein case", nil)
	if grad {
		return nil, c.Errorf("protein cases have no gradients")
	}
	text, err := cs.String("in/pdb_text")
	if err != nil {
		return nil, err
	}
	chain, err := cs.String("in/chain_id")
	if err != nil {
		return nil, err
	}
	s, err := protein.ReadPDB(strings.NewReader(text), chain)
	if err != nil {
		return nil, err
	}
	run, err := casekit.ByDType(c, dtype, runProteinCase[float32], runProteinCase[float64])
	if err != nil {
		return nil, err
	}
	return run(c, s)
}

func runProteinCase[T num.Float](c *casekit.Case, s *protein.Structure) (*params.Set, error) {
	g, err := GroundTruthFromStructure[T](s)
	if err != nil {
		return nil, err
	}
	frames, atom14, mask, err := g.Reconstruct()
	if err != nil {
		return nil, err
	}
	n := s.Len()
	put := func(name string, shape []int, x []T) { casekit.Put(c, "out/"+name, shape, x) }
	ints := func(name string, shape []int, x []int) { c.PutInts("out/"+name, shape, x) }
	s37, s14, s8, s7 := []int{n, 37}, []int{n, 14}, []int{n, 8}, []int{n, 7}
	ints("aatype", []int{n}, g.AAType)
	ints("residue_index", []int{n}, s.ResidueIndex)
	put("all_atom_positions", []int{n, 37, 3}, g.Positions)
	put("all_atom_mask", s37, g.Mask)
	casekit.Put(c, "out/b_factors", s37, s.BFactors)
	put("atom14_atom_exists", s14, g.Maps.Atom14Exists)
	put("atom37_atom_exists", s37, g.Maps.Atom37Exists)
	ints("residx_atom14_to_atom37", s14, g.Maps.Atom14ToAtom37)
	ints("residx_atom37_to_atom14", s37, g.Maps.Atom37ToAtom14)
	put("atom14_gt_positions", []int{n, 14, 3}, g.Atom14.Positions)
	put("atom14_gt_exists", s14, g.Atom14.Exists)
	put("atom14_alt_gt_positions", []int{n, 14, 3}, g.Atom14.AltPositions)
	put("atom14_alt_gt_exists", s14, g.Atom14.AltExists)
	put("atom14_atom_is_ambiguous", s14, g.Atom14.IsAmbiguous)
	put("rigidgroups_gt_frames", []int{n, 8, 4, 4}, Frames4x4(g.Groups.Frames))
	put("rigidgroups_alt_gt_frames", []int{n, 8, 4, 4}, Frames4x4(g.Groups.AltFrames))
	put("rigidgroups_gt_exists", s8, g.Groups.Exists)
	put("rigidgroups_group_exists", s8, g.Groups.GroupExists)
	put("rigidgroups_group_is_ambiguous", s8, g.Groups.IsAmbiguous)
	put("torsion_angles_sin_cos", []int{n, 7, 2}, g.Torsions.SinCos)
	put("alt_torsion_angles_sin_cos", []int{n, 7, 2}, g.Torsions.AltSinCos)
	put("torsion_angles_mask", s7, g.Torsions.Mask)
	put("pseudo_beta", []int{n, 3}, g.PseudoBeta)
	put("pseudo_beta_mask", []int{n}, g.PseudoBetaMask)
	put("recon_frames", []int{n, 8, 4, 4}, Frames4x4(frames))
	put("recon_atom14_positions", []int{n, 14, 3}, atom14)
	put("recon_atom14_mask", s14, mask)
	return c.Result()
}

// Frames4x4 returns frames as row-major 4×4 homogeneous matrices
// [[R, t], [0 0 0 1]], [len(frames),4,4], the layout AF2's data pipeline
// stores rigid-group frames in.
func Frames4x4[T num.Float](frames []rigid.Rigid[T]) []T {
	out := make([]T, 16*len(frames))
	for i, f := range frames {
		m := out[16*i : 16*i+16]
		for r := range 3 {
			m[4*r], m[4*r+1], m[4*r+2], m[4*r+3] = f.Rot[3*r], f.Rot[3*r+1], f.Rot[3*r+2], f.Trans[r]
		}
		m[15] = 1
	}
	return out
}
