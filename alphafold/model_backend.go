package alphafold

import (
	"context"
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
)

// mdlStacks are a model's extra-MSA and Evoformer stacks uploaded to a
// backend for one Predict call (PredictOptions.Backend): every pass runs
// both stacks there, the pair representation staying on the backend from
// the first extra-MSA block to the last Evoformer block.
type mdlStacks[T num.Float] struct {
	k          backend.Kernels[T]
	extra, evo *EvoformerBlocks[T] // nil for a stack without blocks
}

// newStacks uploads m's two stacks to k.
func (m *Model[T]) newStacks(k backend.Kernels[T]) (*mdlStacks[T], error) {
	st := &mdlStacks[T]{k: k}
	var err error
	if len(m.ExtraMSAStack.Blocks) > 0 {
		if st.extra, err = NewEvoformerBlocks(k, m.ExtraMSAStack); err != nil {
			return nil, fmt.Errorf("alphafold: model: uploading the extra-MSA stack to %s: %w", k.Name(), err)
		}
	}
	if len(m.Evoformer.Blocks) > 0 {
		if st.evo, err = NewEvoformerBlocks(k, m.Evoformer); err != nil {
			st.close()
			return nil, fmt.Errorf("alphafold: model: uploading the Evoformer stack to %s: %w", k.Name(), err)
		}
	}
	return st, nil
}

func (st *mdlStacks[T]) close() {
	if st.extra != nil {
		st.extra.Close()
	}
	if st.evo != nil {
		st.evo.Close()
	}
}

// run runs the extra-MSA stack on r.extra and pair, then the Evoformer
// stack on r.msa and pair, on the backend, and copies the updated r.msa
// and pair back. The context is checked before every block, as on the CPU.
func (st *mdlStacks[T]) run(ctx context.Context, r *mdlRun[T], pair []T) error {
	k := st.k
	var live []backend.Tensor[T]
	defer func() {
		for _, t := range live {
			k.Free(t)
		}
	}()
	up := func(x []T) (backend.Tensor[T], error) {
		t, err := k.FromHost(x)
		if err == nil {
			live = append(live, t)
		}
		return t, err
	}
	n, s, se := r.n, r.s, r.se
	dpair, err := up(pair)
	if err != nil {
		return err
	}
	pm, err := up(r.pairMask)
	if err != nil {
		return err
	}
	stages := []struct {
		name     string
		blocks   *EvoformerBlocks[T]
		msa, msk []T
		rows     int
		keep     bool // copy the MSA back (the extra MSA is not used after its stack)
	}{
		{"extra-MSA", st.extra, r.extra, r.extraMask, se, false},
		{"Evoformer", st.evo, r.msa, r.msaMask, s, true},
	}
	for _, sg := range stages {
		if sg.blocks == nil {
			continue
		}
		dm, err := up(sg.msa)
		if err != nil {
			return err
		}
		mm, err := up(sg.msk)
		if err != nil {
			return err
		}
		for i, b := range sg.blocks.blocks {
			if err := mdlCanceled(ctx, fmt.Sprintf("before %s block %d", sg.name, i)); err != nil {
				return err
			}
			if err := b.Forward(dm, dpair, mm, pm, sg.rows, n); err != nil {
				return fmt.Errorf("alphafold: %s block %d on %s: %w", sg.name, i, k.Name(), err)
			}
		}
		if sg.keep {
			if err := k.ToHost(sg.msa, dm); err != nil {
				return err
			}
		}
	}
	return k.ToHost(pair, dpair)
}
