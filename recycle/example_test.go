package recycle_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/recycle"
)

// On the first pass AF2 recycles zeros: the first-row update is then the
// layer norm's offset, and the pair update the offset plus the bias of
// prev_pos_linear (d = 0 falls in no distance bin).
func ExampleNewParams() {
	cfg := recycle.DefaultConfig()
	p, err := recycle.NewParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const n = 4
	prev := recycle.NewState[float32](n, cfg.CM, cfg.CZ)
	msa, pair := make([]float32, n*cfg.CM), make([]float32, n*n*cfg.CZ)
	if err := recycle.Forward(p, prev.MSAFirstRow, prev.Pair, prev.PseudoBeta, msa, pair, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msa[0], pair[0])
	// Output: 0 0
}

// AF2's distance bins: 15 bins from 3.25 Å, strict edges, the last open.
func ExampleDistogram() {
	cfg := recycle.DefaultConfig()
	x := []float64{0, 0, 0, 3.25, 0, 0, 0, 5, 0, 0, 0, 50}
	fmt.Println(recycle.Distogram(cfg, x, 4)[1:4])
	// Output: [-1 1 14]
}

// Run drives any model step; here a toy one whose Cα positions halve their
// distance to a target each pass, with ColabFold's early stop and a
// progress hook.
func ExampleRun() {
	target := []float64{0, 0, 0, 3.8, 0, 0, 7.6, 0, 0}
	step := func(iter int, prev *recycle.State[float64]) (*recycle.State[float64], error) {
		next := recycle.NewState[float64](3, 1, 1)
		for i := range next.CA {
			next.CA[i] = prev.CA[i] + 0.5*(target[i]-prev.CA[i])
		}
		return next, nil
	}
	hook := func(p recycle.Progress) error {
		fmt.Printf("pass %d/%d change %.3f Å\n", p.Iter+1, p.Iterations, p.Change)
		return nil
	}
	_, sum, err := recycle.Run(step, recycle.NewState[float64](3, 1, 1), recycle.Options{Iterations: 10, Tolerance: 0.5, Hook: hook})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum.Passes, sum.Converged)
	// Output:
	// pass 1/10 change NaN Å
	// pass 2/10 change 1.097 Å
	// pass 3/10 change 0.548 Å
	// pass 4/10 change 0.274 Å
	// 4 true
}
