package alphafold_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/alphafold"
)

// A fresh Evoformer block has AF2's initialisation: every final projection
// is zero, so the block leaves its inputs unchanged until it is trained.
func ExampleNewEvoformerBlockParams() {
	cfg := alphafold.DefaultEvoformerConfig()
	cfg.MSAChannels, cfg.PairChannels = 16, 8 // small widths for the example
	cfg.MSAHeadChannels, cfg.PairHeadChannels = 4, 4
	cfg.TriMulChannels, cfg.OuterChannels = 8, 4
	p, err := alphafold.NewEvoformerBlockParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const s, n = 3, 5
	msa, pair := make([]float32, s*n*cfg.MSAChannels), make([]float32, n*n*cfg.PairChannels)
	for i := range msa {
		msa[i] = float32(i%7) - 3
	}
	before := msa[10]
	msaMask, pairMask := make([]float32, s*n), make([]float32, n*n)
	for i := range msaMask {
		msaMask[i] = 1
	}
	for i := range pairMask {
		pairMask[i] = 1
	}
	// rng = nil: inference, no dropout.
	if err := p.Forward(msa, pair, msaMask, pairMask, s, n, nil, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msa[10] == before, pair[0])
	// Output: true 0
}

// The extra-MSA stack is an Evoformer stack with global column attention
// on the narrow extra MSA.
func ExampleDefaultExtraMSAConfig() {
	cfg := alphafold.DefaultExtraMSAConfig()
	st, err := alphafold.NewEvoformerStack[float32](cfg, 4, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Name(), len(st.Blocks), cfg.MSAChannels, cfg.GlobalColumn)
	// Output: extra_msa_stack 4 64 true
}

// The outer product mean divides by the number of sequences in which both
// residues are present, plus 1e-3; a fresh module (zero output weights and
// bias) returns zeros.
func ExampleNewOuterProductMeanParams() {
	cfg := alphafold.OuterProductMeanConfig{CM: 8, C: 4, CZ: 6, Eps: 1e-3}
	p, err := alphafold.NewOuterProductMeanParams[float64](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	p.OutputB[0] = 1 // only the bias: out_ij = b / (1e-3 + Σ_s m_si m_sj)
	const s, n = 2, 2
	msa := make([]float64, s*n*cfg.CM)
	mask := []float64{1, 1, 1, 0} // residue 1 is missing from sequence 1
	out := make([]float64, n*n*cfg.CZ)
	if err := p.Forward(msa, mask, s, n, out, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f %.4f\n", out[0], out[3*cfg.CZ])
	// Output: 0.4998 0.9990
}

// A transition is a two-layer MLP on every row; AF2 does not mask its
// output.
func ExampleNewTransitionParams() {
	cfg := alphafold.DefaultPairTransitionConfig()
	p, err := alphafold.NewTransitionParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(p.Transition1.W) == cfg.C*4*cfg.C, alphafold.TransitionParamNames(cfg, alphafold.PairTransitionName)[2])
	// Output: true pair_transition/transition1//weights
}
