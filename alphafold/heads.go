package alphafold

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

// Haiku names of AF2's output heads under alphafold/alphafold_iteration/.
const (
	PLDDTHeadName                  = "predicted_lddt_head"
	DistogramHeadName              = "distogram_head"
	MaskedMSAHeadName              = "masked_msa_head"
	ExperimentallyResolvedHeadName = "experimentally_resolved_head"
	PredictedAlignedErrorHeadName  = "predicted_aligned_error_head"
)

// HeadsConfig holds the sizes of AF2's output heads (the heads section of
// AF2's model config). DefaultHeadsConfig returns AF2's values.
type HeadsConfig struct {
	// CS, CZ and CM are the widths of the single, pair and MSA
	// representations (AF2: 384, 128, 256).
	CS, CZ, CM int
	// PLDDTChannels and PLDDTBins are the hidden width and the number of
	// lDDT bins of the pLDDT head (AF2: 128 and 50).
	PLDDTChannels, PLDDTBins int
	// DistogramBins, DistogramFirstBreak and DistogramLastBreak define the
	// distogram: 64 bins whose 63 inner edges run evenly from 2.3125 Å to
	// 21.6875 Å.
	DistogramBins                           int
	DistogramFirstBreak, DistogramLastBreak float64
	// MSAClasses is the number of masked-MSA classes (AF2: 23, the 20
	// amino acids, unknown, gap and mask).
	MSAClasses int
	// PredictedAlignedError enables the predicted aligned error head,
	// present in the _ptm parameter sets (AF2: off for the monomer
	// models). PAEBins and PAEMaxBin define its bins: 64 bins whose 63
	// inner edges run evenly from 0 to 31 Å.
	PredictedAlignedError bool
	PAEBins               int
	PAEMaxBin             float64
}

// DefaultHeadsConfig returns AF2's heads for the monomer models (no
// predicted aligned error head; set PredictedAlignedError for the _ptm
// models).
func DefaultHeadsConfig() HeadsConfig {
	return HeadsConfig{CS: 384, CZ: 128, CM: 256, PLDDTChannels: 128, PLDDTBins: 50,
		DistogramBins: 64, DistogramFirstBreak: 2.3125, DistogramLastBreak: 21.6875,
		MSAClasses: 23, PAEBins: 64, PAEMaxBin: 31}
}

// Validate returns an error wrapping ErrConfig naming the first field out
// of range.
func (c HeadsConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{
		{"CS", c.CS, 1}, {"CZ", c.CZ, 1}, {"CM", c.CM, 1}, {"PLDDTChannels", c.PLDDTChannels, 1},
		{"PLDDTBins", c.PLDDTBins, 1}, {"DistogramBins", c.DistogramBins, 3}, {"MSAClasses", c.MSAClasses, 1},
		{"PAEBins", c.PAEBins, 3},
	} {
		if f.v < f.min {
			return fmt.Errorf("alphafold: heads config %s = %d, want ≥ %d: %w", f.name, f.v, f.min, ErrConfig)
		}
	}
	if !(c.DistogramLastBreak > c.DistogramFirstBreak) || math.IsInf(c.DistogramLastBreak-c.DistogramFirstBreak, 0) {
		return fmt.Errorf("alphafold: heads config distogram breaks %v..%v, want finite and increasing: %w",
			c.DistogramFirstBreak, c.DistogramLastBreak, ErrConfig)
	}
	if !(c.PAEMaxBin > 0) || math.IsInf(c.PAEMaxBin, 0) {
		return fmt.Errorf("alphafold: heads config PAEMaxBin = %v, want finite and > 0: %w", c.PAEMaxBin, ErrConfig)
	}
	return nil
}

// HeadsParams holds the parameters of AF2's output heads (supplement
// §1.9). PredictedAlignedError is nil unless Config.PredictedAlignedError.
type HeadsParams[T num.Float] struct {
	Config                 HeadsConfig
	PLDDT                  PLDDTHeadParams[T]
	Distogram              DistogramHeadParams[T]
	MaskedMSA              MaskedMSAHeadParams[T]
	ExperimentallyResolved ExperimentallyResolvedHeadParams[T]
	PredictedAlignedError  *PredictedAlignedErrorHeadParams[T]
}

// tensors lists the heads' arrays under their AF2 names relative to
// alphafold/alphafold_iteration/, setting every layer's sizes.
func (p *HeadsParams[T]) tensors() []smTensor[T] {
	c := p.Config
	ts := p.PLDDT.tensors(c)
	ts = append(ts, smLinearTensors(&p.Distogram.HalfLogits, DistogramHeadName+"/half_logits", c.CZ, c.DistogramBins)...)
	ts = append(ts, smLinearTensors(&p.MaskedMSA.Logits, MaskedMSAHeadName+"/logits", c.CM, c.MSAClasses)...)
	ts = append(ts, smLinearTensors(&p.ExperimentallyResolved.Logits, ExperimentallyResolvedHeadName+"/logits", c.CS, residue.NumAtomTypes)...)
	if c.PredictedAlignedError {
		if p.PredictedAlignedError == nil {
			p.PredictedAlignedError = new(PredictedAlignedErrorHeadParams[T])
		}
		ts = append(ts, smLinearTensors(&p.PredictedAlignedError.Logits, PredictedAlignedErrorHeadName+"/logits", c.CZ, c.PAEBins)...)
	}
	return ts
}

// HeadsParamNames returns the AF2 names of the heads' parameters for cfg,
// relative to alphafold/alphafold_iteration/.
func HeadsParamNames(cfg HeadsConfig) []string {
	p := &HeadsParams[float64]{Config: cfg}
	var names []string
	for _, t := range p.tensors() {
		names = append(names, t.name)
	}
	return names
}

// LoadHeadsParams reads the heads' parameters for cfg from s under AF2's
// names relative to alphafold/alphafold_iteration/ (for a full parameter
// file, narrow it with all.Sub("alphafold/alphafold_iteration/")). The
// error names the key and wraps params.ErrMissing, num.ErrShape or
// num.ErrNaN, or ErrConfig for an invalid cfg.
func LoadHeadsParams[T num.Float](s *params.Set, cfg HeadsConfig) (*HeadsParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &HeadsParams[T]{Config: cfg}
	if err := smLoadTensors(s, p.tensors()); err != nil {
		return nil, err
	}
	return p, nil
}

// NewHeadsParams returns heads for cfg initialised as AF2 does with
// zero_init: the pLDDT head's hidden layers with the "relu" initialiser and
// every output layer (pLDDT logits, distogram half_logits, masked-MSA,
// experimentally-resolved and aligned-error logits) with zeros, layer norms
// with scale 1 and offset 0. rng must not be nil.
func NewHeadsParams[T num.Float](cfg HeadsConfig, rng *rand.Rand) (*HeadsParams[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("alphafold: NewHeadsParams: nil random source: %w", ErrConfig)
	}
	p := &HeadsParams[T]{Config: cfg}
	p.PLDDT = PLDDTHeadParams[T]{
		InputLayerNorm: nn.NewLayerNorm[T](cfg.CS),
		Act0:           nn.NewLinear[T](rng, cfg.CS, cfg.PLDDTChannels, nn.InitRelu, true),
		Act1:           nn.NewLinear[T](rng, cfg.PLDDTChannels, cfg.PLDDTChannels, nn.InitRelu, true),
		Logits:         nn.NewLinear[T](rng, cfg.PLDDTChannels, cfg.PLDDTBins, nn.InitZeros, true),
	}
	p.Distogram.HalfLogits = nn.NewLinear[T](rng, cfg.CZ, cfg.DistogramBins, nn.InitZeros, true)
	p.MaskedMSA.Logits = nn.NewLinear[T](rng, cfg.CM, cfg.MSAClasses, nn.InitZeros, true)
	p.ExperimentallyResolved.Logits = nn.NewLinear[T](rng, cfg.CS, residue.NumAtomTypes, nn.InitZeros, true)
	if cfg.PredictedAlignedError {
		p.PredictedAlignedError = &PredictedAlignedErrorHeadParams[T]{Logits: nn.NewLinear[T](rng, cfg.CZ, cfg.PAEBins, nn.InitZeros, true)}
	}
	return p, nil
}

// Save stores p in s under AF2's names relative to
// alphafold/alphafold_iteration/ with prefix prepended.
func (p *HeadsParams[T]) Save(s *params.Set, prefix string) error {
	q := *p
	ts := q.tensors()
	for _, t := range ts {
		if len(*t.data) != t.size() {
			return fmt.Errorf("alphafold: head parameter %s has %d elements, want %v: %w", t.name, len(*t.data), t.shape, num.ErrShape)
		}
	}
	return smSaveTensors(s, prefix, ts)
}

// ZerosLike returns heads of p's configuration filled with zeros.
func (p *HeadsParams[T]) ZerosLike() *HeadsParams[T] {
	g := &HeadsParams[T]{Config: p.Config}
	for _, t := range g.tensors() {
		*t.data = make([]T, t.size())
	}
	return g
}

// smLinearHeadForward checks x [rows, in] and out [rows, out] and applies l.
func smLinearHeadForward[T num.Float](head string, l *nn.LinearParams[T], x []T, rows int, out []T) error {
	if err := smCheckLinear(head, l, l.In, l.Out); err != nil {
		return err
	}
	if rows < 1 {
		return fmt.Errorf("alphafold: %s: %d rows, want ≥ 1: %w", head, rows, num.ErrShape)
	}
	if err := smCheckInput(head, "input", x, rows*l.In, fmt.Sprintf("[%d rows × %d]", rows, l.In)); err != nil {
		return err
	}
	if err := num.CheckLen("alphafold: "+head+" logits", out, rows*l.Out, fmt.Sprintf("[%d rows × %d]", rows, l.Out)); err != nil {
		return err
	}
	l.Forward(out, x, rows)
	return nil
}

// smLinearHeadBackward checks the arguments and accumulates the gradients
// of a linear head into dx (nil to skip) and g (nil to skip).
func smLinearHeadBackward[T num.Float](head string, l, g *nn.LinearParams[T], x, dlogits []T, rows int, dx []T) error {
	if err := smCheckLinear(head, l, l.In, l.Out); err != nil {
		return err
	}
	if err := num.CheckLen("alphafold: "+head+" input", x, rows*l.In, fmt.Sprintf("[%d rows × %d]", rows, l.In)); err != nil {
		return err
	}
	if err := smCheckInput(head, "logits gradient", dlogits, rows*l.Out, fmt.Sprintf("[%d rows × %d]", rows, l.Out)); err != nil {
		return err
	}
	if dx != nil {
		if err := num.CheckLen("alphafold: "+head+" input gradient", dx, rows*l.In, fmt.Sprintf("[%d rows × %d]", rows, l.In)); err != nil {
			return err
		}
	}
	if g != nil {
		if err := smCheckLinear(head+" gradient", g, l.In, l.Out); err != nil {
			return err
		}
	}
	l.Backward(dx, g, x, dlogits, rows)
	return nil
}

// MaskedMSAHeadParams is AF2's masked-MSA head (supplement §1.9.9,
// masked_msa_head): logits = msa·Logits + b, [S, N, 23], from the MSA
// representation [S, N, c_m], for the BERT-style loss on masked MSA
// positions.
type MaskedMSAHeadParams[T num.Float] struct {
	// Logits (masked_msa_head/logits) is [c_m, 23].
	Logits nn.LinearParams[T]
}

// Forward writes the logits [S, N, classes] of the MSA representation msa
// [S, N, c_m] (rows = S·N). The error wraps num.ErrShape for a wrong length
// and num.ErrNaN for a non-finite input.
func (p *MaskedMSAHeadParams[T]) Forward(msa []T, rows int, logits []T) error {
	return smLinearHeadForward("masked MSA head", &p.Logits, msa, rows, logits)
}

// Backward accumulates the gradients of Forward, given dlogits, into dmsa
// (nil to skip) and g (nil to skip). msa is Forward's input.
func (p *MaskedMSAHeadParams[T]) Backward(msa, dlogits []T, rows int, dmsa []T, g *MaskedMSAHeadParams[T]) error {
	var gl *nn.LinearParams[T]
	if g != nil {
		gl = &g.Logits
	}
	return smLinearHeadBackward("masked MSA head", &p.Logits, gl, msa, dlogits, rows, dmsa)
}

// ExperimentallyResolvedHeadParams is AF2's experimentally-resolved head
// (supplement §1.9.10, experimentally_resolved_head): logits =
// single·Logits + b [N, 37], one per atom37 atom, from the Evoformer's single
// representation (AF2's representations["single"], not the structure
// module's output).
type ExperimentallyResolvedHeadParams[T num.Float] struct {
	// Logits (experimentally_resolved_head/logits) is [c_s, 37].
	Logits nn.LinearParams[T]
}

// Forward writes the logits [N, 37] of the single representation single
// [N, c_s]. The error wraps num.ErrShape for a wrong length and num.ErrNaN
// for a non-finite input.
func (p *ExperimentallyResolvedHeadParams[T]) Forward(single []T, n int, logits []T) error {
	return smLinearHeadForward("experimentally resolved head", &p.Logits, single, n, logits)
}

// Backward accumulates the gradients of Forward, given dlogits [N, 37], into
// dsingle (nil to skip) and g (nil to skip).
func (p *ExperimentallyResolvedHeadParams[T]) Backward(single, dlogits []T, n int, dsingle []T, g *ExperimentallyResolvedHeadParams[T]) error {
	var gl *nn.LinearParams[T]
	if g != nil {
		gl = &g.Logits
	}
	return smLinearHeadBackward("experimentally resolved head", &p.Logits, gl, single, dlogits, n, dsingle)
}
