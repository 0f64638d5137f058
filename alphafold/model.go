package alphafold

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/recycle"
	"github.com/foldkit/foldkit/residue"
)

// SingleActivationsName is the haiku name, under
// alphafold/alphafold_iteration/evoformer/, of the linear layer that maps
// the first MSA row to the single representation (supplement Algorithm 2).
const SingleActivationsName = "single_activations"

// Config describes a whole AF2 monomer model (supplement Algorithm 2): the
// sizes of every part, the number of blocks of both stacks, recycling and
// the data sizes its parameters were trained with. Preset returns the
// configurations of DeepMind's released models; the reference cases use
// fewer blocks.
//
// foldkit runs AF2 without templates. Templates records whether the
// released parameters of the preset carry a template stack (model_1 and
// model_2 do); LoadModel then loads them without it and says so.
type Config struct {
	// Name is the preset's name ("model_1", …, "model_5_ptm"), or empty.
	Name string
	// Embedder sizes the input embedder (Algorithms 3–5).
	Embedder EmbedderConfig
	// Evoformer sizes the Evoformer blocks (Algorithm 6) and
	// EvoformerBlocks is their number (AF2: 48).
	Evoformer       EvoformerConfig
	EvoformerBlocks int
	// ExtraMSA sizes the extra-MSA blocks (Algorithm 18) and
	// ExtraMSABlocks is their number (AF2: 4).
	ExtraMSA       EvoformerConfig
	ExtraMSABlocks int
	// Recycle sizes the recycling embedder (Algorithm 32).
	Recycle recycle.Config
	// StructureModule sizes the structure module (Algorithm 20); its
	// IPA.CS is c_s, the width of the single representation.
	StructureModule StructureModuleConfig
	// Heads sizes the output heads; Heads.PredictedAlignedError is set in
	// the _ptm presets.
	Heads HeadsConfig
	// Iterations is the number of passes of the recycling loop,
	// num_recycle + 1 (AF2: 4).
	Iterations int
	// Tolerance, when positive, stops recycling early once the Cα
	// distances change by at most Tolerance Å between passes
	// (recycle.CAChange). AF2's monomer models run every pass: 0.
	Tolerance float64
	// Templates reports that the preset's released parameter file holds a
	// template stack, which foldkit does not run.
	Templates bool
	// MaxMSAClusters and MaxExtraMSA are the data sizes of the preset
	// (AF2's max_msa_clusters 512; max_extra_msa 5120 for model_1, 3 and 4,
	// 1024 for model_2 and 5), for features.Config.
	MaxMSAClusters, MaxExtraMSA int
}

// Presets returns the names Preset accepts: model_1 … model_5 and their
// _ptm variants.
func Presets() []string {
	var names []string
	for _, ptm := range []string{"", "_ptm"} {
		for k := 1; k <= 5; k++ {
			names = append(names, fmt.Sprintf("model_%d%s", k, ptm))
		}
	}
	return names
}

// DefaultConfig returns the configuration of model_1 (Preset("model_1")),
// run without templates.
func DefaultConfig() Config {
	c, _ := Preset("model_1")
	return c
}

// Preset returns the configuration of one of DeepMind's released monomer
// models, as AF2's config.py builds it for inference: c_m = 256, c_e = 64,
// c_z = 128, c_s = 384, 48 Evoformer and 4 extra-MSA blocks, the structure
// module and heads of DefaultStructureModuleConfig and DefaultHeadsConfig,
// 4 passes (num_recycle = 3) without early stopping. model_1 and model_2
// were trained with templates (Templates is set; foldkit runs them
// without); model_1, model_3 and model_4 use 5120 extra sequences, model_2
// and model_5 1024. The _ptm variants add the predicted aligned error head.
// The error wraps ErrConfig for an unknown name.
func Preset(name string) (Config, error) {
	base, ptm := strings.CutSuffix(name, "_ptm")
	if !slices.Contains(Presets(), name) {
		return Config{}, fmt.Errorf("alphafold: unknown model preset %q, want one of %s: %w", name, strings.Join(Presets(), ", "), ErrConfig)
	}
	evo := DefaultEvoformerConfig()
	extra := DefaultExtraMSAConfig()
	c := Config{
		Name:            name,
		Embedder:        DefaultEmbedderConfig(),
		Evoformer:       evo,
		EvoformerBlocks: 48,
		ExtraMSA:        extra,
		ExtraMSABlocks:  4,
		Recycle:         recycle.DefaultConfig(),
		StructureModule: DefaultStructureModuleConfig(),
		Heads:           DefaultHeadsConfig(),
		Iterations:      4,
		MaxMSAClusters:  512,
		MaxExtraMSA:     1024,
	}
	switch base {
	case "model_1":
		c.Templates, c.MaxExtraMSA = true, 5120
	case "model_2":
		c.Templates = true
	case "model_3", "model_4":
		c.MaxExtraMSA = 5120
	}
	c.Heads.PredictedAlignedError = ptm
	return c, nil
}

// FeaturesConfig returns the features pipeline's inference configuration
// for the preset's data sizes.
func (c Config) FeaturesConfig() features.Config {
	f := features.DefaultConfig()
	if c.MaxMSAClusters > 0 {
		f.MaxMSAClusters = c.MaxMSAClusters
	}
	if c.MaxExtraMSA > 0 {
		f.MaxExtraMSA = c.MaxExtraMSA
	}
	return f
}

// Validate returns an error wrapping ErrConfig that names the first part
// with an invalid configuration or the first pair of widths that do not
// match between parts (c_m, c_e, c_z and c_s are shared).
func (c Config) Validate() error {
	if err := c.Embedder.Validate(); err != nil {
		return err
	}
	if err := c.Evoformer.Validate(); err != nil {
		return err
	}
	if err := c.ExtraMSA.Validate(); err != nil {
		return err
	}
	if err := c.Recycle.Validate(); err != nil {
		return fmt.Errorf("alphafold: model config Recycle: %v: %w", err, ErrConfig)
	}
	if err := c.StructureModule.Validate(); err != nil {
		return err
	}
	if err := c.Heads.Validate(); err != nil {
		return err
	}
	cm, ce, cz, cs := c.Embedder.MSAChannels, c.Embedder.ExtraMSAChannels, c.Embedder.PairChannels, c.StructureModule.IPA.CS
	for _, w := range []struct {
		what      string
		got, want int
	}{
		{"Evoformer.MSAChannels (c_m)", c.Evoformer.MSAChannels, cm},
		{"Evoformer.PairChannels (c_z)", c.Evoformer.PairChannels, cz},
		{"ExtraMSA.MSAChannels (c_e)", c.ExtraMSA.MSAChannels, ce},
		{"ExtraMSA.PairChannels (c_z)", c.ExtraMSA.PairChannels, cz},
		{"Recycle.CM (c_m)", c.Recycle.CM, cm},
		{"Recycle.CZ (c_z)", c.Recycle.CZ, cz},
		{"StructureModule.IPA.CZ (c_z)", c.StructureModule.IPA.CZ, cz},
		{"Heads.CS (c_s)", c.Heads.CS, cs},
		{"Heads.CZ (c_z)", c.Heads.CZ, cz},
		{"Heads.CM (c_m)", c.Heads.CM, cm},
		{"Heads.MSAClasses", c.Heads.MSAClasses, c.Embedder.MSAClasses},
	} {
		if w.got != w.want {
			return fmt.Errorf("alphafold: model config %s = %d, want %d to match the embedder: %w", w.what, w.got, w.want, ErrConfig)
		}
	}
	if c.Evoformer.GlobalColumn || !c.ExtraMSA.GlobalColumn {
		return fmt.Errorf("alphafold: model config: the Evoformer uses column attention and the extra-MSA stack global column attention (GlobalColumn false and true): %w", ErrConfig)
	}
	if c.EvoformerBlocks < 1 || c.ExtraMSABlocks < 1 {
		return fmt.Errorf("alphafold: model config has %d Evoformer and %d extra-MSA blocks, want ≥ 1 each: %w", c.EvoformerBlocks, c.ExtraMSABlocks, ErrConfig)
	}
	if c.Iterations < 1 {
		return fmt.Errorf("alphafold: model config Iterations = %d, want ≥ 1: %w", c.Iterations, ErrConfig)
	}
	if !(c.Tolerance >= 0) || math.IsInf(c.Tolerance, 0) {
		return fmt.Errorf("alphafold: model config Tolerance = %v, want finite and ≥ 0: %w", c.Tolerance, ErrConfig)
	}
	return nil
}

// Model is a whole AF2 monomer model (supplement Algorithm 2) without
// templates: its parameters under AF2's names, part by part. LoadModel
// reads one from a released parameter file; NewModel initialises one as AF2
// does. Predict runs it.
type Model[T num.Float] struct {
	// Config is the model's configuration; the block counts are those of
	// the stacks below.
	Config Config
	// Embedder is the input embedder (Algorithms 3–5) and the extra-MSA
	// embedding, under evoformer/.
	Embedder *InputEmbedderParams[T]
	// Recycle is the recycling embedder (Algorithm 32), under evoformer/.
	Recycle *recycle.Params[T]
	// ExtraMSAStack is evoformer/extra_msa_stack (Algorithm 18).
	ExtraMSAStack *EvoformerStack[T]
	// Evoformer is evoformer/evoformer_iteration (Algorithm 6).
	Evoformer *EvoformerStack[T]
	// SingleActivations (evoformer/single_activations) is [c_m, c_s].
	SingleActivations nn.LinearParams[T]
	// StructureModule is structure_module (Algorithm 20).
	StructureModule *StructureModuleParams[T]
	// Heads are the output heads.
	Heads *HeadsParams[T]
}

// NewModel returns a model for cfg with every part initialised as AF2 does
// (each part's own initialiser, with AF2's zero-initialised final layers:
// a fresh model leaves every backbone frame at the identity and gives
// uniform confidence logits). It serves
// training from scratch and benchmarks. The error wraps ErrConfig for an
// invalid cfg or a nil rng.
func NewModel[T num.Float](cfg Config, rng *rand.Rand) (*Model[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewModel: nil random source: %w", ErrConfig)
	}
	m := &Model[T]{Config: cfg}
	var err error
	if m.Embedder, err = NewInputEmbedderParams[T](cfg.Embedder, rng); err != nil {
		return nil, err
	}
	if m.Recycle, err = recycle.NewParams[T](cfg.Recycle, rng); err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	if m.ExtraMSAStack, err = NewEvoformerStack[T](cfg.ExtraMSA, cfg.ExtraMSABlocks, rng); err != nil {
		return nil, err
	}
	if m.Evoformer, err = NewEvoformerStack[T](cfg.Evoformer, cfg.EvoformerBlocks, rng); err != nil {
		return nil, err
	}
	m.SingleActivations = nn.NewLinear[T](rng, cfg.Embedder.MSAChannels, cfg.StructureModule.IPA.CS, nn.InitLinear, true)
	if m.StructureModule, err = NewStructureModuleParams[T](cfg.StructureModule, rng); err != nil {
		return nil, err
	}
	if m.Heads, err = NewHeadsParams[T](cfg.Heads, rng); err != nil {
		return nil, err
	}
	return m, nil
}

// check reports a missing part or a part whose configuration differs from
// m.Config.
func (m *Model[T]) check() error {
	if m == nil || m.Embedder == nil || m.Recycle == nil || m.ExtraMSAStack == nil || m.Evoformer == nil ||
		m.StructureModule == nil || m.Heads == nil {
		return fmt.Errorf("alphafold: model has a missing part: %w", ErrConfig)
	}
	c := m.Config
	c.EvoformerBlocks, c.ExtraMSABlocks = len(m.Evoformer.Blocks), len(m.ExtraMSAStack.Blocks)
	if err := c.Validate(); err != nil {
		return err
	}
	if m.Embedder.Config != c.Embedder || m.Recycle.Config != c.Recycle || m.ExtraMSAStack.Config != c.ExtraMSA ||
		m.Evoformer.Config != c.Evoformer || m.StructureModule.Config != c.StructureModule || m.Heads.Config != c.Heads {
		return fmt.Errorf("alphafold: model part configurations differ from the model's Config: %w", ErrConfig)
	}
	if err := smCheckLinear("single_activations", &m.SingleActivations, c.Embedder.MSAChannels, c.StructureModule.IPA.CS); err != nil {
		return err
	}
	return nil
}

// Progress reports one finished pass of the recycling loop to
// PredictOptions.Progress.
type Progress struct {
	// Pass is the index of the pass that just finished, from 0, and
	// Passes the largest number of passes.
	Pass, Passes int
	// Change is the Cα distance change from the previous pass in Å
	// (recycle.CAChange), NaN after the first pass.
	Change float64
	// Converged is true when Change is at most the tolerance, which ends
	// the loop; Last is true for the final pass.
	Converged, Last bool
	// MeanPLDDT is the mean pLDDT (0–100) of this pass's structure over
	// the present residues.
	MeanPLDDT float64
	// Elapsed is the wall time of this pass.
	Elapsed time.Duration
}

// String renders p as one line of a progress display, with a bar of the
// passes done:
//
//	recycle 2/4 [##########----------] ΔCα 0.412 Å  pLDDT 71.3  12.4 s
func (p Progress) String() string {
	const width = 20
	done := 0
	if p.Passes > 0 {
		done = min(width, (p.Pass+1)*width/p.Passes)
	}
	if p.Last {
		done = width
	}
	change := "ΔCα –"
	if !math.IsNaN(p.Change) {
		change = fmt.Sprintf("ΔCα %.3f Å", p.Change)
	}
	s := fmt.Sprintf("recycle %d/%d [%s%s] %s  pLDDT %.1f  %.1f s", p.Pass+1, p.Passes,
		strings.Repeat("#", done), strings.Repeat("-", width-done), change, p.MeanPLDDT, p.Elapsed.Seconds())
	if p.Converged {
		s += "  converged"
	}
	return s
}

// PredictOptions adjust one Predict call.
type PredictOptions struct {
	// Iterations, when positive, replaces Config.Iterations (the largest
	// number of passes).
	Iterations int
	// Tolerance, when positive, replaces Config.Tolerance (early stop on
	// the Cα change, Å).
	Tolerance float64
	// Progress, when not nil, is called after every pass.
	Progress func(Progress)
	// Backend, when it holds a backend for the model's element type, runs
	// the extra-MSA and Evoformer stacks there (EvoformerBlocks; the bulk
	// of the model's work): their parameters are uploaded once per call,
	// and each pass copies the representations there and back once. The
	// embeddings, the structure module and the heads run on the CPU. The
	// zero value runs everything on the CPU.
	Backend backend.Pair
}

// Timings holds the wall time of Predict's stages, summed over passes.
type Timings struct {
	// Embedding covers the input, recycling and extra-MSA embeddings.
	Embedding time.Duration
	// ExtraMSA, Evoformer and StructureModule cover the two stacks and the
	// structure module (with the conversion to atom37).
	ExtraMSA, Evoformer, StructureModule time.Duration
	// Heads covers the output heads after the last pass.
	Heads time.Duration
	// Passes holds the wall time of every pass; Total the whole call.
	Passes []time.Duration
	Total  time.Duration
}

// Result holds a prediction: AF2's outputs of the last pass for N residues
// and S MSA sequences.
type Result[T num.Float] struct {
	// N and S are the numbers of residues and of MSA sequences.
	N, S int
	// FinalAtomPositions is [N, 37, 3] in Å (AF2's final_atom_positions),
	// zero for atoms the residue type lacks; FinalAtomMask [N, 37] is 1
	// for the atoms it has (atom37_atom_exists).
	FinalAtomPositions, FinalAtomMask []T
	// PLDDT is the per-residue pLDDT [N] on 0–100, and LDDTLogits [N, 50]
	// the pLDDT head's logits.
	PLDDT, LDDTLogits []T
	// DistogramLogits is [N, N, 64], symmetric; DistogramBreaks holds the
	// 63 inner bin edges in Å.
	DistogramLogits []T
	DistogramBreaks []float64
	// PAELogits [N, N, 64], PAE [N, N] (Å), MaxPAE (Å) and PTM are the
	// predicted aligned error head's outputs and the predicted TM-score;
	// nil and NaN unless Config.Heads.PredictedAlignedError (the _ptm
	// models).
	PAELogits, PAE []T
	MaxPAE, PTM    float64
	// MaskedMSALogits is [S, N, 23] and ExperimentallyResolvedLogits
	// [N, 37].
	MaskedMSALogits, ExperimentallyResolvedLogits []T
	// Single [N, c_s] (the structure module's input), Pair [N, N, c_z]
	// and MSAFirstRow [N, c_m] are the Evoformer's output
	// representations.
	Single, Pair, MSAFirstRow []T
	// StructureModule holds the structure module's trajectory (frames,
	// angles, atom14 positions of every iteration).
	StructureModule *StructureModuleOutput[T]
	// Passes is the number of passes run, Converged reports an early stop
	// and Changes the Cα change after each pass (NaN for the first).
	Passes    int
	Converged bool
	Changes   []float64
	// Timings holds the wall time of the stages.
	Timings Timings
}

// mdlRun holds one Predict call's inputs (masks converted to T) and the
// buffers and outputs of the latest pass.
type mdlRun[T num.Float] struct {
	m               *Model[T]
	f               *features.Features
	n, s, se        int // se ≥ 1: an empty extra MSA is one fully masked row
	seqMask         []T // [N]
	msaMask         []T // [S, N]
	extraMask       []T // [se, N]
	pairMask        []T // [N, N]
	atomMask        []T // [N, 37]
	msa, extra      []T // [S, N, c_m], [se, N, c_e]
	single          []T // [N, c_s]
	pair            []T // the latest pass's pair [N, N, c_z]
	sm              *StructureModuleOutput[T]
	stacks          *mdlStacks[T] // the stacks on a backend, or nil
	pos37           []T
	lddt, plddt     []T
	meanPLDDT       float64
	times           Timings
	lastPassElapsed time.Duration
}

// prepare checks the features and converts the masks.
func (m *Model[T]) prepare(f *features.Features) (*mdlRun[T], error) {
	if f == nil {
		return nil, fmt.Errorf("alphafold: model: nil features: %w", num.ErrShape)
	}
	n, s, se := f.L, f.S, f.Se
	if n < 1 || s < 1 || se < 0 {
		return nil, fmt.Errorf("alphafold: model: features with L = %d, S = %d, Se = %d, want L ≥ 1, S ≥ 1, Se ≥ 0: %w", n, s, se, num.ErrShape)
	}
	if len(f.AAType) != n {
		return nil, fmt.Errorf("alphafold: model: aatype has %d elements, want [L] = [%d]: %w", len(f.AAType), n, num.ErrShape)
	}
	if err := smCheckAAType("model", f.AAType); err != nil {
		return nil, err
	}
	r := &mdlRun[T]{m: m, f: f, n: n, s: s, se: max(se, 1)}
	for _, x := range []struct {
		what  string
		v     []float64
		k     int
		shape string
		dst   *[]T
	}{
		{"seq_mask", f.SeqMask, n, fmt.Sprintf("[L] = [%d]", n), &r.seqMask},
		{"msa_mask", f.MSAMask, s * n, fmt.Sprintf("[S L] = [%d %d]", s, n), &r.msaMask},
		{"extra_msa_mask", f.ExtraMSAMask, se * n, fmt.Sprintf("[Se L] = [%d %d]", se, n), &r.extraMask},
	} {
		if err := embCheckFeature(x.what, x.v, x.k, x.shape); err != nil {
			return nil, err
		}
		*x.dst = embConvert[T](x.v)
	}
	if se == 0 {
		// AF2's pipeline pads the extra MSA to max_extra_msa rows with mask
		// 0, so an empty extra MSA runs as fully masked rows. One such row
		// has the same effect on the pair (the outer product mean's masked
		// projections are zero, leaving its bias over ε) and keeps the
		// attention batches non-empty.
		r.extraMask = make([]T, n)
	}
	r.pairMask = make([]T, n*n)
	for i := range n {
		for j := range n {
			r.pairMask[i*n+j] = r.seqMask[i] * r.seqMask[j]
		}
	}
	m37 := residue.Atom37Mask()
	r.atomMask = make([]T, n*residue.NumAtomTypes)
	for i, a := range f.AAType {
		for k := range residue.NumAtomTypes {
			r.atomMask[i*residue.NumAtomTypes+k] = T(m37[a][k])
		}
	}
	cfg := m.Config
	r.msa = make([]T, s*n*cfg.Embedder.MSAChannels)
	r.extra = make([]T, r.se*n*cfg.Embedder.ExtraMSAChannels)
	r.single = make([]T, n*cfg.StructureModule.IPA.CS)
	return r, nil
}

// mdlCanceled wraps a context's error.
func mdlCanceled(ctx context.Context, where string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("alphafold: model canceled %s: %w", where, err)
	}
	return nil
}

// pass runs one cycle of Algorithm 2 from the
// state prev recycled from the previous pass and returns the state to
// recycle into the next.
func (r *mdlRun[T]) pass(ctx context.Context, prev *recycle.State[T]) (*recycle.State[T], error) {
	t0 := time.Now()
	m, f, cfg := r.m, r.f, r.m.Config
	n, s, se := r.n, r.s, r.se
	cm := cfg.Embedder.MSAChannels

	// Embeddings: the recycled update goes into pair first, the input
	// embedding is added to it (Algorithms 3 and 32).
	pair := make([]T, n*n*cfg.Embedder.PairChannels)
	msaUpd := make([]T, n*cm)
	if err := recycle.Forward(m.Recycle, prev.MSAFirstRow, prev.Pair, prev.PseudoBeta, msaUpd, pair, nil); err != nil {
		return nil, fmt.Errorf("alphafold: model: %w", err)
	}
	prev.Pair = nil // the clone is ours; let it go before the stacks run
	if err := m.Embedder.AddPairEmbedding(f.TargetFeat, f.ResidueIndex, n, pair); err != nil {
		return nil, err
	}
	if err := m.Embedder.EmbedMSA(f.TargetFeat, f.MSAFeat, s, n, r.msa); err != nil {
		return nil, err
	}
	for i, v := range msaUpd {
		r.msa[i] += v
	}
	if f.Se > 0 {
		if err := m.Embedder.EmbedExtraMSA(f.ExtraMSA, f.ExtraHasDeletion, f.ExtraDeletionValue, f.Se, n, r.extra); err != nil {
			return nil, err
		}
	} else {
		clear(r.extra)
	}
	t1 := time.Now()
	r.times.Embedding += t1.Sub(t0)

	if r.stacks != nil {
		if err := r.stacks.run(ctx, r, pair); err != nil {
			return nil, err
		}
		t3 := time.Now()
		r.times.Evoformer += t3.Sub(t1) // both stacks, on the backend
		return r.afterStacks(ctx, pair, t0, t3)
	}

	// Extra-MSA stack (Algorithm 18): updates the pair only.
	for k, b := range m.ExtraMSAStack.Blocks {
		if err := mdlCanceled(ctx, fmt.Sprintf("before extra-MSA block %d", k)); err != nil {
			return nil, err
		}
		if err := b.Forward(r.extra, pair, r.extraMask, r.pairMask, se, n, nil, nil); err != nil {
			return nil, fmt.Errorf("alphafold: extra-MSA block %d: %w", k, err)
		}
	}
	t2 := time.Now()
	r.times.ExtraMSA += t2.Sub(t1)

	// Evoformer stack (Algorithm 6).
	for k, b := range m.Evoformer.Blocks {
		if err := mdlCanceled(ctx, fmt.Sprintf("before Evoformer block %d", k)); err != nil {
			return nil, err
		}
		if err := b.Forward(r.msa, pair, r.msaMask, r.pairMask, s, n, nil, nil); err != nil {
			return nil, fmt.Errorf("alphafold: Evoformer block %d: %w", k, err)
		}
	}
	t3 := time.Now()
	r.times.Evoformer += t3.Sub(t2)
	return r.afterStacks(ctx, pair, t0, t3)
}

// afterStacks finishes a pass after the stacks (started at t0, stacks done
// at t3): the single representation, the structure module, atom37
// positions, pseudo-β and Cα, and this pass's pLDDT.
func (r *mdlRun[T]) afterStacks(ctx context.Context, pair []T, t0, t3 time.Time) (*recycle.State[T], error) {
	m, f, cfg := r.m, r.f, r.m.Config
	n, cm := r.n, cfg.Embedder.MSAChannels
	if err := mdlCanceled(ctx, "before the structure module"); err != nil {
		return nil, err
	}

	// Single representation and structure module (Algorithm 20).
	m.SingleActivations.Forward(r.single, r.msa[:n*cm], n)
	sm, err := m.StructureModule.Forward(&StructureModuleInput[T]{Single: r.single, Pair: pair, AAType: f.AAType, SeqMask: r.seqMask}, nil)
	if err != nil {
		return nil, err
	}
	pos37, err := Atom14ToAtom37(sm.FinalPositions(), f.AAType)
	if err != nil {
		return nil, err
	}
	pb, _, err := PseudoBeta(f.AAType, pos37, r.atomMask)
	if err != nil {
		return nil, err
	}
	ca := make([]T, 3*n)
	for i := range n {
		copy(ca[3*i:3*i+3], pos37[(i*residue.NumAtomTypes+residue.AtomCA)*3:][:3])
	}
	// pLDDT of this pass, for the progress report.
	hc := cfg.Heads
	lddt := make([]T, n*hc.PLDDTBins)
	if err := m.Heads.PLDDT.Forward(sm.Single, n, lddt, nil); err != nil {
		return nil, err
	}
	pl, err := PLDDT(lddt, n, hc.PLDDTBins)
	if err != nil {
		return nil, err
	}
	var sum, cnt float64
	for i, v := range pl {
		sum += float64(v) * float64(r.seqMask[i])
		cnt += float64(r.seqMask[i])
	}
	r.meanPLDDT = sum / math.Max(cnt, 1)
	r.sm, r.pos37, r.pair, r.lddt, r.plddt = sm, pos37, pair, lddt, pl
	t4 := time.Now()
	r.times.StructureModule += t4.Sub(t3)
	r.lastPassElapsed = t4.Sub(t0)
	r.times.Passes = append(r.times.Passes, r.lastPassElapsed)
	return &recycle.State[T]{MSAFirstRow: slices.Clone(r.msa[:n*cm]), Pair: pair, PseudoBeta: pb, CA: ca}, nil
}

// Predict runs the model on the features f (supplement Algorithm 2): the
// input embedding, then up to Iterations passes of the recycling loop, each
// embedding the previous pass's first MSA row, pair representation and
// pseudo-β positions (Algorithm 32; zeros before the first pass), running
// the extra-MSA stack and the Evoformer, the single projection and the
// structure module; then the heads on the last pass. The loop stops early
// when the tolerance is positive and the Cα distances change by at most it
// (recycle.Run). Every pass sees the same features, as AF2 does at
// inference (no re-sampling of the MSA between cycles), and runs without
// dropout.
//
// f is a features.Features (features.Build, or arrays from elsewhere with
// the same layouts): aatype, residue_index, seq_mask, target_feat [L, 22],
// msa_feat [S, L, 49], msa_mask, and the extra MSA (Se may be 0). The
// features need no padding: AF2 pads the MSAs to 512 and max_extra_msa rows
// with mask 0, which changes nothing but the masked-MSA logits of the
// padding rows (masked keys get a −1e9 logit bias and masked rows no outer
// product). Progress
// is reported after every pass through opt.Progress; ctx is checked before
// every block, and a canceled ctx ends Predict with an error wrapping
// ctx.Err().
//
// Memory stays a few copies of the largest representation (the pair
// [N, N, c_z], the MSA [S, N, c_m] and the extra MSA [Se, N, c_e]): every
// block updates them in place and evaluates in chunks, no N×N×N tensor is
// formed, and the recycled state holds one pair representation.
//
// The error wraps num.ErrShape for features whose lengths do not match,
// num.ErrNaN for a non-finite feature, ErrConfig for an invalid model, or
// is the context's error.
func (m *Model[T]) Predict(ctx context.Context, f *features.Features, opt PredictOptions) (*Result[T], error) {
	start := time.Now()
	if ctx == nil {
		ctx = context.Background()
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	r, err := m.prepare(f)
	if err != nil {
		return nil, err
	}
	if k := backend.For[T](opt.Backend); k != nil {
		if r.stacks, err = m.newStacks(k); err != nil {
			return nil, err
		}
		defer r.stacks.close()
	}
	cfg := m.Config
	iters, tol := cfg.Iterations, cfg.Tolerance
	if opt.Iterations > 0 {
		iters = opt.Iterations
	}
	if opt.Tolerance > 0 {
		tol = opt.Tolerance
	}
	n, cm, cz := r.n, cfg.Embedder.MSAChannels, cfg.Embedder.PairChannels
	step := func(_ int, prev *recycle.State[T]) (*recycle.State[T], error) { return r.pass(ctx, prev) }
	hook := func(p recycle.Progress) error {
		if opt.Progress != nil {
			opt.Progress(Progress{Pass: p.Iter, Passes: p.Iterations, Change: p.Change, Converged: p.Converged,
				Last: p.Last, MeanPLDDT: r.meanPLDDT, Elapsed: r.lastPassElapsed})
		}
		return nil
	}
	init := &recycle.State[T]{MSAFirstRow: make([]T, n*cm), Pair: make([]T, n*n*cz), PseudoBeta: make([]T, 3*n), CA: make([]T, 3*n)}
	final, sum, err := recycle.Run(step, init, recycle.Options{Iterations: iters, Tolerance: tol, SeqMask: f.SeqMask, Hook: hook})
	if err != nil {
		return nil, fmt.Errorf("alphafold: model: %w", err)
	}

	th := time.Now()
	res, err := m.heads(r, final)
	if err != nil {
		return nil, err
	}
	res.Passes, res.Converged, res.Changes = sum.Passes, sum.Converged, sum.Changes
	r.times.Heads = time.Since(th)
	r.times.Total = time.Since(start)
	res.Timings = r.times
	return res, nil
}

// heads runs the output heads on the last pass's representations and
// collects the result.
func (m *Model[T]) heads(r *mdlRun[T], final *recycle.State[T]) (*Result[T], error) {
	n, s, hc := r.n, r.s, m.Config.Heads
	res := &Result[T]{
		N: n, S: s,
		FinalAtomPositions: r.pos37, FinalAtomMask: r.atomMask,
		PLDDT: r.plddt, LDDTLogits: r.lddt,
		DistogramBreaks: DistogramBreaks(hc),
		MaxPAE:          math.NaN(), PTM: math.NaN(),
		Single: r.single, Pair: r.pair, MSAFirstRow: final.MSAFirstRow,
		StructureModule: r.sm,
	}
	res.DistogramLogits = make([]T, n*n*hc.DistogramBins)
	if err := m.Heads.Distogram.Forward(r.pair, n, res.DistogramLogits); err != nil {
		return nil, err
	}
	res.MaskedMSALogits = make([]T, s*n*hc.MSAClasses)
	if err := m.Heads.MaskedMSA.Forward(r.msa, s*n, res.MaskedMSALogits); err != nil {
		return nil, err
	}
	res.ExperimentallyResolvedLogits = make([]T, n*residue.NumAtomTypes)
	if err := m.Heads.ExperimentallyResolved.Forward(r.single, n, res.ExperimentallyResolvedLogits); err != nil {
		return nil, err
	}
	if hc.PredictedAlignedError && m.Heads.PredictedAlignedError != nil {
		res.PAELogits = make([]T, n*n*hc.PAEBins)
		if err := m.Heads.PredictedAlignedError.Forward(r.pair, n, res.PAELogits); err != nil {
			return nil, err
		}
		breaks := PAEBreaks(hc)
		var err error
		if res.PAE, res.MaxPAE, err = PredictedAlignedError(res.PAELogits, n, breaks); err != nil {
			return nil, err
		}
		w := make([]float64, n)
		for i, v := range r.seqMask {
			w[i] = float64(v)
		}
		if res.PTM, err = PredictedTM(res.PAELogits, n, breaks, w); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Save stores the model in s under the full names of a released AF2
// parameter file (alphafold/alphafold_iteration/…, stacked layers with a
// leading layer axis), as float32 arrays whatever T is, so that LoadModel
// reads it back exactly as it reads DeepMind's files.
func (m *Model[T]) Save(s *params.Set) error {
	if err := m.check(); err != nil {
		return err
	}
	tmp := params.New()
	evo := ModelPrefix + "evoformer/"
	if err := m.Embedder.Save(tmp, evo); err != nil {
		return err
	}
	if err := m.Recycle.Save(tmp, evo); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	if err := m.ExtraMSAStack.Save(tmp, evo); err != nil {
		return err
	}
	if err := m.Evoformer.Save(tmp, evo); err != nil {
		return err
	}
	if err := evoSaveTensors(tmp, evo, evoLinearTensors(&m.SingleActivations, SingleActivationsName, m.SingleActivations.In, m.SingleActivations.Out)); err != nil {
		return err
	}
	if err := m.StructureModule.Save(tmp, ModelPrefix); err != nil {
		return err
	}
	if err := m.Heads.Save(tmp, ModelPrefix); err != nil {
		return err
	}
	for _, k := range tmp.Keys() {
		shape, err := tmp.Shape(k)
		if err != nil {
			return err
		}
		x, err := params.Get[float32](tmp, k)
		if err != nil {
			return err
		}
		if err := params.Put(s, k, shape, x); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	return nil
}
