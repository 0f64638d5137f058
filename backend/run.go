package backend

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
)

// Run runs a computation on backend k for host data, the round trip of a
// one-off call (a reference case, a test): it uploads the inputs in (a nil
// input stays an absent, nil tensor), allocates one zeroed output tensor of
// each length in outLens, calls run, and returns the outputs copied back to
// the host. Every tensor it makes is freed before it returns. A chain of
// modules that should keep its activations on the backend calls the
// modules directly instead.
func Run[T num.Float](k Kernels[T], in [][]T, outLens []int, run func(in, out []Tensor[T]) error) ([][]T, error) {
	var live []Tensor[T]
	defer func() {
		for _, t := range live {
			k.Free(t)
		}
	}()
	din := make([]Tensor[T], len(in))
	for i, x := range in {
		if x == nil {
			continue // an absent optional input
		}
		d, err := k.FromHost(x)
		if err != nil {
			return nil, fmt.Errorf("backend: Run: uploading input %d: %w", i, err)
		}
		live = append(live, d)
		din[i] = d
	}
	dout := make([]Tensor[T], len(outLens))
	for i, n := range outLens {
		d, err := k.Alloc(n)
		if err != nil {
			return nil, fmt.Errorf("backend: Run: allocating output %d: %w", i, err)
		}
		live = append(live, d)
		dout[i] = d
	}
	if err := run(din, dout); err != nil {
		return nil, err
	}
	res := make([][]T, len(dout))
	for i, d := range dout {
		res[i] = make([]T, outLens[i])
		if err := k.ToHost(res[i], d); err != nil {
			return nil, fmt.Errorf("backend: Run: downloading output %d: %w", i, err)
		}
	}
	return res, nil
}
