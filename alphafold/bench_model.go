package alphafold

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// ModelBenchConfig returns the configurations the model benchmarks run:
// "full" is AF2's model (Preset("model_1"): 48 Evoformer and 4 extra-MSA
// blocks), "reduced" the same widths with the depth of the full-model
// reference case (2 Evoformer blocks, 1 extra-MSA block). Both run one
// pass (Iterations = 1); a Predict call with k passes costs k times as
// much, plus the heads once. The error wraps ErrConfig for another name.
func ModelBenchConfig(name string) (Config, error) {
	cfg := DefaultConfig()
	cfg.Iterations = 1
	switch name {
	case "full":
	case "reduced":
		cfg.Name = "reduced"
		cfg.EvoformerBlocks, cfg.ExtraMSABlocks = 2, 1
	default:
		return Config{}, fmt.Errorf("alphafold: model bench configuration %q, want full or reduced: %w", name, ErrConfig)
	}
	return cfg, nil
}

// ModelFlops returns the floating-point operations of one pass of the
// model cfg for n residues, s MSA sequences and se extra sequences,
// counting matrix products at 2·m·n·k (gemm.Flops): the input embedding
// (preprocess_msa and preprocess_1d; the one-hot embeddings are row
// look-ups and not counted), EvoformerFlops per extra-MSA and per Evoformer
// block, single_activations, StructureModuleFlops and the pLDDT head. The
// heads that run once after the last pass (distogram, masked MSA,
// experimentally resolved, aligned error) are HeadsFlops.
func ModelFlops(cfg Config, s, se, n int) float64 {
	e := cfg.Embedder
	fl := gemm.Flops(s*n, e.MSAChannels, e.MSAFeatChannels) + gemm.Flops(n, e.MSAChannels, e.TargetFeatChannels) +
		2*gemm.Flops(n, e.PairChannels, e.TargetFeatChannels)
	fl += float64(cfg.ExtraMSABlocks) * EvoformerFlops(cfg.ExtraMSA, max(se, 1), n)
	fl += float64(cfg.EvoformerBlocks) * EvoformerFlops(cfg.Evoformer, s, n)
	cs := cfg.StructureModule.IPA.CS
	fl += gemm.Flops(n, cs, e.MSAChannels) + StructureModuleFlops(cfg.StructureModule, n, false)
	h := cfg.Heads
	fl += gemm.Flops(n, h.PLDDTChannels, h.CS) + gemm.Flops(n, h.PLDDTChannels, h.PLDDTChannels) + gemm.Flops(n, h.PLDDTBins, h.PLDDTChannels)
	return fl
}

// HeadsFlops returns the floating-point operations of the heads Predict
// runs once after the last pass: the distogram, masked-MSA,
// experimentally-resolved and (in the _ptm models) aligned-error logits.
func HeadsFlops(cfg Config, s, n int) float64 {
	h := cfg.Heads
	fl := gemm.Flops(n*n, h.DistogramBins, h.CZ) + gemm.Flops(s*n, h.MSAClasses, h.CM) + gemm.Flops(n, residue.NumAtomTypes, h.CS)
	if h.PredictedAlignedError {
		fl += gemm.Flops(n*n, h.PAEBins, h.CZ)
	}
	return fl
}

// RandomFeatures returns synthetic features for n residues, s MSA
// sequences and se extra sequences with every mask 1: random residue types,
// residue_index 0..n−1, target_feat the one-hot of aatype, msa_feat with a
// random one-hot token, deletion channels and a random cluster profile
// (row 0 is the query), and random extra-MSA tokens and deletions. The
// values exercise the model's full computation; they are not a protein.
func RandomFeatures(n, s, se int, seed uint64) (*features.Features, error) {
	if n < 1 || s < 1 || se < 0 {
		return nil, fmt.Errorf("alphafold: random features n = %d, s = %d, se = %d, want n, s ≥ 1 and se ≥ 0: %w", n, s, se, num.ErrShape)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	const tfc, mfc, k = features.TargetFeatChannels, features.MSAFeatChannels, features.NumMSAClasses
	f := &features.Features{L: n, S: s, Se: se,
		AAType: make([]int, n), ResidueIndex: make([]int, n), SeqMask: make([]float64, n),
		TargetFeat: make([]float64, n*tfc), MSAFeat: make([]float64, s*n*mfc), MSAMask: make([]float64, s*n),
		ExtraMSA: make([]int, se*n), ExtraHasDeletion: make([]float64, se*n),
		ExtraDeletionValue: make([]float64, se*n), ExtraMSAMask: make([]float64, se*n)}
	for i := range n {
		f.AAType[i] = rng.IntN(residue.NumRestypes)
		f.ResidueIndex[i] = i
		f.SeqMask[i] = 1
		f.TargetFeat[i*tfc+1+f.AAType[i]] = 1
	}
	for q := range s {
		for i := range n {
			x := f.MSAFeat[(q*n+i)*mfc : (q*n+i+1)*mfc]
			tok := f.AAType[i]
			if q > 0 {
				tok = rng.IntN(features.Gap + 1)
			}
			x[tok] = 1
			d := float64(rng.IntN(3))
			x[k] = min(d, 1)
			x[k+1] = features.DeletionValue(d)
			var sum float64
			for c := range k {
				x[k+2+c] = rng.Float64()
				sum += x[k+2+c]
			}
			for c := range k {
				x[k+2+c] /= sum
			}
			x[mfc-1] = features.DeletionValue(rng.Float64())
			f.MSAMask[q*n+i] = 1
		}
	}
	for r := range se * n {
		f.ExtraMSA[r] = rng.IntN(features.Gap + 1)
		d := float64(rng.IntN(3))
		f.ExtraHasDeletion[r], f.ExtraDeletionValue[r] = min(d, 1), features.DeletionValue(d)
		f.ExtraMSAMask[r] = 1
	}
	return f, nil
}

// NewModelBench builds the model configuration names (ModelBenchConfig:
// "reduced" or "full") with AF2's initialisers and RandomFeatures for n
// residues, s MSA and se extra sequences, and returns a closure that runs
// one Predict of one pass (inference, no dropout) in dtype "float32" or
// "float64". flops is the count of that call: ModelFlops plus HeadsFlops.
func NewModelBench(config string, n, s, se int, dtype string) (run func() error, flops float64, err error) {
	return NewModelBenchOptions(config, n, s, se, dtype, PredictOptions{})
}

// NewModelBenchOptions is NewModelBench with the Predict options of every
// run: opt.Backend puts the two stacks on a backend (each run then uploads
// them once, as Predict does; the upload is part of the timing).
func NewModelBenchOptions(config string, n, s, se int, dtype string, opt PredictOptions) (run func() error, flops float64, err error) {
	cfg, err := ModelBenchConfig(config)
	if err != nil {
		return nil, 0, err
	}
	f, err := RandomFeatures(n, s, se, 1)
	if err != nil {
		return nil, 0, err
	}
	flops = ModelFlops(cfg, s, se, n) + HeadsFlops(cfg, s, n)
	rng := rand.New(rand.NewPCG(2, 3))
	switch dtype {
	case "float32":
		m, err := NewModel[float32](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		return func() error { _, err := m.Predict(context.Background(), f, opt); return err }, flops, nil
	case "float64":
		m, err := NewModel[float64](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		return func() error { _, err := m.Predict(context.Background(), f, opt); return err }, flops, nil
	}
	return nil, 0, fmt.Errorf("alphafold: model bench dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}
