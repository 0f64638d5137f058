package recycle_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/recycle"
)

// The recycling embedder runs on a backend chosen by the caller: here the
// CPU backend, where the same code runs on the CUDA backend (backend.CUDA
// in a foldkit_cuda build) with the recycled representations kept in
// device memory; the pseudo-β positions stay on the host. With fresh
// layer norms (scale 1, offset 0) and all-zero previous representations,
// the first-row update is 0 and the pair update is prev_pos_linear of the
// distogram: its bias alone for the pairs in no bin (the diagonal), and
// W[k,:] + b for residues 0 and 1, 5 Å apart (bin k = 1).
func ExampleNewEmbedder() {
	k := backend.CPU[float32]()
	defer k.Close()
	cfg := recycle.DefaultConfig()
	p, err := recycle.NewParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range p.PrevPosLinear.B {
		p.PrevPosLinear.B[i] = 0.5
	}
	m, err := recycle.NewEmbedder(k, p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	const n = 3
	pb := []float32{0, 0, 0, 5, 0, 0, 0, 12, 0} // [N, 3], Å, on the host
	prevRow, err := k.FromHost(make([]float32, n*cfg.CM))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(prevRow)
	prevPair, err := k.FromHost(make([]float32, n*n*cfg.CZ))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(prevPair)
	msaOut, err := k.Alloc(n * cfg.CM)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(msaOut)
	pairOut, err := k.Alloc(n * n * cfg.CZ)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Free(pairOut)
	if err := m.Forward(prevRow, prevPair, pb, n, msaOut, pairOut); err != nil {
		fmt.Println(err)
		return
	}
	msa, pair := make([]float32, n*cfg.CM), make([]float32, n*n*cfg.CZ)
	if err := k.ToHost(msa, msaOut); err != nil {
		fmt.Println(err)
		return
	}
	if err := k.ToHost(pair, pairOut); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msa[0], pair[0], pair[1*cfg.CZ] == p.PrevPosLinear.W[1*cfg.CZ]+0.5)
	// Output: 0 0.5 true
}
