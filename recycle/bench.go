package recycle

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/num"
)

// BenchModules returns the module names NewBench accepts: the recycling
// embedder, and the loop's own work around a step that does nothing.
func BenchModules() []string { return []string{"recycling_embedder", "recycle_loop"} }

// NewBench returns a closure that runs one benchmark unit in dtype "float32"
// or "float64" with AF2's default widths (c_m = 256, c_z = 128) for n
// residues, and its floating-point operation count; s (sequences) is not
// used, as recycling sees only the first MSA row.
//
//   - "recycling_embedder": one Forward of the embedder with random
//     previous outputs, or Forward with a cache and Backward. flops counts
//     the layer norms' and embedding's adds and multiplies, about
//     8·(N·c_m + N²·c_z) + 15·N² for the distogram, tripled with backward;
//     it is memory-bound, so time matters more than the rate.
//   - "recycle_loop": Run with 4 passes of a step that returns its input
//     unchanged and the early-stop criterion on, so that the time is the
//     loop's overhead: cloning the recycled state (dominated by the pair
//     representation, N²·c_z values) and the Cα distance change (N²
//     distances) per pass. flops is 0.
func NewBench(module string, n, s int, dtype string, backward bool) (run func() error, flops float64, err error) {
	switch dtype {
	case "float32":
		return newBench[float32](module, n, backward)
	case "float64":
		return newBench[float64](module, n, backward)
	}
	return nil, 0, fmt.Errorf("recycle: bench dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

func newBench[T num.Float](module string, n int, backward bool) (func() error, float64, error) {
	if n < 1 {
		return nil, 0, fmt.Errorf("recycle: bench with %d residues: %w", n, num.ErrShape)
	}
	cfg := DefaultConfig()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	st := NewState[T](n, cfg.CM, cfg.CZ)
	for _, x := range [][]T{st.MSAFirstRow, st.Pair, st.PseudoBeta, st.CA} {
		for i := range x {
			x[i] = T(10 * rng.NormFloat64())
		}
	}
	switch module {
	case "recycling_embedder":
		p, err := NewParams[T](cfg, rng)
		if err != nil {
			return nil, 0, err
		}
		msa, pair := make([]T, n*cfg.CM), make([]T, n*n*cfg.CZ)
		flops := 8*float64(n*cfg.CM+n*n*cfg.CZ) + 15*float64(n*n)
		if !backward {
			return func() error { return Forward(p, st.MSAFirstRow, st.Pair, st.PseudoBeta, msa, pair, nil) }, flops, nil
		}
		return func() error {
			var c Cache[T]
			if err := Forward(p, st.MSAFirstRow, st.Pair, st.PseudoBeta, msa, pair, &c); err != nil {
				return err
			}
			return Backward(p, &c, msa, pair, make([]T, len(msa)), make([]T, len(pair)), p.ZerosLike())
		}, 3 * flops, nil
	case "recycle_loop":
		step := func(_ int, prev *State[T]) (*State[T], error) { return prev, nil }
		return func() error {
			_, _, err := Run(step, st, Options{Iterations: 4, Tolerance: 1e-12})
			return err
		}, 0, nil
	}
	return nil, 0, fmt.Errorf("recycle: bench module %q, want recycling_embedder or recycle_loop: %w", module, ErrConfig)
}
