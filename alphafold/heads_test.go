package alphafold

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

// smRandomHeads returns heads with random parameters (the recipe of
// smRandomParams), the same values for float32 and float64.
func smRandomHeads[T num.Float](t testing.TB, cfg HeadsConfig, seed uint64) *HeadsParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 77))
	p, err := NewHeadsParams[float64](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	smRandomize(rng, p.tensors())
	s := params.New()
	if err := p.Save(s, ""); err != nil {
		t.Fatal(err)
	}
	q, err := LoadHeadsParams[T](s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// smSmallHeads is a heads configuration with a few channels each.
func smSmallHeads() HeadsConfig {
	c := DefaultHeadsConfig()
	c.CS, c.CZ, c.CM, c.PLDDTChannels, c.PLDDTBins = 5, 4, 6, 3, 7
	c.DistogramBins, c.MSAClasses, c.PAEBins = 6, 5, 8
	c.PredictedAlignedError = true
	return c
}

func smNormals(rng *rand.Rand, k int) []float64 {
	x := make([]float64, k)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// smNaiveLinear computes x·W + b row by row with plain loops.
func smNaiveLinear(x []float64, rows int, w, b []float64, in, out int) []float64 {
	y := make([]float64, rows*out)
	for r := range rows {
		for o := range out {
			s := b[o]
			for i := range in {
				s += x[r*in+i] * w[i*out+o]
			}
			y[r*out+o] = s
		}
	}
	return y
}

func smMaxDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestHeadsHandComputed compares every head with the formula written out
// with plain loops on small random inputs (float64; the two evaluate the
// same sums in different orders, so they agree to ~1e-15).
func TestHeadsHandComputed(t *testing.T) {
	cfg := smSmallHeads()
	h := smRandomHeads[float64](t, cfg, 1)
	rng := rand.New(rand.NewPCG(2, 2))
	const n, s, tol = 4, 3, 1e-13

	// pLDDT head: LN, act_0, relu, act_1, relu, logits.
	single := smNormals(rng, n*cfg.CS)
	logits := make([]float64, n*cfg.PLDDTBins)
	if err := h.PLDDT.Forward(single, n, logits, nil); err != nil {
		t.Fatal(err)
	}
	x := make([]float64, len(single))
	for i := range n {
		row := single[i*cfg.CS : (i+1)*cfg.CS]
		var m, v float64
		for _, e := range row {
			m += e / float64(cfg.CS)
		}
		for _, e := range row {
			v += (e - m) * (e - m) / float64(cfg.CS)
		}
		for c, e := range row {
			x[i*cfg.CS+c] = (e-m)/math.Sqrt(v+1e-5)*h.PLDDT.InputLayerNorm.Scale[c] + h.PLDDT.InputLayerNorm.Offset[c]
		}
	}
	relu := func(a []float64) []float64 {
		for i := range a {
			a[i] = math.Max(a[i], 0)
		}
		return a
	}
	c := cfg.PLDDTChannels
	h0 := relu(smNaiveLinear(x, n, h.PLDDT.Act0.W, h.PLDDT.Act0.B, cfg.CS, c))
	h1 := relu(smNaiveLinear(h0, n, h.PLDDT.Act1.W, h.PLDDT.Act1.B, c, c))
	want := smNaiveLinear(h1, n, h.PLDDT.Logits.W, h.PLDDT.Logits.B, c, cfg.PLDDTBins)
	if d := smMaxDiff(logits, want); d > tol {
		t.Errorf("pLDDT logits differ from the formula by %.3g", d)
	}

	// Distogram: h_ij + h_ji.
	pair := smNormals(rng, n*n*cfg.CZ)
	dl := make([]float64, n*n*cfg.DistogramBins)
	if err := h.Distogram.Forward(pair, n, dl); err != nil {
		t.Fatal(err)
	}
	half := smNaiveLinear(pair, n*n, h.Distogram.HalfLogits.W, h.Distogram.HalfLogits.B, cfg.CZ, cfg.DistogramBins)
	want = make([]float64, len(dl))
	for i := range n {
		for j := range n {
			for b := range cfg.DistogramBins {
				want[(i*n+j)*cfg.DistogramBins+b] = half[(i*n+j)*cfg.DistogramBins+b] + half[(j*n+i)*cfg.DistogramBins+b]
			}
		}
	}
	if d := smMaxDiff(dl, want); d > tol {
		t.Errorf("distogram logits differ from the formula by %.3g", d)
	}

	// Single-layer heads.
	msa := smNormals(rng, s*n*cfg.CM)
	ml := make([]float64, s*n*cfg.MSAClasses)
	if err := h.MaskedMSA.Forward(msa, s*n, ml); err != nil {
		t.Fatal(err)
	}
	if d := smMaxDiff(ml, smNaiveLinear(msa, s*n, h.MaskedMSA.Logits.W, h.MaskedMSA.Logits.B, cfg.CM, cfg.MSAClasses)); d > tol {
		t.Errorf("masked MSA logits differ from the formula by %.3g", d)
	}
	el := make([]float64, n*residue.NumAtomTypes)
	if err := h.ExperimentallyResolved.Forward(single, n, el); err != nil {
		t.Fatal(err)
	}
	if d := smMaxDiff(el, smNaiveLinear(single, n, h.ExperimentallyResolved.Logits.W, h.ExperimentallyResolved.Logits.B, cfg.CS, residue.NumAtomTypes)); d > tol {
		t.Errorf("experimentally resolved logits differ from the formula by %.3g", d)
	}
	pl := make([]float64, n*n*cfg.PAEBins)
	if err := h.PredictedAlignedError.Forward(pair, n, pl); err != nil {
		t.Fatal(err)
	}
	if d := smMaxDiff(pl, smNaiveLinear(pair, n*n, h.PredictedAlignedError.Logits.W, h.PredictedAlignedError.Logits.B, cfg.CZ, cfg.PAEBins)); d > tol {
		t.Errorf("aligned error logits differ from the formula by %.3g", d)
	}
}

// TestPLDDTValues checks compute_plddt on logits whose softmax is known: a
// uniform distribution gives the mean bin centre, 50; a distribution
// concentrated on bin b gives 100·(b + ½)/50.
func TestPLDDTValues(t *testing.T) {
	const bins = 50
	logits := make([]float64, 3*bins)
	logits[bins+0] = 800 // residue 1: all in bin 0
	logits[2*bins+49] = 800
	got, err := PLDDT(logits, 3, bins)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{50, 1, 99}
	for i := range want {
		// The other bins carry e^−800 = 0 of the mass; the sums are exact
		// to a few ulp of 100.
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("pLDDT[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := PLDDT([]float64{1, math.NaN()}, 1, 2); !errors.Is(err, num.ErrNaN) {
		t.Errorf("NaN logit: error %v, want %v", err, num.ErrNaN)
	}
	if _, err := PLDDT(make([]float64, 5), 1, 2); !errors.Is(err, num.ErrShape) {
		t.Errorf("wrong length: error %v, want %v", err, num.ErrShape)
	}
}

// TestBreaks checks AF2's bin edges: the distogram's 63 edges from 2.3125
// to 21.6875 Å in steps of 0.3125 and the aligned error's 63 edges from 0
// to 31 Å in steps of 0.5.
func TestBreaks(t *testing.T) {
	cfg := DefaultHeadsConfig()
	d := DistogramBreaks(cfg)
	if len(d) != 63 || d[0] != 2.3125 || d[62] != 21.6875 || math.Abs(d[1]-2.625) > 1e-15 {
		t.Errorf("distogram breaks: %d edges %v … %v", len(d), d[0], d[len(d)-1])
	}
	p := PAEBreaks(cfg)
	if len(p) != 63 || p[0] != 0 || p[62] != 31 || p[1] != 0.5 {
		t.Errorf("aligned error breaks: %d edges %v … %v", len(p), p[0], p[len(p)-1])
	}
	c := binCentres(p)
	if len(c) != 64 || c[0] != 0.25 || c[63] != 31.75 {
		t.Errorf("aligned error bin centres: %d, %v … %v, want 64, 0.25 … 31.75", len(c), c[0], c[len(c)-1])
	}
}

// TestPredictedAlignedErrorAndTM checks PAE and pTM on logits concentrated
// on one bin per pair, where they reduce to closed forms.
func TestPredictedAlignedErrorAndTM(t *testing.T) {
	cfg := DefaultHeadsConfig()
	breaks := PAEBreaks(cfg)
	const n, bins = 3, 64
	logits := make([]float64, n*n*bins)
	for ij := range n * n {
		logits[ij*bins+ij] = 900 // pair ij entirely in bin ij
	}
	pae, maxPAE, err := PredictedAlignedError(logits, n, breaks)
	if err != nil {
		t.Fatal(err)
	}
	if maxPAE != 31.75 {
		t.Errorf("max PAE %v, want 31.75", maxPAE)
	}
	for ij := range n * n {
		if want := 0.25 + 0.5*float64(ij); math.Abs(pae[ij]-want) > 1e-12 {
			t.Errorf("PAE[%d] = %v, want %v", ij, pae[ij], want)
		}
	}
	// pTM: d0 = 1.24·(19 − 15)^⅓ − 1.8 for fewer than 19 residues; with
	// weights 1, a_i = Σ_j tm_ij/(1e-8 + N) and the maximum over i is taken.
	d0 := 1.24*math.Cbrt(4) - 1.8
	best := 0.0
	for i := range n {
		var a float64
		for j := range n {
			c := 0.25 + 0.5*float64(i*n+j)
			a += 1 / (1 + c*c/(d0*d0)) / (1e-8 + n)
		}
		best = math.Max(best, a)
	}
	got, err := PredictedTM(logits, n, breaks, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-best) > 1e-14 {
		t.Errorf("pTM %v, want %v", got, best)
	}
	// A residue with weight 0 neither aligns nor is scored.
	w := []float64{1, 1, 0}
	got, err = PredictedTM(logits, n, breaks, w)
	if err != nil {
		t.Fatal(err)
	}
	best = 0
	for i := range 2 {
		var a float64
		for j := range 2 {
			c := 0.25 + 0.5*float64(i*n+j)
			a += 1 / (1 + c*c/(d0*d0)) / (1e-8 + 2)
		}
		best = math.Max(best, a)
	}
	if math.Abs(got-best) > 1e-14 {
		t.Errorf("weighted pTM %v, want %v", got, best)
	}
	if _, err := PredictedTM(logits[1:], n, breaks, nil); !errors.Is(err, num.ErrShape) {
		t.Errorf("short logits: error %v, want %v", err, num.ErrShape)
	}
}

// TestHeadsGradient checks every head's Backward against central finite
// differences of Σ logits·cot in float64 (tolerance as in smFDCheck).
func TestHeadsGradient(t *testing.T) {
	cfg := smSmallHeads()
	h := smRandomHeads[float64](t, cfg, 3)
	g := h.ZerosLike()
	rng := rand.New(rand.NewPCG(4, 4))
	const n, s = 3, 2
	single := smNormals(rng, n*cfg.CS)
	pair := smNormals(rng, n*n*cfg.CZ)
	msa := smNormals(rng, s*n*cfg.CM)
	cots := map[string][]float64{
		"plddt": smNormals(rng, n*cfg.PLDDTBins), "disto": smNormals(rng, n*n*cfg.DistogramBins),
		"msa": smNormals(rng, s*n*cfg.MSAClasses), "er": smNormals(rng, n*residue.NumAtomTypes),
		"pae": smNormals(rng, n*n*cfg.PAEBins),
	}
	loss := func() float64 {
		var total float64
		add := func(x, c []float64) {
			for i := range x {
				total += x[i] * c[i]
			}
		}
		l := make([]float64, len(cots["plddt"]))
		if err := h.PLDDT.Forward(single, n, l, nil); err != nil {
			t.Fatal(err)
		}
		add(l, cots["plddt"])
		l = make([]float64, len(cots["disto"]))
		if err := h.Distogram.Forward(pair, n, l); err != nil {
			t.Fatal(err)
		}
		add(l, cots["disto"])
		l = make([]float64, len(cots["msa"]))
		if err := h.MaskedMSA.Forward(msa, s*n, l); err != nil {
			t.Fatal(err)
		}
		add(l, cots["msa"])
		l = make([]float64, len(cots["er"]))
		if err := h.ExperimentallyResolved.Forward(single, n, l); err != nil {
			t.Fatal(err)
		}
		add(l, cots["er"])
		l = make([]float64, len(cots["pae"]))
		if err := h.PredictedAlignedError.Forward(pair, n, l); err != nil {
			t.Fatal(err)
		}
		add(l, cots["pae"])
		return total
	}
	dsingle, dpair, dmsa := make([]float64, len(single)), make([]float64, len(pair)), make([]float64, len(msa))
	var pc PLDDTHeadCache[float64]
	if err := h.PLDDT.Forward(single, n, make([]float64, n*cfg.PLDDTBins), &pc); err != nil {
		t.Fatal(err)
	}
	if err := h.PLDDT.Backward(&pc, cots["plddt"], dsingle, &g.PLDDT); err != nil {
		t.Fatal(err)
	}
	if err := h.Distogram.Backward(pair, cots["disto"], n, dpair, &g.Distogram); err != nil {
		t.Fatal(err)
	}
	if err := h.MaskedMSA.Backward(msa, cots["msa"], s*n, dmsa, &g.MaskedMSA); err != nil {
		t.Fatal(err)
	}
	if err := h.ExperimentallyResolved.Backward(single, cots["er"], n, dsingle, &g.ExperimentallyResolved); err != nil {
		t.Fatal(err)
	}
	if err := h.PredictedAlignedError.Backward(pair, cots["pae"], n, dpair, g.PredictedAlignedError); err != nil {
		t.Fatal(err)
	}
	all := func(k int) []int { return smSample(rng, k, k) }
	smFDCheck(t, "single", single, dsingle, all(len(single)), loss)
	smFDCheck(t, "pair", pair, dpair, all(len(pair)), loss)
	smFDCheck(t, "msa", msa, dmsa, all(len(msa)), loss)
	gts := g.tensors()
	for k, pt := range h.tensors() {
		smFDCheck(t, pt.name, *pt.data, *gts[k].data, smSample(rng, len(*pt.data), 6), loss)
	}
}

// TestHeadsErrors checks shape and value errors.
func TestHeadsErrors(t *testing.T) {
	cfg := smSmallHeads()
	h := smRandomHeads[float64](t, cfg, 5)
	const n = 2
	if err := h.PLDDT.Forward(make([]float64, 3), n, make([]float64, n*cfg.PLDDTBins), nil); !errors.Is(err, num.ErrShape) {
		t.Errorf("pLDDT short input: %v", err)
	}
	bad := make([]float64, n*n*cfg.CZ)
	bad[1] = math.Inf(-1)
	if err := h.Distogram.Forward(bad, n, make([]float64, n*n*cfg.DistogramBins)); !errors.Is(err, num.ErrNaN) {
		t.Errorf("distogram infinite input: %v", err)
	}
	if err := h.MaskedMSA.Forward(make([]float64, n*cfg.CM), n, make([]float64, 1)); !errors.Is(err, num.ErrShape) {
		t.Errorf("masked MSA short output: %v", err)
	}
	if err := h.PLDDT.Backward(&PLDDTHeadCache[float64]{}, nil, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("pLDDT Backward without Forward: %v", err)
	}
	c := cfg
	c.DistogramLastBreak = c.DistogramFirstBreak
	if _, err := NewHeadsParams[float64](c, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrConfig) {
		t.Errorf("empty distogram range: %v", err)
	}
	s := params.New()
	if err := h.Save(s, ""); err != nil {
		t.Fatal(err)
	}
	wide := cfg
	wide.PLDDTBins++
	if _, err := LoadHeadsParams[float64](s, wide); !errors.Is(err, num.ErrShape) {
		t.Errorf("wrong bin count: %v", err)
	}
	if len(HeadsParamNames(cfg)) != len(s.Keys()) {
		t.Errorf("HeadsParamNames lists %d names, the set holds %d", len(HeadsParamNames(cfg)), len(s.Keys()))
	}
}

// TestAtom14ToAtom37 checks the scatter against the full-model case's own
// gather tables (in/residx_atom37_to_atom14, in/atom37_atom_exists), and
// its VJP against the adjoint identity ⟨A x, y⟩ = ⟨x, Aᵀ y⟩.
func TestAtom14ToAtom37(t *testing.T) {
	cs := refcase.Open(t, "full_model.npz")
	aatype, err := params.Ints(cs, "in/aatype")
	if err != nil {
		t.Fatal(err)
	}
	n := len(aatype)
	idx, err := params.Ints(cs, "in/residx_atom37_to_atom14", n, residue.NumAtomTypes)
	if err != nil {
		t.Fatal(err)
	}
	exists, err := params.Get[float64](cs, "in/atom37_atom_exists", n, residue.NumAtomTypes)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 6))
	pos14 := smNormals(rng, n*residue.NumAtom14*3)
	got, err := Atom14ToAtom37(pos14, aatype)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for a := range residue.NumAtomTypes {
			for k := range 3 {
				want := pos14[(i*residue.NumAtom14+idx[i*residue.NumAtomTypes+a])*3+k] * exists[i*residue.NumAtomTypes+a]
				if g := got[(i*residue.NumAtomTypes+a)*3+k]; g != want {
					t.Fatalf("residue %d atom %d: %v, want %v", i, a, g, want)
				}
			}
		}
	}
	y := smNormals(rng, len(got))
	d14, err := Atom14ToAtom37VJP(y, aatype)
	if err != nil {
		t.Fatal(err)
	}
	var lhs, rhs float64
	for i := range got {
		lhs += got[i] * y[i]
	}
	for i := range pos14 {
		rhs += pos14[i] * d14[i]
	}
	if math.Abs(lhs-rhs) > 1e-12*(1+math.Abs(lhs)) {
		t.Errorf("⟨A x, y⟩ = %v, ⟨x, Aᵀy⟩ = %v", lhs, rhs)
	}
	if _, err := Atom14ToAtom37(pos14, append(aatype[:n-1:n-1], 21)); !errors.Is(err, num.ErrShape) {
		t.Errorf("aatype 21: %v", err)
	}
}

// TestFullModelStructureAndHeads runs the structure module at AF2's widths
// and the heads on the full-model case's own Evoformer outputs (out/single,
// out/pair, out/msa_first_row) with its parameters, and compares the
// structure-module trajectory, the final atom37 positions, pLDDT, the
// distogram, experimentally-resolved and first-row masked-MSA logits with
// the case, in float64 and float32. The inputs are the reference's float64
// outputs, so the comparison isolates this modules; the case's
// tolerances apply (float64 1e-6 + 1e-6·|ref|, float32 1e-3 + 1e-2·|ref|).
func TestFullModelStructureAndHeads(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testFullModelStructureAndHeads[float64](t, "float64") })
	t.Run("float32", func(t *testing.T) { testFullModelStructureAndHeads[float32](t, "float32") })
}

func testFullModelStructureAndHeads[T num.Float](t *testing.T, dtype string) {
	cs := refcase.Open(t, "full_model.npz")
	meta, err := refcase.ReadMeta(cs)
	if err != nil {
		t.Fatal(err)
	}
	abs, rel := meta.Tol(0, dtype, "abs"), meta.Tol(0, dtype, "rel")
	if abs == 0 || rel == 0 {
		t.Fatal("tolerance missing from meta")
	}
	prm := cs.Sub("params/alphafold/alphafold_iteration/")
	sm, err := LoadStructureModuleParams[T](prm, DefaultStructureModuleConfig())
	if err != nil {
		t.Fatal(err)
	}
	heads, err := LoadHeadsParams[T](prm, DefaultHeadsConfig())
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) []float64 {
		x, err := params.Get[float64](cs, k)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	aatype, err := params.Ints(cs, "in/aatype")
	if err != nil {
		t.Fatal(err)
	}
	n := len(aatype)
	single, pair := smConvert[T](get("out/single")), smConvert[T](get("out/pair"))
	out, err := sm.Forward(&StructureModuleInput[T]{Single: single, Pair: pair, AAType: aatype, SeqMask: smConvert[T](get("in/seq_mask"))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "sm_frames", out.Frames, get("out/sm_frames"), abs, rel)
	refcase.Compare(t, "sm_positions", out.Positions, get("out/sm_positions"), abs, rel)
	refcase.Compare(t, "sm_angles", out.Angles, get("out/sm_angles"), abs, rel)
	pos37, err := Atom14ToAtom37(out.FinalPositions(), aatype)
	if err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "final_atom_positions", pos37, get("out/final_atom_positions"), abs, rel)

	cfg := heads.Config
	lddt := make([]T, n*cfg.PLDDTBins)
	if err := heads.PLDDT.Forward(out.Single, n, lddt, nil); err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "lddt_logits", lddt, get("out/lddt_logits"), abs, rel)
	pl, err := PLDDT(lddt, n, cfg.PLDDTBins)
	if err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "plddt", pl, get("out/plddt"), abs, rel)
	disto := make([]T, n*n*cfg.DistogramBins)
	if err := heads.Distogram.Forward(pair, n, disto); err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "distogram_logits", disto, get("out/distogram_logits"), abs, rel)
	er := make([]T, n*residue.NumAtomTypes)
	if err := heads.ExperimentallyResolved.Forward(single, n, er); err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "experimentally_resolved_logits", er, get("out/experimentally_resolved_logits"), abs, rel)
	ml := make([]T, n*cfg.MSAClasses)
	if err := heads.MaskedMSA.Forward(smConvert[T](get("out/msa_first_row")), n, ml); err != nil {
		t.Fatal(err)
	}
	refcase.Compare(t, "masked_msa_logits (first row)", ml, get("out/masked_msa_logits")[:n*cfg.MSAClasses], abs, rel)
}
