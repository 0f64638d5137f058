package alphafold

// ExtraMSAStackName is the haiku name of the extra-MSA stack under
// alphafold/alphafold_iteration/evoformer/; its parameters carry a leading
// layer axis (4 layers in AF2).
const ExtraMSAStackName = "extra_msa_stack"

// DefaultExtraMSAConfig returns AF2's extra-MSA block (supplement
// Algorithm 18): an Evoformer block on the extra MSA with c_e = 64 MSA
// channels, MSA attention of 8 heads of 8 channels, global column attention
// (Algorithm 19) in place of column attention, and otherwise the Evoformer
// block's sizes, order of updates and dropout (AF2 builds both from one
// EvoformerIteration with is_extra_msa set).
//
// Run it with EvoformerBlockParams or, for the whole stack,
// EvoformerStack: NewEvoformerStack(DefaultExtraMSAConfig(), 4, rng), or
// LoadEvoformerStack(evo, DefaultExtraMSAConfig()), which reads
// "extra_msa_stack/...". The model uses only the stack's pair output; the
// extra MSA representation is dropped after the last block.
func DefaultExtraMSAConfig() EvoformerConfig {
	cfg := DefaultEvoformerConfig()
	cfg.MSAChannels = 64
	cfg.MSAHeadChannels = 8
	cfg.GlobalColumn = true
	return cfg
}
