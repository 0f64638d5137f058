package ipa_test

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/rigid"
)

// NewIPA puts invariant point attention on a backend: the parameters are
// uploaded once, and Forward works on the backend's tensors, the frames as
// [N, 12] (backend.FrameData of a []rigid.Rigid). On the CPU backend the
// update is ipa.Forward's, bit for bit; with backend.CUDA (a foldkit_cuda
// build) the same calls keep s, z, the frames and the update on the GPU.
func ExampleNewIPA() {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg := ipa.Config{CS: 16, CZ: 8, Heads: 2, Channels: 4, QueryPoints: 2, ValuePoints: 3, Eps: 1e-8, Inf: 1e5}
	p, err := ipa.NewParams[float32](cfg, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.OutputProjection.W { // AF2 starts the output projection at 0
		p.OutputProjection.W[i] = float32(rng.NormFloat64() / 8)
	}

	k := backend.CPU[float32]()
	m, err := ipa.NewIPA(k, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	const n = 5
	sh, zh := make([]float32, n*cfg.CS), make([]float32, n*n*cfg.CZ)
	for i := range sh {
		sh[i] = float32(rng.NormFloat64())
	}
	for i := range zh {
		zh[i] = float32(rng.NormFloat64())
	}
	frames := make([]rigid.Rigid[float32], n)
	maskh := make([]float32, n)
	for i := range frames {
		frames[i] = rigid.RandomRotation[float32](rng)
		frames[i].Trans = [3]float32{float32(i), 2, -1}
		maskh[i] = 1
	}
	maskh[3] = 0 // residue 3 is padding

	var ts []backend.Tensor[float32]
	defer func() {
		for _, t := range ts {
			k.Free(t)
		}
	}()
	for _, x := range [][]float32{sh, zh, backend.FrameData(frames), maskh} {
		t, err := k.FromHost(x)
		if err != nil {
			fmt.Println(err)
			return
		}
		ts = append(ts, t)
	}
	out, err := k.Alloc(n * cfg.CS)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(out)
	if err := m.Forward(ts[0], ts[1], ts[2], ts[3], n, out); err != nil {
		fmt.Println(err)
		return
	}
	update := make([]float32, out.Len())
	if err := k.ToHost(update, out); err != nil {
		fmt.Println(err)
		return
	}

	want := make([]float32, n*cfg.CS)
	if err := ipa.Forward(p, sh, zh, frames, maskh, want, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(update), "values, equal to ipa.Forward:", slices.Equal(update, want))
	// Output: 80 values, equal to ipa.Forward: true
}
