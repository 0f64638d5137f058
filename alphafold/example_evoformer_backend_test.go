package alphafold_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/backend"
)

// An Evoformer block on a backend: upload the parameters once, keep the
// representations on the backend, and copy them back when needed. A fresh
// block has AF2's initialisation (every final projection zero), so it
// leaves its inputs unchanged.
func ExampleNewEvoformerBlock() {
	cfg := alphafold.DefaultEvoformerConfig()
	cfg.MSAChannels, cfg.PairChannels = 16, 8 // small widths for the example
	cfg.MSAHeadChannels, cfg.PairHeadChannels = 4, 4
	cfg.TriMulChannels, cfg.OuterChannels = 8, 4
	p, err := alphafold.NewEvoformerBlockParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	k := backend.CPU[float32]() // or backend.CUDA[float32](0, opts) in a foldkit_cuda build
	b, err := alphafold.NewEvoformerBlock(k, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	const s, n = 3, 5
	msaHost := make([]float32, s*n*cfg.MSAChannels)
	for i := range msaHost {
		msaHost[i] = float32(i%7) - 3
	}
	ones := func(l int) []float32 {
		x := make([]float32, l)
		for i := range x {
			x[i] = 1
		}
		return x
	}
	msa, _ := k.FromHost(msaHost)
	pair, _ := k.Alloc(n * n * cfg.PairChannels)
	msaMask, _ := k.FromHost(ones(s * n))
	pairMask, _ := k.FromHost(ones(n * n))
	if err := b.Forward(msa, pair, msaMask, pairMask, s, n); err != nil {
		fmt.Println(err)
		return
	}
	out := make([]float32, s*n*cfg.MSAChannels)
	if err := k.ToHost(out, msa); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out[10] == msaHost[10])
	// Output: true
}

// A transition on a backend: the update of every row, without the
// residual.
func ExampleNewTransition() {
	cfg := alphafold.TransitionConfig{C: 4, Factor: 2}
	p, err := alphafold.NewTransitionParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Transition2.B[1] = 0.5 // a fresh transition has zero output weights: out = b2
	k := backend.CPU[float32]()
	m, err := alphafold.NewTransition(k, cfg, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	const rows = 3
	x, _ := k.FromHost(make([]float32, rows*cfg.C))
	out, _ := k.Alloc(rows * cfg.C)
	if err := m.Forward(x, nil, rows, out); err != nil { // nil mask: AF2 does not mask transitions
		fmt.Println(err)
		return
	}
	h := make([]float32, rows*cfg.C)
	if err := k.ToHost(h, out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h[:cfg.C])
	// Output: [0 0.5 0 0]
}

// The outer product mean on a backend divides by the number of sequences
// in which both residues are present, plus 1e-3.
func ExampleNewOuterProductMean() {
	cfg := alphafold.OuterProductMeanConfig{CM: 8, C: 4, CZ: 6, Eps: 1e-3}
	p, err := alphafold.NewOuterProductMeanParams[float64](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	p.OutputB[0] = 1 // only the bias: out_ij = b / (1e-3 + Σ_s m_si m_sj)
	k := backend.CPU[float64]()
	m, err := alphafold.NewOuterProductMean(k, cfg, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	const s, n = 2, 2
	msa, _ := k.FromHost(make([]float64, s*n*cfg.CM))
	mask, _ := k.FromHost([]float64{1, 1, 1, 0}) // residue 1 is missing from sequence 1
	out, _ := k.Alloc(n * n * cfg.CZ)
	if err := m.Forward(msa, mask, s, n, out); err != nil {
		fmt.Println(err)
		return
	}
	h := make([]float64, n*n*cfg.CZ)
	if err := k.ToHost(h, out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.4f %.4f\n", h[0], h[3*cfg.CZ])
	// Output: 0.4998 0.9990
}
