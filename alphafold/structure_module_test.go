package alphafold

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
	"github.com/foldkit/foldkit/rigid"
)

// smSmallConfig is a structure module small enough for finite differences:
// every width a few channels, AF2's structure otherwise.
func smSmallConfig(layers int) StructureModuleConfig {
	return StructureModuleConfig{
		IPA:    ipa.Config{CS: 12, CZ: 6, Heads: 3, Channels: 4, QueryPoints: 2, ValuePoints: 3, Eps: 1e-8, Inf: 1e5},
		Layers: layers, TransitionLayers: 3, ResnetChannels: 8, ResnetBlocks: 2, PositionScale: 10,
	}
}

// smRandomParams returns parameters drawn as the reference cases draw them
// (weights N(0, 1/fan_in), biases N(0, 0.1²), layer-norm scales 1 + N(0, 0.2²),
// offsets N(0, 0.1²), IPA point weights N(0.5, 0.3²), affine_update weights
// scaled by 0.1), the same values for float32 and float64: they are drawn in
// float64, saved and loaded back as T.
func smRandomParams[T num.Float](t testing.TB, cfg StructureModuleConfig, seed uint64) *StructureModuleParams[T] {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	p, err := NewStructureModuleParams[float64](cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	smRandomize(rng, p.tensors())
	s := params.New()
	if err := p.Save(s, ""); err != nil {
		t.Fatal(err)
	}
	q, err := LoadStructureModuleParams[T](s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// smRandomize fills ts with random values by the recipe of smRandomParams.
func smRandomize(rng *rand.Rand, ts []smTensor[float64]) {
	for _, tt := range ts {
		x := *tt.data
		for i := range x {
			z := rng.NormFloat64()
			switch {
			case strings.HasSuffix(tt.name, "//weights"):
				x[i] = z / math.Sqrt(float64(tt.shape[0]))
				if strings.Contains(tt.name, AffineUpdateName) {
					x[i] *= 0.1
				}
			case strings.HasSuffix(tt.name, "//scale"):
				x[i] = 1 + 0.2*z
			case strings.HasSuffix(tt.name, "trainable_point_weights"):
				x[i] = 0.5 + 0.3*z
			default: // biases and offsets
				x[i] = 0.1 * z
			}
			x[i] = float64(float32(x[i]))
		}
	}
}

// smInputs are float64 inputs of the structure module for n residues.
type smInputs struct {
	n                      int
	single, pair, mask     []float64
	aatype                 []int
	initial                []float64 // [N, 7] or nil
	cot                    *StructureModuleOutput[float64]
	cotFramesRot, cotTrans []float64
}

// smRandomInputs draws standard-normal representations, residue types
// covering glycine, proline, the unknown type and residues with four χ
// angles, a sequence mask with residue maskIdx at 0 (none if negative),
// optionally random initial frames (translations within ±10 Å), and random
// cotangents for every output.
func smRandomInputs(cfg StructureModuleConfig, n, maskIdx int, initial bool, seed uint64) *smInputs {
	rng := rand.New(rand.NewPCG(seed, 5))
	normal := func(k int) []float64 {
		x := make([]float64, k)
		for i := range x {
			x[i] = float64(float32(rng.NormFloat64()))
		}
		return x
	}
	in := &smInputs{n: n, single: normal(n * cfg.IPA.CS), pair: normal(n * n * cfg.IPA.CZ)}
	in.mask = make([]float64, n)
	in.aatype = make([]int, n)
	fixed := []int{residue.Gly, residue.Pro, residue.Unk, residue.Arg, residue.Lys, residue.Trp, residue.Phe}
	for i := range n {
		in.mask[i] = 1
		if i < len(fixed) {
			in.aatype[i] = fixed[i]
		} else {
			in.aatype[i] = rng.IntN(residue.NumRestypesWithX)
		}
	}
	if maskIdx >= 0 {
		in.mask[maskIdx] = 0
	}
	if initial {
		in.initial = make([]float64, 7*n)
		for i := range n {
			q := rigid.RandomQuat[float64](rng)
			copy(in.initial[7*i:], q[:])
			for k := range 3 {
				in.initial[7*i+4+k] = 20*rng.Float64() - 10
			}
		}
	}
	L := cfg.Layers
	in.cot = &StructureModuleOutput[float64]{
		N: n, Layers: L,
		Frames:             normal(L * n * 7),
		UnnormalizedAngles: normal(L * n * NumAngleOutputs),
		Angles:             normal(L * n * NumAngleOutputs),
		Positions:          normal(L * n * residue.NumAtom14 * 3),
		States:             normal(L * n * cfg.IPA.CS),
		Single:             normal(n * cfg.IPA.CS),
	}
	in.cot.SidechainFrames = make([]rigid.Rigid[float64], L*n*residue.NumGroups)
	for i := range in.cot.SidechainFrames {
		f := &in.cot.SidechainFrames[i]
		copy(f.Rot[:], normal(9))
		copy(f.Trans[:], normal(3))
	}
	return in
}

// smConvert converts float64 values to T.
func smConvert[T num.Float](x []float64) []T {
	if x == nil {
		return nil
	}
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

// input returns the module input in T.
func (in *smInputs) input(withInitial bool) *StructureModuleInput[float64] {
	x := &StructureModuleInput[float64]{Single: in.single, Pair: in.pair, AAType: in.aatype, SeqMask: in.mask}
	if withInitial {
		x.InitialFrames = in.initial
	}
	return x
}

// smLoss is Σ out·cot over every output.
func smLoss(out, cot *StructureModuleOutput[float64]) float64 {
	var s float64
	dot := func(a, b []float64) {
		for i := range a {
			s += a[i] * b[i]
		}
	}
	dot(out.Frames, cot.Frames)
	dot(out.UnnormalizedAngles, cot.UnnormalizedAngles)
	dot(out.Angles, cot.Angles)
	dot(out.Positions, cot.Positions)
	dot(out.States, cot.States)
	dot(out.Single, cot.Single)
	for i, f := range out.SidechainFrames {
		dot(f.Rot[:], cot.SidechainFrames[i].Rot[:])
		dot(f.Trans[:], cot.SidechainFrames[i].Trans[:])
	}
	return s
}

// TestStructureModuleGradient checks Backward against central finite
// differences in float64 for one iteration (with several iterations the
// analytic gradient is by design not the derivative: AF2 stops the
// rotations' gradient between iterations, which the reference case checks)
// with respect to the single and pair inputs, the initial frames and
// samples of every parameter array.
func TestStructureModuleGradient(t *testing.T) {
	cfg := smSmallConfig(1)
	const n = 6
	p := smRandomParams[float64](t, cfg, 1)
	in := smRandomInputs(cfg, n, 4, true, 2)
	var cache StructureModuleCache[float64]
	if _, err := p.Forward(in.input(true), &cache); err != nil {
		t.Fatal(err)
	}
	dSingle := make([]float64, len(in.single))
	dPair := make([]float64, len(in.pair))
	dInit := make([]float64, len(in.initial))
	g := p.ZerosLike()
	if err := p.Backward(&cache, in.cot, dSingle, dPair, dInit, g); err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		out, err := p.Forward(in.input(true), nil)
		if err != nil {
			t.Fatal(err)
		}
		return smLoss(out, in.cot)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	smFDCheck(t, "single", in.single, dSingle, smSample(rng, len(in.single), 12), loss)
	smFDCheck(t, "pair", in.pair, dPair, smSample(rng, len(in.pair), 12), loss)
	smFDCheck(t, "initial frames", in.initial, dInit, smSample(rng, len(in.initial), len(in.initial)), loss)
	gts := g.tensors()
	for k, pt := range p.tensors() {
		smFDCheck(t, pt.name, *pt.data, *gts[k].data, smSample(rng, len(*pt.data), 3), loss)
	}
}

// smFDCheck compares grad[i] with the central difference of loss in x[i]
// for every i of idx. h = 1e-6 leaves a truncation error of ~h²·|f”'| and
// a round-off error of ~1e-16·|L|/h ≈ 1e-9 (|L| ~ 1e2): agreement to
// 1e-6·(1 + |grad|) is well outside both and far inside any real bug.
func smFDCheck(t *testing.T, what string, x, grad []float64, idx []int, loss func() float64) {
	t.Helper()
	const h = 1e-6
	for _, i := range idx {
		old := x[i]
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		fd := (lp - lm) / (2 * h)
		if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
			t.Errorf("%s[%d]: backward %.10g, finite difference %.10g", what, i, grad[i], fd)
		}
	}
}

// smSample returns k distinct indices below n (all if k ≥ n).
func smSample(rng *rand.Rand, n, k int) []int {
	if k >= n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return rng.Perm(n)[:k]
}

// TestStructureModuleSE3 moves the initial frames by a global rigid motion
// G and checks that every output atom, frame and side-chain frame moves by
// G while the angles and single representations do not change, and that
// pLDDT is invariant. IPA is invariant and every update is composed in the
// residue's own frame, so this holds exactly up to round-off.
func TestStructureModuleSE3(t *testing.T) {
	cfg := smSmallConfig(4)
	const n = 9
	p := smRandomParams[float64](t, cfg, 11)
	in := smRandomInputs(cfg, n, 3, true, 12)
	rng := rand.New(rand.NewPCG(13, 13))
	qg := rigid.RandomQuat[float64](rng)
	G := rigid.FromQuat(qg, [3]float64{25, -40, 13})

	out0, err := p.Forward(in.input(true), nil)
	if err != nil {
		t.Fatal(err)
	}
	moved := in.input(true)
	moved.InitialFrames = make([]float64, len(in.initial))
	for i := range n {
		f := in.initial[7*i : 7*i+7]
		q := rigid.QuatMultiply(qg, rigid.Quat[float64]{f[0], f[1], f[2], f[3]})
		t := G.Apply([3]float64{f[4], f[5], f[6]})
		copy(moved.InitialFrames[7*i:], q[:])
		copy(moved.InitialFrames[7*i+4:], t[:])
	}
	out1, err := p.Forward(moved, nil)
	if err != nil {
		t.Fatal(err)
	}

	// float64 round-off through 4 iterations at coordinates of ~50 Å:
	// the observed error is ~1e-13; 1e-9 Å is the bound.
	const tol = 1e-9
	var worst float64
	for i := 0; i < len(out0.Positions); i += 3 {
		want := G.Apply([3]float64(out0.Positions[i : i+3]))
		a := i / 3 % residue.NumAtom14
		r := in.aatype[i/3/residue.NumAtom14%n]
		if residue.Atom14Mask()[r][a] == 0 {
			want = [3]float64{} // absent atoms stay at 0
		}
		for k := range 3 {
			worst = math.Max(worst, math.Abs(out1.Positions[i+k]-want[k]))
		}
	}
	t.Logf("positions: max |x' − G·x| = %.3g Å", worst)
	if worst > tol {
		t.Errorf("positions move by G to within %.3g Å, want ≤ %g", worst, tol)
	}
	var fworst float64
	for i, f := range out0.SidechainFrames {
		w := rigid.Rigid[float64]{Rot: G.Compose(f).Rot, Trans: G.Apply(f.Trans)}
		g := out1.SidechainFrames[i]
		for k := range 9 {
			fworst = math.Max(fworst, math.Abs(g.Rot[k]-w.Rot[k]))
		}
		for k := range 3 {
			fworst = math.Max(fworst, math.Abs(g.Trans[k]-w.Trans[k]))
		}
	}
	for i := 0; i < len(out0.Frames); i += 7 {
		f := out0.Frames[i : i+7]
		q := rigid.QuatMultiply(qg, rigid.Quat[float64]{f[0], f[1], f[2], f[3]})
		tt := G.Apply([3]float64{f[4], f[5], f[6]})
		for k := range 4 {
			fworst = math.Max(fworst, math.Abs(out1.Frames[i+k]-q[k]))
		}
		for k := range 3 {
			fworst = math.Max(fworst, math.Abs(out1.Frames[i+4+k]-tt[k]))
		}
	}
	t.Logf("frames: max deviation from G∘frame %.3g", fworst)
	if fworst > tol {
		t.Errorf("frames move by G to within %.3g, want ≤ %g", fworst, tol)
	}
	for _, x := range []struct {
		what string
		a, b []float64
	}{{"angles", out0.Angles, out1.Angles}, {"unnormalized angles", out0.UnnormalizedAngles, out1.UnnormalizedAngles}, {"states", out0.States, out1.States}} {
		var d float64
		for i := range x.a {
			d = math.Max(d, math.Abs(x.a[i]-x.b[i]))
		}
		t.Logf("%s: max change %.3g", x.what, d)
		if d > tol {
			t.Errorf("%s change by %.3g under a global motion, want ≤ %g", x.what, d, tol)
		}
	}
	hc := DefaultHeadsConfig()
	hc.CS, hc.PLDDTChannels = cfg.IPA.CS, 8
	h := smRandomHeads[float64](t, hc, 14)
	pl := func(out *StructureModuleOutput[float64]) []float64 {
		logits := make([]float64, n*hc.PLDDTBins)
		if err := h.PLDDT.Forward(out.Single, n, logits, nil); err != nil {
			t.Fatal(err)
		}
		v, err := PLDDT(logits, n, hc.PLDDTBins)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := pl(out0), pl(out1)
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	t.Logf("pLDDT: max change %.3g", d)
	if d > 1e-9 {
		t.Errorf("pLDDT changes by %.3g under a global motion", d)
	}
}

// TestStructureModuleFreshParams checks AF2's zero initialisation: with
// NewStructureModuleParams the affine update is zero, so every frame stays
// the identity (quaternion (1,0,0,0), translation 0) through all
// iterations, and the atoms sit at their literature positions in the
// backbone frame.
func TestStructureModuleFreshParams(t *testing.T) {
	cfg := smSmallConfig(3)
	p, err := NewStructureModuleParams[float64](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	in := smRandomInputs(cfg, 5, -1, false, 3)
	out, err := p.Forward(in.input(false), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(out.Frames); i += 7 {
		if got := [7]float64(out.Frames[i : i+7]); got != [7]float64{1, 0, 0, 0, 0, 0, 0} {
			t.Fatalf("frame %d = %v, want the identity", i/7, got)
		}
	}
	// The CA atom (atom14 slot 1) of every residue type but unknown lies at
	// the origin of the backbone frame.
	for i, a := range in.aatype {
		if a == residue.Unk {
			continue
		}
		ca := out.FinalPositions()[(i*residue.NumAtom14+1)*3:][:3]
		if ca[0] != 0 || ca[1] != 0 || ca[2] != 0 {
			t.Errorf("residue %d: CA at %v, want the origin", i, ca)
		}
	}
}

// TestStructureModuleFloat32 runs the same parameters and inputs in float32
// and float64: every output agrees to float32 accuracy. The bound,
// 1e-3·(1 + |x|), allows the ~1e-5 relative error that 4 iterations of
// float32 arithmetic accumulate a hundredfold.
func TestStructureModuleFloat32(t *testing.T) {
	cfg := smSmallConfig(4)
	const n = 8
	p64 := smRandomParams[float64](t, cfg, 21)
	p32 := smRandomParams[float32](t, cfg, 21)
	in := smRandomInputs(cfg, n, -1, true, 22)
	o64, err := p64.Forward(in.input(true), nil)
	if err != nil {
		t.Fatal(err)
	}
	in32 := &StructureModuleInput[float32]{Single: smConvert[float32](in.single), Pair: smConvert[float32](in.pair),
		AAType: in.aatype, SeqMask: smConvert[float32](in.mask), InitialFrames: smConvert[float32](in.initial)}
	o32, err := p32.Forward(in32, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		what string
		a    []float64
		b    []float32
	}{{"frames", o64.Frames, o32.Frames}, {"positions", o64.Positions, o32.Positions}, {"angles", o64.Angles, o32.Angles}, {"single", o64.Single, o32.Single}} {
		var d float64
		for i := range x.a {
			d = math.Max(d, math.Abs(x.a[i]-float64(x.b[i]))/(1+math.Abs(x.a[i])))
		}
		t.Logf("%s: max float32 error %.3g", x.what, d)
		if d > 1e-3 {
			t.Errorf("%s: float32 differs from float64 by %.3g relative", x.what, d)
		}
	}
}

// TestStructureModuleMasked checks that a fully masked residue, and a
// sequence whose residues are all masked, give finite outputs and
// gradients.
func TestStructureModuleMasked(t *testing.T) {
	cfg := smSmallConfig(2)
	const n = 5
	p := smRandomParams[float32](t, cfg, 31)
	for _, all := range []bool{false, true} {
		in := smRandomInputs(cfg, n, 2, false, 32)
		if all {
			clear(in.mask)
		}
		x := &StructureModuleInput[float32]{Single: smConvert[float32](in.single), Pair: smConvert[float32](in.pair),
			AAType: in.aatype, SeqMask: smConvert[float32](in.mask)}
		var c StructureModuleCache[float32]
		out, err := p.Forward(x, &c)
		if err != nil {
			t.Fatal(err)
		}
		d := &StructureModuleOutput[float32]{Positions: smConvert[float32](in.cot.Positions), Single: smConvert[float32](in.cot.Single)}
		ds, dz := make([]float32, len(x.Single)), make([]float32, len(x.Pair))
		if err := p.Backward(&c, d, ds, dz, nil, p.ZerosLike()); err != nil {
			t.Fatal(err)
		}
		for _, v := range [][]float32{out.Positions, out.Frames, out.Angles, out.Single, ds, dz} {
			if err := num.CheckFinite("output", v); err != nil {
				t.Errorf("all masked %v: %v", all, err)
			}
		}
	}
}

// TestStructureModuleErrors checks that bad inputs give errors of the
// documented kinds instead of panics.
func TestStructureModuleErrors(t *testing.T) {
	cfg := smSmallConfig(2)
	const n = 4
	p := smRandomParams[float64](t, cfg, 41)
	good := func() *StructureModuleInput[float64] {
		in := smRandomInputs(cfg, n, -1, true, 42)
		return in.input(true)
	}
	for _, tc := range []struct {
		name string
		edit func(*StructureModuleInput[float64])
		want error
	}{
		{"short single", func(x *StructureModuleInput[float64]) { x.Single = x.Single[1:] }, num.ErrShape},
		{"short pair", func(x *StructureModuleInput[float64]) { x.Pair = x.Pair[:len(x.Pair)-1] }, num.ErrShape},
		{"long mask", func(x *StructureModuleInput[float64]) { x.SeqMask = append(x.SeqMask, 1) }, num.ErrShape},
		{"no residues", func(x *StructureModuleInput[float64]) { x.AAType = nil }, num.ErrShape},
		{"aatype 21", func(x *StructureModuleInput[float64]) { x.AAType[1] = 21 }, num.ErrShape},
		{"aatype -1", func(x *StructureModuleInput[float64]) { x.AAType[1] = -1 }, num.ErrShape},
		{"NaN single", func(x *StructureModuleInput[float64]) { x.Single[3] = math.NaN() }, num.ErrNaN},
		{"Inf pair", func(x *StructureModuleInput[float64]) { x.Pair[7] = math.Inf(1) }, num.ErrNaN},
		{"NaN mask", func(x *StructureModuleInput[float64]) { x.SeqMask[0] = math.NaN() }, num.ErrNaN},
		{"short initial frames", func(x *StructureModuleInput[float64]) { x.InitialFrames = x.InitialFrames[:7] }, num.ErrShape},
		{"non-unit quaternion", func(x *StructureModuleInput[float64]) { x.InitialFrames[0] *= 2 }, ErrConfig},
		{"NaN initial frame", func(x *StructureModuleInput[float64]) { x.InitialFrames[5] = math.NaN() }, num.ErrNaN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := good()
			tc.edit(x)
			_, err := p.Forward(x, nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := p.Forward(nil, nil); !errors.Is(err, num.ErrShape) {
		t.Errorf("nil input: error %v, want %v", err, num.ErrShape)
	}
	bad := *p
	bad.Transition = bad.Transition[:2]
	if _, err := bad.Forward(good(), nil); !errors.Is(err, num.ErrShape) {
		t.Errorf("two transition layers for a config of three: error %v, want %v", err, num.ErrShape)
	}
	badCfg := cfg
	badCfg.Layers = 0
	if _, err := NewStructureModuleParams[float64](badCfg, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrConfig) {
		t.Errorf("Layers = 0: error %v, want %v", err, ErrConfig)
	}
	badCfg = cfg
	badCfg.IPA.Heads = 0
	if _, err := NewStructureModuleParams[float64](badCfg, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ipa.ErrConfig) {
		t.Errorf("IPA heads = 0: error %v, want %v", err, ipa.ErrConfig)
	}
	// Backward without Forward, and with bad gradients.
	if err := p.Backward(&StructureModuleCache[float64]{}, nil, nil, nil, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("Backward without Forward: error %v, want %v", err, ErrConfig)
	}
	var c StructureModuleCache[float64]
	if _, err := p.Forward(good(), &c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		d    *StructureModuleOutput[float64]
		want error
	}{
		{"short positions", &StructureModuleOutput[float64]{Positions: make([]float64, 5)}, num.ErrShape},
		{"NaN single", &StructureModuleOutput[float64]{Single: append([]float64{math.NaN()}, make([]float64, n*cfg.IPA.CS-1)...)}, num.ErrNaN},
		{"short side-chain frames", &StructureModuleOutput[float64]{SidechainFrames: make([]rigid.Rigid[float64], 3)}, num.ErrShape},
	} {
		if err := p.Backward(&c, tc.d, nil, nil, nil, nil); !errors.Is(err, tc.want) {
			t.Errorf("Backward %s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := p.Backward(&c, nil, make([]float64, 3), nil, nil, nil); !errors.Is(err, num.ErrShape) {
		t.Errorf("Backward short dSingle: error %v, want %v", err, num.ErrShape)
	}
	other := smSmallConfig(3)
	if err := p.Backward(&c, nil, nil, nil, nil, smRandomParams[float64](t, other, 1)); !errors.Is(err, ErrConfig) {
		t.Errorf("Backward with a gradient of another config: error %v, want %v", err, ErrConfig)
	}
}

// TestStructureModuleLoadErrors checks that a missing or mis-shaped key is
// reported by name.
func TestStructureModuleLoadErrors(t *testing.T) {
	cfg := smSmallConfig(1)
	p := smRandomParams[float64](t, cfg, 51)
	s := params.New()
	if err := p.Save(s, ""); err != nil {
		t.Fatal(err)
	}
	names := StructureModuleParamNames(cfg)
	if len(names) != len(s.Keys()) {
		t.Fatalf("%d names, %d saved arrays", len(names), len(s.Keys()))
	}
	// A missing key.
	missing := params.New()
	for _, k := range s.Keys() {
		if k == "structure_module/fold_iteration/rigid_sidechain/resblock2_1//bias" {
			continue
		}
		a, _ := s.Array(k)
		if err := missing.PutArray(k, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadStructureModuleParams[float64](missing, cfg); !errors.Is(err, params.ErrMissing) || !strings.Contains(err.Error(), "resblock2_1//bias") {
		t.Errorf("missing key: error %v", err)
	}
	// A config that does not match the arrays.
	wide := cfg
	wide.ResnetChannels++
	if _, err := LoadStructureModuleParams[float64](s, wide); !errors.Is(err, num.ErrShape) {
		t.Errorf("wrong ResNet width: error %v, want %v", err, num.ErrShape)
	}
}
