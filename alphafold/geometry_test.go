package alphafold

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/residue"
	"github.com/foldkit/foldkit/rigid"
)

// geoStructure reads chain of a real PDB entry from shared/structures (next
// to the reference cases), skipping the test when the files are absent.
func geoStructure(t testing.TB, file, chain string) *protein.Structure {
	t.Helper()
	dir, err := refcase.Dir()
	if err != nil {
		t.Skipf("structures not found: %v", err)
	}
	path := filepath.Join(dir, "..", "structures", file)
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("structure %s not found: %v", file, err)
	}
	defer f.Close()
	s, err := protein.ReadPDB(f, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// geoRMSD returns the backbone (atom14 slots N, CA, C) and all-atom RMSD of
// the rebuilt atoms against the ground truth over mask, the number of atoms
// and the largest deviation, in Å, without superposition.
func geoRMSD[T num.Float](rebuilt, truth, mask []T) (bb, all float64, atoms int, maxDev float64) {
	var sbb, sall float64
	nbb := 0
	for i, m := range mask {
		if m == 0 {
			continue
		}
		d := 0.0
		for j := range 3 {
			e := float64(rebuilt[3*i+j] - truth[3*i+j])
			d += e * e
		}
		sall += d
		atoms++
		maxDev = math.Max(maxDev, math.Sqrt(d))
		if i%geoN14 < 3 {
			sbb += d
			nbb++
		}
	}
	return math.Sqrt(sbb / float64(nbb)), math.Sqrt(sall / float64(atoms)), atoms, maxDev
}

// TestReconstructionRMSD reads each real structure, derives its frames and
// torsions, rebuilds all atoms with AF2's ideal geometry and measures the
// distance to the experimental atoms. The reference values are those of
// refcases README §9.3 (OpenFold on the same files; 4 decimals for the
// held-out 1tii and 3al1). The backbone RMSD is only the difference
// between real and ideal N–CA–C geometry (≲ 0.06 Å); the all-atom RMSD
// grows along side chains (≲ 0.5 Å).
func TestReconstructionRMSD(t *testing.T) {
	tests := []struct {
		file, chain    string
		bb, all        float64 // reference RMSDs
		atoms          int     // reference atom count (0: not given)
		maxDev         float64 // reference largest deviation (0: not given)
		bbBound, bound float64 // the bounds the test enforces: measured + margin
	}{
		{"1hpv.pdb", "A", 0.0531, 0.1783, 757, 0.671, 0.055, 0.19},
		{"il2.pdb", " ", 0.0293, 0.1615, 1025, 0.955, 0.031, 0.17},
		{"1a1p.pdb", " ", 0.0261, 0.4043, 107, 2.544, 0.028, 0.42},
		{"pept.pdb", "E", 0.0410, 0.2147, 106, 0.981, 0.043, 0.225},
		{"1tii.pdb", "A", 0.0576, 0.2401, 0, 0, 0.06, 0.25},
		{"3al1.pdb", "A", 0.0189, 0.3113, 0, 0, 0.02, 0.32},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".pdb"), func(t *testing.T) {
			s := geoStructure(t, tt.file, tt.chain)
			bb64, all64 := geoCheckRMSD[float64](t, s, tt.bb, tt.all, tt.atoms, tt.maxDev, tt.bbBound, tt.bound)
			bb32, all32 := geoCheckRMSD[float32](t, s, tt.bb, tt.all, tt.atoms, tt.maxDev, tt.bbBound, tt.bound)
			// float32 frames and torsions move rebuilt atoms by ~1e-5 Å.
			if math.Abs(bb32-bb64) > 1e-5 || math.Abs(all32-all64) > 1e-5 {
				t.Errorf("float32 RMSDs %.6f/%.6f differ from float64 %.6f/%.6f", bb32, all32, bb64, all64)
			}
		})
	}
}

func geoCheckRMSD[T num.Float](t *testing.T, s *protein.Structure, refBB, refAll float64, refAtoms int, refMax, bbBound, bound float64) (bb, all float64) {
	t.Helper()
	g, err := GroundTruthFromStructure[T](s)
	if err != nil {
		t.Fatal(err)
	}
	_, atom14, mask, err := g.Reconstruct()
	if err != nil {
		t.Fatal(err)
	}
	bb, all, atoms, maxDev := geoRMSD(atom14, g.Atom14.Positions, mask)
	t.Logf("%T: backbone RMSD %.4f Å, all-atom RMSD %.4f Å over %d atoms, max deviation %.3f Å", T(0), bb, all, atoms, maxDev)
	if bb > bbBound || all > bound {
		t.Errorf("RMSDs %.4f/%.4f Å exceed the bounds %.4f/%.4f", bb, all, bbBound, bound)
	}
	// The reference values are rounded to 4 decimals (3 for the maximum).
	if math.Abs(bb-refBB) > 6e-5 || math.Abs(all-refAll) > 6e-5 {
		t.Errorf("RMSDs %.5f/%.5f Å, OpenFold's %.4f/%.4f", bb, all, refBB, refAll)
	}
	if refAtoms != 0 && atoms != refAtoms {
		t.Errorf("%d atoms in the mask, OpenFold's %d", atoms, refAtoms)
	}
	if refMax != 0 && math.Abs(maxDev-refMax) > 6e-4 {
		t.Errorf("max deviation %.4f Å, OpenFold's %.3f", maxDev, refMax)
	}
	// The alternative torsions rebuild the renamed ground truth about as
	// well: they differ only on the π-periodic χ, whose two atoms AF2's
	// literature positions place symmetrically to within ~0.02 Å.
	bbf := make([]rigid.Rigid[T], len(g.AAType))
	for i := range bbf {
		bbf[i] = g.Groups.Frames[i*geoNG]
	}
	_, alt14, err := ReconstructAtom14(g.AAType, bbf, g.Torsions.AltSinCos)
	if err != nil {
		t.Fatal(err)
	}
	altMask := make([]T, len(mask))
	for i := range mask {
		altMask[i] = mask[i] * g.Atom14.AltExists[i]
	}
	_, altAll, _, _ := geoRMSD(alt14, g.Atom14.AltPositions, altMask)
	if math.Abs(altAll-all) > 0.01 {
		t.Errorf("alternative all-atom RMSD %.4f Å, %.4f Å with the standard torsions", altAll, all)
	}
	return bb, all
}

// TestReconstructionRMSDMeta compares the RMSDs with the unrounded values
// of the reference cases' meta.
func TestReconstructionRMSDMeta(t *testing.T) {
	for _, name := range geoCaseNames {
		t.Run(name, func(t *testing.T) {
			cs := refcase.Open(t, name)
			meta, err := refcase.ReadMeta(cs)
			if err != nil {
				t.Fatal(err)
			}
			text, err := cs.String("in/pdb_text")
			if err != nil {
				t.Fatal(err)
			}
			chain, err := cs.String("in/chain_id")
			if err != nil {
				t.Fatal(err)
			}
			s, err := protein.ReadPDB(strings.NewReader(text), chain)
			if err != nil {
				t.Fatal(err)
			}
			g, err := GroundTruthFromStructure[float64](s)
			if err != nil {
				t.Fatal(err)
			}
			_, atom14, mask, err := g.Reconstruct()
			if err != nil {
				t.Fatal(err)
			}
			bb, all, atoms, maxDev := geoRMSD(atom14, g.Atom14.Positions, mask)
			want := map[string]float64{"recon_backbone_rmsd_A(N,CA,C)": bb, "recon_heavy_atom_rmsd_A": all,
				"recon_heavy_atoms": float64(atoms), "recon_max_atom_deviation_A": maxDev}
			for k, got := range want {
				ref, ok := meta.Raw[k].(float64)
				if !ok {
					t.Fatalf("meta has no %s", k)
				}
				// Same float64 formulas: agreement to round-off.
				if math.Abs(got-ref) > 1e-10 {
					t.Errorf("%s = %.12g, reference %.12g", k, got, ref)
				}
			}
		})
	}
}

// geoDihedral is the IUPAC dihedral angle of four points in radians,
// computed independently of the frame construction: the atan2 form
// atan2(|b2| b1·(b2×b3), (b1×b2)·(b2×b3)) with b_k = p_k − p_(k−1).
func geoDihedral(p0, p1, p2, p3 [3]float64) float64 {
	sub := func(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
	cross := func(a, b [3]float64) [3]float64 {
		return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
	}
	dot := func(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
	b1, b2, b3 := sub(p1, p0), sub(p2, p1), sub(p3, p2)
	n1, n2 := cross(b1, b2), cross(b2, b3)
	return math.Atan2(math.Sqrt(dot(b2, b2))*dot(b1, n2), dot(n1, n2))
}

// TestTorsionAnglesIUPAC checks every torsion of a real chain against an
// independent dihedral formula: φ, pre-ω and χ are the IUPAC dihedrals of
// their atoms, ψ that of N, CA, C, O plus π. AF2's form differs only by the
// 1e-8 regulariser inside square roots of squared lengths of ~1 Å², so
// 1e-7 on sin and cos is generous.
func TestTorsionAnglesIUPAC(t *testing.T) {
	s := geoStructure(t, "1hpv.pdb", "A")
	ta, err := TorsionAnglesFromAtom37(s.AAType, s.Positions, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int, name string) [3]float64 {
		k, _ := residue.AtomTypeIndex(name)
		return geoAtom(s.Positions, i, k)
	}
	helixPhi := 0
	for i, a := range s.AAType {
		type tor struct {
			k     int
			atoms [4][3]float64
			shift float64
		}
		var ts []tor
		if i > 0 {
			ts = append(ts,
				tor{0, [4][3]float64{at(i-1, "CA"), at(i-1, "C"), at(i, "N"), at(i, "CA")}, 0},
				tor{1, [4][3]float64{at(i-1, "C"), at(i, "N"), at(i, "CA"), at(i, "C")}, 0})
		}
		ts = append(ts, tor{2, [4][3]float64{at(i, "N"), at(i, "CA"), at(i, "C"), at(i, "O")}, math.Pi})
		for k, chi := range residue.ChiAnglesAtoms(a) {
			ts = append(ts, tor{3 + k, [4][3]float64{at(i, chi[0]), at(i, chi[1]), at(i, chi[2]), at(i, chi[3])}, 0})
		}
		for _, tr := range ts {
			if ta.Mask[i*geoNTor+tr.k] != 1 {
				t.Fatalf("residue %d torsion %d masked", i, tr.k)
			}
			ang := geoDihedral(tr.atoms[0], tr.atoms[1], tr.atoms[2], tr.atoms[3]) + tr.shift
			gs, gc := ta.SinCos[2*(i*geoNTor+tr.k)], ta.SinCos[2*(i*geoNTor+tr.k)+1]
			if math.Abs(gs-math.Sin(ang)) > 1e-7 || math.Abs(gc-math.Cos(ang)) > 1e-7 {
				t.Errorf("residue %d torsion %d: (sin, cos) = (%.9f, %.9f), dihedral gives (%.9f, %.9f)", i, tr.k, gs, gc, math.Sin(ang), math.Cos(ang))
			}
			if tr.k == 1 && ang < -30*math.Pi/180 && ang > -90*math.Pi/180 {
				helixPhi++
			}
		}
		// Angles the type lacks are masked.
		for k := len(residue.ChiAnglesAtoms(a)); k < residue.NumChi; k++ {
			if ta.Mask[i*geoNTor+3+k] != 0 {
				t.Errorf("residue %d: χ%d of %s not masked", i, k+1, residue.ThreeLetter(a))
			}
		}
	}
	// HIV protease is mostly β, but the sign convention must put a fair
	// number of φ in the right-handed region (φ < 0).
	if helixPhi < 10 {
		t.Errorf("only %d residues with φ in (−90°, −30°): sign convention?", helixPhi)
	}
	if ta.Mask[0] != 0 || ta.Mask[1] != 0 {
		t.Errorf("first residue has pre-ω/φ masks %v %v, want 0", ta.Mask[0], ta.Mask[1])
	}
}

// TestTorsionAcrossGap checks that the previous residue is the previous row:
// il2 jumps from residue 78 to 83 (C–N 9.7 Å), and pre-ω and φ are still
// computed there, as AF2 does.
func TestTorsionAcrossGap(t *testing.T) {
	s := geoStructure(t, "il2.pdb", " ")
	ta, err := TorsionAnglesFromAtom37(s.AAType, s.Positions, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := 1; i < s.Len(); i++ {
		if s.ResidueIndex[i-1] == 78 && s.ResidueIndex[i] == 83 {
			found = true
			if ta.Mask[i*geoNTor] != 1 || ta.Mask[i*geoNTor+1] != 1 {
				t.Errorf("pre-ω/φ masks across the gap: %v %v, want 1", ta.Mask[i*geoNTor], ta.Mask[i*geoNTor+1])
			}
		}
	}
	if !found {
		t.Fatal("gap 78→83 not found")
	}
}

// TestGeometryEquivariance moves a real structure by a random rigid motion:
// frames and pseudo-β positions move with it, torsion angles, masks and the
// reconstruction error do not change. float64 round-off on coordinates of
// ~50 Å: 1e-11.
func TestGeometryEquivariance(t *testing.T) {
	s := geoStructure(t, "pept.pdb", "E")
	rng := rand.New(rand.NewPCG(1, 2))
	m := rigid.RandomRotation[float64](rng)
	m.Trans = [3]float64{12.5, -30, 7}
	moved := make([]float64, len(s.Positions))
	for i := 0; i < len(moved); i += 3 {
		p := m.Apply([3]float64{s.Positions[i], s.Positions[i+1], s.Positions[i+2]})
		copy(moved[i:i+3], p[:])
	}
	for i := range moved {
		moved[i] *= s.Mask[i/3] // absent atoms stay at 0, as a reader leaves them
	}
	g0, err := NewGroundTruth(s.AAType, s.Positions, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	g1, err := NewGroundTruth(s.AAType, moved, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	const tol = 1e-11
	for i := range g0.Groups.Frames {
		if g0.Groups.Exists[i] == 0 {
			continue
		}
		want := m.Compose(g0.Groups.Frames[i])
		got := g1.Groups.Frames[i]
		for k := range 9 {
			if math.Abs(got.Rot[k]-want.Rot[k]) > tol {
				t.Fatalf("frame %d rotation not equivariant: %v vs %v", i, got.Rot, want.Rot)
			}
		}
		for k := range 3 {
			if math.Abs(got.Trans[k]-want.Trans[k]) > tol {
				t.Fatalf("frame %d translation not equivariant", i)
			}
		}
	}
	for i, v := range g0.Torsions.SinCos {
		if g0.Torsions.Mask[i/2] == 1 && math.Abs(g1.Torsions.SinCos[i]-v) > tol {
			t.Fatalf("torsion value %d changed by the motion: %v vs %v", i, g1.Torsions.SinCos[i], v)
		}
	}
	for i := 0; i < len(g0.PseudoBeta); i += 3 {
		want := m.Apply([3]float64(g0.PseudoBeta[i : i+3]))
		for k := range 3 {
			if math.Abs(g1.PseudoBeta[i+k]-want[k]) > tol {
				t.Fatalf("pseudo-β %d not equivariant", i/3)
			}
		}
	}
	_, a0, m0, _ := g0.Reconstruct()
	_, a1, m1, _ := g1.Reconstruct()
	_, all0, _, _ := geoRMSD(a0, g0.Atom14.Positions, m0)
	_, all1, _, _ := geoRMSD(a1, g1.Atom14.Positions, m1)
	if math.Abs(all0-all1) > tol {
		t.Errorf("reconstruction RMSD %v after the motion, %v before", all1, all0)
	}
}

// TestBackboneFrameAlg21 checks the backbone frames against Alg. 21's
// definition: origin CA, x along CA→C, N in the xy plane with positive y, a
// proper rotation. The 1e-8 regulariser changes unit vectors of ~1.5 Å
// axes by ~2e-9; 1e-8 bounds it.
func TestBackboneFrameAlg21(t *testing.T) {
	s := geoStructure(t, "1a1p.pdb", " ")
	frames, exists, err := BackboneFrames(s.Positions, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	g, err := FramesFromAtom37(s.AAType, s.Positions, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if f != g.Frames[i*geoNG] || exists[i] != g.Exists[i*geoNG] {
			t.Errorf("residue %d: BackboneFrames and FramesFromAtom37 group 0 differ", i)
		}
		if exists[i] == 0 {
			if s.AAType[i] != residue.Unk {
				t.Errorf("residue %d has no backbone frame", i)
			}
			continue
		}
		want, err := rigid.FromThreePointsAlg21(geoAtom(s.Positions, i, residue.AtomN), geoAtom(s.Positions, i, residue.AtomCA), geoAtom(s.Positions, i, residue.AtomC))
		if err != nil {
			t.Fatal(err)
		}
		for k := range 9 {
			if math.Abs(f.Rot[k]-want.Rot[k]) > 1e-8 {
				t.Errorf("residue %d: rotation %v, Alg. 21 gives %v", i, f.Rot, want.Rot)
				break
			}
		}
		if f.Trans != want.Trans {
			t.Errorf("residue %d: origin %v, want CA %v", i, f.Trans, want.Trans)
		}
		if err := f.CheckRotation(1e-8); err != nil {
			t.Errorf("residue %d: %v", i, err)
		}
		n := f.InvertApply(geoAtom(s.Positions, i, residue.AtomN))
		if math.Abs(n[2]) > 1e-8 || n[1] <= 0 {
			t.Errorf("residue %d: N in the frame at %v, want z = 0, y > 0", i, n)
		}
	}
	// 1a1p's C-terminal NH2 has only N: no frame, no torsions, but a
	// pseudo-β slot (CB, absent).
	last := s.Len() - 1
	if s.AAType[last] != residue.Unk || exists[last] != 0 {
		t.Errorf("NH2 cap: type %d, backbone exists %v", s.AAType[last], exists[last])
	}
}

// TestPseudoBeta checks CA for glycine and CB otherwise on a real chain.
func TestPseudoBeta(t *testing.T) {
	s := geoStructure(t, "1hpv.pdb", "A")
	pb, pm, err := PseudoBeta(s.AAType, s.Positions, s.Mask)
	if err != nil {
		t.Fatal(err)
	}
	glycines := 0
	for i, a := range s.AAType {
		k := residue.AtomCB
		if a == residue.Gly {
			k = residue.AtomCA
			glycines++
		}
		if [3]float64(pb[3*i:3*i+3]) != geoAtom(s.Positions, i, k) || pm[i] != s.Mask[i*geoNA+k] {
			t.Errorf("residue %d (%s): pseudo-β %v", i, residue.ThreeLetter(a), pb[3*i:3*i+3])
		}
	}
	if glycines == 0 {
		t.Error("no glycine tested")
	}
}

// TestAmbiguousAtoms checks the renamed ground truth and the alternative
// frames and torsions on the residue types with symmetric side chains.
func TestAmbiguousAtoms(t *testing.T) {
	s := geoStructure(t, "1hpv.pdb", "A")
	g, err := GroundTruthFromStructure[float64](s)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i, a := range s.AAType {
		swaps := residue.AtomRenamingSwaps(a)
		for k := range geoN14 {
			o := i*geoN14 + k
			if (g.Atom14.IsAmbiguous[o] == 1) != (len(swaps) > 0 && g.Atom14.Exists[o] == 1 && geoInSwaps(residue.Atom14Names(a)[k], swaps)) {
				t.Errorf("residue %d atom %d: ambiguous flag %v", i, k, g.Atom14.IsAmbiguous[o])
			}
		}
		for _, sw := range swaps {
			k0, _ := residue.Atom14Index(a, sw[0])
			k1, _ := residue.Atom14Index(a, sw[1])
			p := g.Atom14.Positions
			q := g.Atom14.AltPositions
			if [3]float64(q[3*(i*geoN14+k0):]) != [3]float64(p[3*(i*geoN14+k1):]) || [3]float64(q[3*(i*geoN14+k1):]) != [3]float64(p[3*(i*geoN14+k0):]) {
				t.Errorf("residue %d %s: %s and %s not swapped", i, residue.ThreeLetter(a), sw[0], sw[1])
			}
			seen[a] = true
		}
		for grp := range geoNG {
			o := i*geoNG + grp
			f, alt := g.Groups.Frames[o], g.Groups.AltFrames[o]
			if g.Groups.IsAmbiguous[o] == 0 {
				if f != alt {
					t.Errorf("residue %d group %d: alternative frame differs", i, grp)
				}
				continue
			}
			// A turn by π about the group's x axis.
			want := f.Compose(rigid.Rigid[float64]{Rot: [9]float64{1, 0, 0, 0, -1, 0, 0, 0, -1}})
			if want != alt {
				t.Errorf("residue %d group %d: alternative frame is not a turn by π about x", i, grp)
			}
			if grp != 4+len(residue.ChiAnglesAtoms(a))-1 {
				t.Errorf("residue %d: ambiguous group %d", i, grp)
			}
			k := grp - 1 // torsion index of the group
			o2 := 2 * (i*geoNTor + k)
			if g.Torsions.AltSinCos[o2] != -g.Torsions.SinCos[o2] || g.Torsions.AltSinCos[o2+1] != -g.Torsions.SinCos[o2+1] {
				t.Errorf("residue %d: alternative torsion %d is not shifted by π", i, k)
			}
		}
	}
	for _, a := range []int{residue.Asp, residue.Glu, residue.Phe, residue.Tyr} {
		if !seen[a] {
			t.Logf("1hpv A has no %s", residue.ThreeLetter(a))
		}
	}
}

func geoInSwaps(name string, swaps [][2]string) bool {
	for _, s := range swaps {
		if s[0] == name || s[1] == name {
			return true
		}
	}
	return false
}

// TestGeometryMissingAtoms removes atoms from a real residue: masks follow,
// every output stays finite and nothing fails.
func TestGeometryMissingAtoms(t *testing.T) {
	s := geoStructure(t, "pept.pdb", "E")
	pos := append([]float64(nil), s.Positions...)
	mask := append([]float64(nil), s.Mask...)
	const r = 3 // a TRP
	for _, name := range []string{"CA", "CD1"} {
		k, _ := residue.AtomTypeIndex(name)
		mask[r*geoNA+k] = 0
		pos[3*(r*geoNA+k)], pos[3*(r*geoNA+k)+1], pos[3*(r*geoNA+k)+2] = 0, 0, 0
	}
	// A residue with no atoms at all.
	for k := range geoNA {
		mask[5*geoNA+k] = 0
		pos[3*(5*geoNA+k)], pos[3*(5*geoNA+k)+1], pos[3*(5*geoNA+k)+2] = 0, 0, 0
	}
	g, err := NewGroundTruth(s.AAType, pos, mask)
	if err != nil {
		t.Fatal(err)
	}
	frames, atom14, rmask, err := g.Reconstruct()
	if err != nil {
		t.Fatal(err)
	}
	rot, trans := rigid.ToArrays(frames)
	for _, x := range [][]float64{rot, trans, atom14, g.Torsions.SinCos, g.Torsions.AltSinCos, rigidArrays(g.Groups.Frames), rigidArrays(g.Groups.AltFrames)} {
		if err := num.CheckFinite("output", x); err != nil {
			t.Fatal(err)
		}
	}
	if g.Groups.Exists[r*geoNG] != 0 || g.Groups.Exists[r*geoNG+3] != 0 {
		t.Error("frames built without CA marked present")
	}
	for k := range geoNTor {
		if g.Torsions.Mask[r*geoNTor+k] != 0 {
			t.Errorf("torsion %d of a residue without CA marked present", k)
		}
	}
	for k := range geoN14 {
		if rmask[r*geoN14+k] != 0 || rmask[5*geoN14+k] != 0 {
			t.Errorf("atom %d of a residue without backbone frame counted", k)
		}
	}
}

func rigidArrays(f []rigid.Rigid[float64]) []float64 {
	rot, trans := rigid.ToArrays(f)
	return append(rot, trans...)
}

func TestGeometryBadInputs(t *testing.T) {
	aa := []int{0, 7}
	pos := make([]float64, 2*37*3)
	mask := make([]float64, 2*37)
	nan := append([]float64(nil), pos...)
	nan[5] = math.NaN()
	cases := []struct {
		name string
		err  error
		f    func() error
	}{
		{"short positions", num.ErrShape, func() error { _, err := NewGroundTruth(aa, pos[:10], mask); return err }},
		{"short mask", num.ErrShape, func() error { _, err := FramesFromAtom37(aa, pos, mask[:3]); return err }},
		{"NaN position", num.ErrNaN, func() error { _, err := TorsionAnglesFromAtom37(aa, nan, mask); return err }},
		{"aatype 21", num.ErrShape, func() error { _, err := MakeAtom14GroundTruth([]int{0, 21}, pos, mask); return err }},
		{"aatype -1", num.ErrShape, func() error { _, err := MakeAtom14Maps[float64]([]int{-1}); return err }},
		{"pseudo-β aatype", num.ErrShape, func() error { _, _, err := PseudoBeta([]int{0, 30}, pos, mask); return err }},
		{"backbone frames length", num.ErrShape, func() error { _, _, err := BackboneFrames(pos[:7], mask); return err }},
		{"reconstruct sin/cos length", num.ErrShape, func() error {
			_, _, err := ReconstructAtom14(aa, make([]rigid.Rigid[float64], 2), make([]float64, 5))
			return err
		}},
		{"reconstruction mask length", num.ErrShape, func() error {
			_, err := ReconstructionMask(aa, make([]float64, 28), make([]float64, 1), make([]float64, 14))
			return err
		}},
		{"invalid structure", num.ErrShape, func() error {
			_, err := GroundTruthFromStructure[float32](&protein.Structure{AAType: aa})
			return err
		}},
	}
	for _, c := range cases {
		if err := c.f(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
		} else if !strings.HasPrefix(err.Error(), "alphafold: ") {
			t.Errorf("%s: error %q lacks the package prefix", c.name, err)
		}
	}
	// All-zero coordinates (every atom absent) give finite, masked output.
	g, err := NewGroundTruth(aa, pos, mask)
	if err != nil {
		t.Fatal(err)
	}
	if err := num.CheckFinite("torsions of zeros", g.Torsions.SinCos); err != nil {
		t.Error(err)
	}
	for _, m := range [][]float64{g.Groups.Exists, g.Torsions.Mask, g.Atom14.Exists, g.PseudoBetaMask} {
		for _, v := range m {
			if v != 0 {
				t.Fatal("mask set without atoms")
			}
		}
	}
}

// BenchmarkGroundTruth derives every ground-truth feature of 1tii (all
// chains, 927 residues) and rebuilds its atoms.
func BenchmarkGroundTruth(b *testing.B) {
	s := geoStructure(b, "1tii.pdb", protein.AllChains)
	b.Run("float32", func(b *testing.B) { geoBench[float32](b, s) })
	b.Run("float64", func(b *testing.B) { geoBench[float64](b, s) })
}

func geoBench[T num.Float](b *testing.B, s *protein.Structure) {
	for b.Loop() {
		g, err := GroundTruthFromStructure[T](s)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := g.Reconstruct(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*s.Len()), "ns/residue")
}
