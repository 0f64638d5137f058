package msaattn_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/params"
)

// inputs returns an MSA [s, n, c] of standard normal values and a mask of
// ones.
func inputs(rng *rand.Rand, s, n, c int) (msa, mask []float32) {
	msa = make([]float32, s*n*c)
	for i := range msa {
		msa[i] = float32(rng.NormFloat64())
	}
	mask = make([]float32, s*n)
	for i := range mask {
		mask[i] = 1
	}
	return msa, mask
}

func maxAbs(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// A freshly initialised module adds nothing to the MSA: AF2 initialises
// the output projection to zero, so that a new Evoformer block starts as the
// identity.
func ExampleRowAttention() {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := msaattn.DefaultRowConfig()
	p, err := msaattn.NewRowParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := &msaattn.RowAttention[float32]{Config: cfg, Params: p}

	s, n := 4, 10
	msa, mask := inputs(rng, s, n, cfg.MSAChannels)
	z := make([]float32, n*n*cfg.PairChannels)
	update, err := m.Forward(msa, z, mask, s, n, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(update), "values, max |update| =", maxAbs(update))
	// Output: 10240 values, max |update| = 0
}

// Backward gives the gradients of every input and parameter. For a fresh
// module only the output projection's gradient is non-zero.
func ExampleColumnAttention() {
	rng := rand.New(rand.NewPCG(3, 4))
	cfg := msaattn.DefaultColumnConfig()
	p, err := msaattn.NewColumnParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := &msaattn.ColumnAttention[float32]{Config: cfg, Params: p}

	s, n := 6, 5
	msa, mask := inputs(rng, s, n, cfg.MSAChannels)
	var cache msaattn.ColumnCache[float32]
	update, err := m.Forward(msa, mask, s, n, &cache)
	if err != nil {
		fmt.Println(err)
		return
	}
	ones := make([]float32, len(update))
	for i := range ones {
		ones[i] = 1
	}
	g, err := m.Backward(&cache, ones) // gradients of Σ update
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("d/dmsa:", maxAbs(g.MSA), "d/doutput_b:", g.Params.Attention.OutputB[0], "d/doutput_w non-zero:", maxAbs(g.Params.Attention.OutputW) > 0)
	// Output: d/dmsa: 0 d/doutput_b: 30 d/doutput_w non-zero: true
}

// Global column attention, the column attention of the extra-MSA stack,
// scales linearly with the number of sequences. A column whose sequences
// are all masked gets a finite update.
func ExampleGlobalColumnAttention() {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg := msaattn.DefaultGlobalColumnConfig()
	p, err := msaattn.NewGlobalColumnParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.OutputW { // give the fresh module a non-zero output
		p.OutputW[i] = float32(rng.NormFloat64() / 8)
	}
	m := &msaattn.GlobalColumnAttention[float32]{Config: cfg, Params: p}

	s, n := 1000, 3
	msa, mask := inputs(rng, s, n, cfg.MSAChannels)
	for si := range s {
		mask[si*n+2] = 0 // residue 2 is padding in every sequence
	}
	update, err := m.Forward(msa, mask, s, n, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(update), "values, all finite:", !math.IsNaN(maxAbs(update)) && !math.IsInf(maxAbs(update), 0))
	// Output: 192000 values, all finite: true
}

// Parameters are stored and loaded under AF2's names, relative to the
// module; a released parameter file is narrowed to one module with Sub.
func ExampleLoadRowParams() {
	cfg := msaattn.RowConfig{MSAChannels: 16, PairChannels: 8, Heads: 2, HeadChannels: 4}
	p, err := msaattn.NewRowParams[float32](cfg, rand.New(rand.NewPCG(7, 8)))
	if err != nil {
		fmt.Println(err)
		return
	}
	module := params.New()
	if err := p.Store(module, cfg); err != nil {
		fmt.Println(err)
		return
	}
	const stack = "alphafold/alphafold_iteration/evoformer/evoformer_iteration/"
	file := params.New()
	if err := file.Merge(stack+msaattn.RowPrefix, module); err != nil {
		fmt.Println(err)
		return
	}

	q, err := msaattn.LoadRowParams[float64](file.Sub(stack+msaattn.RowPrefix), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(q.FeatTwoDWeights[0] == float64(p.FeatTwoDWeights[0]), file.Unused())
	for _, k := range module.Keys() {
		fmt.Println(k)
	}
	// Output:
	// true []
	// /feat_2d_weights
	// attention//gating_b
	// attention//gating_w
	// attention//key_w
	// attention//output_b
	// attention//output_w
	// attention//query_w
	// attention//value_w
	// feat_2d_norm//offset
	// feat_2d_norm//scale
	// query_norm//offset
	// query_norm//scale
}

// LoadColumnParams and LoadGlobalColumnParams read the other two modules
// the same way; the parameter names are listed by ColumnParamNames and
// GlobalColumnParamNames (relative to the parent of the module).
func ExampleLoadGlobalColumnParams() {
	for _, name := range msaattn.GlobalColumnParamNames() {
		fmt.Println(name)
	}
	// Output:
	// msa_column_global_attention/query_norm//scale
	// msa_column_global_attention/query_norm//offset
	// msa_column_global_attention/attention//query_w
	// msa_column_global_attention/attention//key_w
	// msa_column_global_attention/attention//value_w
	// msa_column_global_attention/attention//gating_w
	// msa_column_global_attention/attention//gating_b
	// msa_column_global_attention/attention//output_w
	// msa_column_global_attention/attention//output_b
}
