package msaattn_test

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/msaattn"
)

// upload copies each host slice to k, as a caller moves its inputs to the
// backend once; free releases them.
func upload(k backend.Kernels[float32], xs ...[]float32) (ts []backend.Tensor[float32], free func(), err error) {
	free = func() {
		for _, t := range ts {
			k.Free(t)
		}
	}
	for _, x := range xs {
		t, err := k.FromHost(x)
		if err != nil {
			free()
			return nil, func() {}, err
		}
		ts = append(ts, t)
	}
	return ts, free, nil
}

// NewRow puts row attention on a backend: the parameters are uploaded
// once, and Forward works on the backend's tensors. On the CPU backend the
// update is RowAttention.Forward's, bit for bit; with backend.CUDA (a
// foldkit_cuda build) the same calls keep the MSA, the pair representation
// and the update on the GPU.
func ExampleNewRow() {
	rng := rand.New(rand.NewPCG(9, 10))
	cfg := msaattn.RowConfig{MSAChannels: 16, PairChannels: 8, Heads: 2, HeadChannels: 4}
	p, err := msaattn.NewRowParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.Attention.OutputW { // AF2 starts the output projection at 0
		p.Attention.OutputW[i] = float32(rng.NormFloat64() / 8)
	}
	m := &msaattn.RowAttention[float32]{Config: cfg, Params: p}

	k := backend.CPU[float32]()
	row, err := msaattn.NewRow(k, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer row.Close()

	s, n := 3, 5
	msa, mask := inputs(rng, s, n, cfg.MSAChannels)
	z, _ := inputs(rng, n, n, cfg.PairChannels)
	in, free, err := upload(k, msa, z, mask)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer free()
	out, err := k.Alloc(s * n * cfg.MSAChannels)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(out)
	if err := row.Forward(in[0], in[1], in[2], s, n, out); err != nil {
		fmt.Println(err)
		return
	}
	update := make([]float32, out.Len())
	if err := k.ToHost(update, out); err != nil {
		fmt.Println(err)
		return
	}

	want, err := m.Forward(msa, z, mask, s, n, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(update), "values, equal to RowAttention.Forward:", slices.Equal(update, want))
	// Output: 240 values, equal to RowAttention.Forward: true
}

// NewColumn puts column attention on a backend; a padding position (mask
// 0) is never attended to, and its own update stays finite.
func ExampleNewColumn() {
	rng := rand.New(rand.NewPCG(11, 12))
	cfg := msaattn.ColumnConfig{MSAChannels: 16, Heads: 2, HeadChannels: 4}
	p, err := msaattn.NewColumnParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.Attention.OutputW {
		p.Attention.OutputW[i] = float32(rng.NormFloat64() / 8)
	}
	m := &msaattn.ColumnAttention[float32]{Config: cfg, Params: p}

	k := backend.CPU[float32]()
	col, err := msaattn.NewColumn(k, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer col.Close()

	s, n := 4, 3
	msa, mask := inputs(rng, s, n, cfg.MSAChannels)
	mask[3*n+1] = 0 // sequence 3 has a gap at residue 1
	in, free, err := upload(k, msa, mask)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer free()
	out, err := k.Alloc(s * n * cfg.MSAChannels)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(out)
	if err := col.Forward(in[0], in[1], s, n, out); err != nil {
		fmt.Println(err)
		return
	}
	update := make([]float32, out.Len())
	if err := k.ToHost(update, out); err != nil {
		fmt.Println(err)
		return
	}
	want, err := m.Forward(msa, mask, s, n, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(update), "values, equal to ColumnAttention.Forward:", slices.Equal(update, want))
	// Output: 192 values, equal to ColumnAttention.Forward: true
}

// NewGlobalColumn puts the extra-MSA stack's global column attention on a
// backend. A residue that is padding in every sequence has a mean query of
// 0 and a finite update.
func ExampleNewGlobalColumn() {
	rng := rand.New(rand.NewPCG(13, 14))
	cfg := msaattn.GlobalColumnConfig{MSAChannels: 16, Heads: 2, HeadChannels: 4}
	p, err := msaattn.NewGlobalColumnParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.OutputW {
		p.OutputW[i] = float32(rng.NormFloat64() / 8)
	}
	m := &msaattn.GlobalColumnAttention[float32]{Config: cfg, Params: p}

	k := backend.CPU[float32]()
	g, err := msaattn.NewGlobalColumn(k, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	s, n := 50, 3
	msa, mask := inputs(rng, s, n, cfg.MSAChannels)
	for si := range s {
		mask[si*n+2] = 0 // residue 2 is padding in every sequence
	}
	in, free, err := upload(k, msa, mask)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer free()
	out, err := k.Alloc(s * n * cfg.MSAChannels)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(out)
	if err := g.Forward(in[0], in[1], s, n, out); err != nil {
		fmt.Println(err)
		return
	}
	update := make([]float32, out.Len())
	if err := k.ToHost(update, out); err != nil {
		fmt.Println(err)
		return
	}
	want, err := m.Forward(msa, mask, s, n, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(update), "values, equal to GlobalColumnAttention.Forward:", slices.Equal(update, want))
	// Output: 2400 values, equal to GlobalColumnAttention.Forward: true
}
