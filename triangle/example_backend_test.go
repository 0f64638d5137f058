package triangle_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/triangle"
)

// A triangle attention runs on a backend chosen by the caller: here the
// CPU backend, where the same code runs on the CUDA backend
// (backend.CUDA in a foldkit_cuda build) with the pair representation kept
// in device memory. Fresh parameters (zero output weights) make the
// update the output bias everywhere.
func ExampleNewAtt() {
	k := backend.CPU[float32]()
	defer k.Close()
	cfg := triangle.DefaultAttConfig()
	cfg.Ending = true // Algorithm 14
	p, err := triangle.NewAttParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.Attention.OutputB {
		p.Attention.OutputB[i] = 0.5
	}
	m, err := triangle.NewAtt(k, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	const n = 8
	zh := make([]float32, n*n*cfg.PairChannels)
	for i := range zh {
		zh[i] = float32(i%13) - 6
	}
	maskh := make([]float32, n*n)
	for i := range maskh {
		maskh[i] = 1
	}
	z, err := k.FromHost(zh)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(z)
	mask, err := k.FromHost(maskh)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(mask)
	out, err := k.Alloc(len(zh))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(out)
	if err := m.Forward(z, mask, n, out); err != nil {
		fmt.Println(err)
		return
	}
	res := make([]float32, len(zh))
	if err := k.ToHost(res, out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Name(), len(res), res[0], res[len(res)-1])
	// Output: triangle_attention_ending_node 8192 0.5 0.5
}

// A triangle multiplicative update on the CPU backend. Fresh parameters
// have a zero output projection and gates open at σ(1): with the output
// bias set to 1 the update is σ(1) ≈ 0.7311 everywhere.
func ExampleNewMul() {
	k := backend.CPU[float32]()
	defer k.Close()
	cfg := triangle.DefaultMulConfig() // outgoing edges, Algorithm 11
	p, err := triangle.NewMulParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.OutputProjection.B {
		p.OutputProjection.B[i] = 1
	}
	m, err := triangle.NewMul(k, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	const n = 8
	zh := make([]float32, n*n*cfg.PairChannels)
	for i := range zh {
		zh[i] = float32(i%17) - 8
	}
	maskh := make([]float32, n*n)
	for i := range maskh {
		maskh[i] = 1
	}
	z, err := k.FromHost(zh)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(z)
	mask, err := k.FromHost(maskh)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(mask)
	out, err := k.Alloc(len(zh))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(out)
	if err := m.Forward(z, mask, n, out); err != nil {
		fmt.Println(err)
		return
	}
	res := make([]float32, len(zh))
	if err := k.ToHost(res, out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %d %.4f %.4f\n", cfg.Name(), len(res), res[0], res[len(res)-1])
	// Output: triangle_multiplication_outgoing 8192 0.7311 0.7311
}
