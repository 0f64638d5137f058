// Command evoformer_backend runs a stack of Evoformer blocks (AF2
// supplement Algorithm 6) on a backend, keeping the MSA and pair
// representations there from the first block to the last, and checks the
// result against the same stack on the CPU.
//
// The MSA and pair representations are uploaded once, every block updates
// them in place on the backend, and they are copied back once at the end:
// the way a model built from foldkit's parts keeps a GPU busy. With
// -tags foldkit_cuda and -backend cuda the blocks run on GPU 0.
//
//	go run ./examples/evoformer_backend [-blocks 2] [-n 32] [-s 16] [-backend cpu]
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/params"
)

func main() {
	blocks := flag.Int("blocks", 2, "Evoformer blocks")
	n := flag.Int("n", 32, "residues")
	s := flag.Int("s", 16, "MSA sequences")
	name := flag.String("backend", "cpu", "cpu, or cuda in foldkit_cuda builds")
	flag.Parse()
	k, err := open(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer k.Close()
	if _, err := run(os.Stdout, k, *blocks, *n, *s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run builds a stack of blocks with a reduced configuration and random
// parameters, runs it on k and on the CPU, and returns the largest
// difference between the two pair representations.
func run(w io.Writer, k backend.Kernels[float32], blocks, n, s int) (float64, error) {
	cfg := alphafold.EvoformerConfig{MSAChannels: 32, PairChannels: 16, MSAHeads: 4, MSAHeadChannels: 8,
		PairHeads: 2, PairHeadChannels: 8, TriMulChannels: 16, OuterChannels: 8, TransitionFactor: 2}
	rng := rand.New(rand.NewPCG(7, 7))
	st, err := alphafold.NewEvoformerStack[float32](cfg, blocks, rng)
	if err != nil {
		return 0, err
	}
	// AF2 initialises the last layer of every update to zero; perturb the
	// parameters (through their AF2-named file form) so that every block
	// changes the representations.
	set := params.New()
	if err := st.Save(set, ""); err != nil {
		return 0, err
	}
	for _, key := range set.Keys() {
		shape, err := set.Shape(key)
		if err != nil {
			return 0, err
		}
		x, err := params.Get[float32](set, key)
		if err != nil {
			return 0, err
		}
		for i := range x {
			x[i] += float32(0.05 * rng.NormFloat64())
		}
		if err := params.Put(set, key, shape, x); err != nil {
			return 0, err
		}
	}
	if st, err = alphafold.LoadEvoformerStack[float32](set, cfg); err != nil {
		return 0, err
	}
	msa, pair := normal(rng, s*n*cfg.MSAChannels), normal(rng, n*n*cfg.PairChannels)
	msaMask, pairMask := ones(s*n), ones(n*n)

	wantM, wantZ := append([]float32(nil), msa...), append([]float32(nil), pair...)
	t0 := time.Now()
	if err := st.Forward(wantM, wantZ, msaMask, pairMask, s, n, nil, nil); err != nil {
		return 0, err
	}
	cpu := time.Since(t0)

	bs, err := alphafold.NewEvoformerBlocks(k, st)
	if err != nil {
		return 0, err
	}
	defer bs.Close()
	a := backend.NewArena(k)
	defer a.Free()
	dm, dz, dmm, dpm := a.FromHost(msa), a.FromHost(pair), a.FromHost(msaMask), a.FromHost(pairMask)
	if err := a.Err(); err != nil {
		return 0, err
	}
	t0 = time.Now()
	if err := bs.Forward(dm, dz, dmm, dpm, s, n); err != nil {
		return 0, err
	}
	got := make([]float32, len(pair))
	if err := k.ToHost(got, dz); err != nil { // waits for the blocks
		return 0, err
	}
	on := time.Since(t0)

	var diff, scale float64
	for i, v := range got {
		diff = math.Max(diff, math.Abs(float64(v-wantZ[i])))
		scale = math.Max(scale, math.Abs(float64(wantZ[i])))
	}
	fmt.Fprintf(w, "%d Evoformer blocks, N=%d, S=%d on %s: %v (CPU code: %v)\n", blocks, n, s, k.Name(), on.Round(time.Millisecond), cpu.Round(time.Millisecond))
	fmt.Fprintf(w, "pair representation: max |Δ| vs the CPU = %.2g (values up to %.2g)\n", diff, scale)
	return diff / scale, nil
}

func normal(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func ones(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	return x
}
