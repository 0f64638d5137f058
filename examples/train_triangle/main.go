// Command train_triangle fits a triangle attention module (AF2 supplement
// Algorithm 13) to a target with plain gradient descent, running the
// forward and backward passes on a backend: the pattern of training any
// foldkit module there.
//
// Each step uploads the parameters (NewAtt), runs ForwardTape, takes the
// squared-error loss and its gradient on the host, runs Backward to get the
// parameter gradients, and updates the parameters on the host. With
// -tags foldkit_cuda and -backend cuda the two passes run on GPU 0.
//
//	go run ./examples/train_triangle [-steps 40] [-backend cpu]
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/triangle"
)

func main() {
	steps := flag.Int("steps", 40, "gradient steps")
	name := flag.String("backend", "cpu", "cpu, or cuda in foldkit_cuda builds")
	flag.Parse()
	k, err := open(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer k.Close()
	if _, _, err := run(os.Stdout, k, *steps); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run trains for steps steps on k and returns the first and last losses.
func run(w io.Writer, k backend.Kernels[float32], steps int) (first, last float64, err error) {
	const n = 8
	cfg := triangle.AttConfig{PairChannels: 16, Heads: 2, HeadChannels: 8}
	rng := rand.New(rand.NewPCG(1, 2))
	p, err := triangle.NewAttParams[float32](cfg, rng)
	if err != nil {
		return 0, 0, err
	}
	// A target the module can reach: the output of a teacher with random
	// (non-zero) output weights.
	teacher, err := triangle.NewAttParams[float32](cfg, rng)
	if err != nil {
		return 0, 0, err
	}
	for i := range teacher.Attention.OutputW {
		teacher.Attention.OutputW[i] = float32(0.3 * rng.NormFloat64())
	}
	z := make([]float32, n*n*cfg.PairChannels)
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	mask := make([]float32, n*n)
	for i := range mask {
		mask[i] = 1
	}
	target := make([]float32, len(z))
	if err := triangle.AttForward(teacher, z, mask, n, target, nil); err != nil {
		return 0, 0, err
	}

	dz, err := k.FromHost(z)
	if err != nil {
		return 0, 0, err
	}
	defer k.Free(dz)
	dmask, err := k.FromHost(mask)
	if err != nil {
		return 0, 0, err
	}
	defer k.Free(dmask)
	out, err := k.Alloc(len(z))
	if err != nil {
		return 0, 0, err
	}
	defer k.Free(out)

	const lr = 0.02
	host := make([]float32, len(z))
	for step := 0; step < steps; step++ {
		m, err := triangle.NewAtt(k, p) // uploads the current parameters
		if err != nil {
			return 0, 0, err
		}
		var tape triangle.AttTape[float32]
		if err := m.ForwardTape(dz, dmask, n, out, &tape); err != nil {
			return 0, 0, fmt.Errorf("step %d: forward: %w", step, err)
		}
		if err := k.ToHost(host, out); err != nil {
			return 0, 0, err
		}
		// L = ½·Σ(out − target)², ∂L/∂out = out − target.
		var loss float64
		for i, v := range host {
			d := v - target[i]
			loss += 0.5 * float64(d*d)
			host[i] = d
		}
		dout, err := k.FromHost(host)
		if err != nil {
			return 0, 0, err
		}
		g := p.ZerosLike()
		err = m.Backward(&tape, dout, nil, g) // parameter gradients only
		k.Free(dout)
		tape.Free()
		m.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("step %d: backward: %w", step, err)
		}
		for _, pair := range [][2][]float32{
			{p.QueryNorm.Scale, g.QueryNorm.Scale}, {p.QueryNorm.Offset, g.QueryNorm.Offset},
			{p.FeatTwoDWeights, g.FeatTwoDWeights},
			{p.Attention.QueryW, g.Attention.QueryW}, {p.Attention.KeyW, g.Attention.KeyW},
			{p.Attention.ValueW, g.Attention.ValueW}, {p.Attention.GatingW, g.Attention.GatingW},
			{p.Attention.GatingB, g.Attention.GatingB}, {p.Attention.OutputW, g.Attention.OutputW},
			{p.Attention.OutputB, g.Attention.OutputB},
		} {
			for i, d := range pair[1] {
				pair[0][i] -= lr * d
			}
		}
		if step == 0 {
			first = loss
		}
		last = loss
		if step%10 == 0 || step == steps-1 {
			fmt.Fprintf(w, "step %3d  loss %.6f\n", step, loss)
		}
	}
	return first, last, nil
}
