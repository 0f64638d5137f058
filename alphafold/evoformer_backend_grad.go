package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/triangle"
)

// EvoformerBlockTape records on the backend what EvoformerBlock.Backward
// needs from one EvoformerBlock.ForwardTape call: the training counterpart
// of EvoformerBlockCache for a block on a backend. A zero
// EvoformerBlockTape is ready to use; a later ForwardTape call replaces
// what it holds, and Free releases it.
//
// On the CPU dispatch path (CPU tensors, see EvoformerBlock.Forward) the
// tape holds an EvoformerBlockCache filled by EvoformerBlockParams.Forward.
// On the composed path it holds, on the backend, a copy of the residual
// stream entering each of the nine updates (four [S, N, c_m] and six
// [N, N, c_z] tensors: the forward pass updates msa and pair in place, and
// a stack's next block updates them again) and the tape of each update's
// module, which refers to that copy. Either way the tape refers to (does
// not copy) the msaMask and pairMask passed to ForwardTape, which must not
// change or be freed until the last Backward call that uses the tape; msa
// and pair may change.
type EvoformerBlockTape[T num.Float] struct {
	b     *EvoformerBlock[T] // the block that filled the tape
	s, n  int
	valid bool
	host  bool // filled by the CPU dispatch path: cache holds the CPU cache

	cache EvoformerBlockCache[T]

	row              msaattn.RowTape[T]
	col              msaattn.ColumnTape[T]
	glob             msaattn.GlobalColumnTape[T]
	msaTrans         TransitionTape[T]
	opm              OuterProductMeanTape[T]
	mulOut, mulIn    triangle.MulTape[T]
	attStart, attEnd triangle.AttTape[T]
	pairTrans        TransitionTape[T]

	// m holds the inputs of row attention, column attention, the MSA
	// transition and the outer product mean; z those of row attention
	// (its pair bias), the four triangle updates and the pair transition.
	m   [4]backend.Tensor[T]
	z   [6]backend.Tensor[T]
	own *backend.Arena[T] // m and z, freed by Free
}

// Free releases the tape's tensors, its modules' tapes and its CPU cache;
// the tape is then empty, ready for another ForwardTape call. Free of a
// zero tape does nothing.
func (t *EvoformerBlockTape[T]) Free() {
	t.row.Free()
	t.col.Free()
	t.glob.Free()
	t.msaTrans.Free()
	t.opm.Free()
	t.mulOut.Free()
	t.mulIn.Free()
	t.attStart.Free()
	t.attEnd.Free()
	t.pairTrans.Free()
	if t.own != nil {
		t.own.Free()
	}
	*t = EvoformerBlockTape[T]{}
}

// ForwardTape runs the block as Forward does (no dropout), updating msa
// [S, N, c_m] and pair [N, N, c_z] in place with the same results bit for
// bit, and records in tape what Backward needs to differentiate it:
// supplement Algorithm 6 (or 18 for an extra-MSA block) for training on a
// backend. msaMask [S, N] and pairMask [N, N] are as for Forward, and tape
// must not be nil; what tape held before is released. See
// EvoformerBlockTape for what is kept.
//
// When every tensor is a CPU tensor ForwardTape runs
// EvoformerBlockParams.Forward (rng = nil) with the tape's
// EvoformerBlockCache. Otherwise it copies the residual stream before each
// update into the tape and runs the update's module's ForwardTape on the
// copy (the modules of packages msaattn and triangle, and this package's
// Transition and OuterProductMean), adding each update with Add; two
// scratch tensors ([S, N, c_m] and [N, N, c_z]) are freed before it
// returns.
//
// The error wraps ErrConfig for a closed block or a nil tape, num.ErrShape
// for a length that does not match S, N and the configuration, num.ErrNaN
// on the CPU path (and in attention where the backend checks its inputs)
// for a non-finite input, and the modules' and backend's errors; the tape
// is then empty, and msa and pair may have been partly updated.
func (b *EvoformerBlock[T]) ForwardTape(msa, pair, msaMask, pairMask backend.Tensor[T], s, n int, tape *EvoformerBlockTape[T]) error {
	if b.p == nil {
		return fmt.Errorf("alphafold: EvoformerBlock.ForwardTape on a closed block: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("alphafold: EvoformerBlock.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.Free()
	if err := bkCheckBlockInputs(b.cfg, msa, pair, msaMask, pairMask, s, n); err != nil {
		return err
	}
	tape.b, tape.s, tape.n = b, s, n
	if h, ok := backend.HostSlices(msa, pair, msaMask, pairMask); ok && !b.composed {
		tape.host = true
		if err := b.p.Forward(h[0], h[1], h[2], h[3], s, n, nil, &tape.cache); err != nil {
			tape.Free()
			return err
		}
		tape.valid = true
		return nil
	}
	sc := backend.NewArena(b.k)
	defer sc.Free()
	mu, zu := sc.Alloc(s*n*b.cfg.MSAChannels), sc.Alloc(n*n*b.cfg.PairChannels)
	if sc.Err() != nil {
		tape.Free()
		return fmt.Errorf("alphafold: EvoformerBlock.ForwardTape: %w", sc.Err())
	}
	if err := b.forwardTape(msa, pair, msaMask, pairMask, s, n, mu, zu, tape); err != nil {
		tape.Free()
		return fmt.Errorf("alphafold: EvoformerBlock.ForwardTape: %w", err)
	}
	tape.valid = true
	return nil
}

// forwardTape is the composed path of ForwardTape on checked arguments,
// with the scratch tensors mu [S, N, c_m] and zu [N, N, c_z] for the
// updates. With t nil it computes what the composed path of Forward
// computes, in the same way (each module's Forward reads msa or pair
// itself, nothing is copied), so that Forward can be this function without
// a tape; with a tape each module's ForwardTape reads a copy kept in t and
// records its own tape there.
func (b *EvoformerBlock[T]) forwardTape(msa, pair, msaMask, pairMask backend.Tensor[T], s, n int, mu, zu backend.Tensor[T], t *EvoformerBlockTape[T]) error {
	k, cfg := b.k, b.cfg
	rows, pairs := s*n*cfg.MSAChannels, n*n*cfg.PairChannels
	if t != nil {
		t.own = backend.NewArena(k)
		for i := range t.m {
			t.m[i] = t.own.Alloc(rows)
		}
		for i := range t.z {
			t.z[i] = t.own.Alloc(pairs)
		}
		if t.own.Err() != nil {
			return t.own.Err()
		}
	}
	// in returns the tensor an update reads: x itself without a tape, or
	// its copy into the tape's saved.
	in := func(x, saved backend.Tensor[T]) (backend.Tensor[T], error) {
		if t == nil {
			return x, nil
		}
		return saved, k.Copy(saved, x)
	}
	var sm [4]backend.Tensor[T]
	var sz [6]backend.Tensor[T]
	if t != nil {
		sm, sz = t.m, t.z
	}
	// update runs one residual update: x += f(x'), x' = in(x, saved).
	update := func(x, saved, u backend.Tensor[T], f func(x backend.Tensor[T]) error) error {
		xi, err := in(x, saved)
		if err != nil {
			return err
		}
		if err := f(xi); err != nil {
			return err
		}
		return k.Add(x, u)
	}

	// MSA stack. Row attention also reads the pair, which it gets from
	// the copy z0 (the pair changes only from the outer product mean on).
	z0, err := in(pair, sz[0])
	if err != nil {
		return err
	}
	if err := update(msa, sm[0], mu, func(x backend.Tensor[T]) error {
		if t == nil {
			return b.row.Forward(x, z0, msaMask, s, n, mu)
		}
		return b.row.ForwardTape(x, z0, msaMask, s, n, mu, &t.row)
	}); err != nil {
		return err
	}
	if err := update(msa, sm[1], mu, func(x backend.Tensor[T]) error {
		switch {
		case b.glob != nil && t == nil:
			return b.glob.Forward(x, msaMask, s, n, mu)
		case b.glob != nil:
			return b.glob.ForwardTape(x, msaMask, s, n, mu, &t.glob)
		case t == nil:
			return b.col.Forward(x, msaMask, s, n, mu)
		default:
			return b.col.ForwardTape(x, msaMask, s, n, mu, &t.col)
		}
	}); err != nil {
		return err
	}
	if err := update(msa, sm[2], mu, func(x backend.Tensor[T]) error {
		if t == nil {
			return b.msaTrans.Forward(x, nil, s*n, mu)
		}
		return b.msaTrans.ForwardTape(x, nil, s*n, mu, &t.msaTrans)
	}); err != nil {
		return err
	}

	// Communication: the outer product mean carries the MSA into the pair.
	m3, err := in(msa, sm[3])
	if err != nil {
		return err
	}
	if t == nil {
		err = b.opm.Forward(m3, msaMask, s, n, zu)
	} else {
		err = b.opm.ForwardTape(m3, msaMask, s, n, zu, &t.opm)
	}
	if err != nil {
		return err
	}
	if err := k.Add(pair, zu); err != nil {
		return err
	}

	// Pair stack.
	var mulOutT, mulInT *triangle.MulTape[T]
	var attStartT, attEndT *triangle.AttTape[T]
	if t != nil {
		mulOutT, mulInT, attStartT, attEndT = &t.mulOut, &t.mulIn, &t.attStart, &t.attEnd
	}
	for i, m := range []struct {
		mul  *triangle.Mul[T]
		mulT *triangle.MulTape[T]
		att  *triangle.Att[T]
		attT *triangle.AttTape[T]
	}{
		{mul: b.mulOut, mulT: mulOutT},
		{mul: b.mulIn, mulT: mulInT},
		{att: b.attStart, attT: attStartT},
		{att: b.attEnd, attT: attEndT},
	} {
		if err := update(pair, sz[1+i], zu, func(x backend.Tensor[T]) error {
			switch {
			case m.mul != nil && t == nil:
				return m.mul.Forward(x, pairMask, n, zu)
			case m.mul != nil:
				return m.mul.ForwardTape(x, pairMask, n, zu, m.mulT)
			case t == nil:
				return m.att.Forward(x, pairMask, n, zu)
			default:
				return m.att.ForwardTape(x, pairMask, n, zu, m.attT)
			}
		}); err != nil {
			return err
		}
	}
	return update(pair, sz[5], zu, func(x backend.Tensor[T]) error {
		if t == nil {
			return b.pairTrans.Forward(x, nil, n*n, zu)
		}
		return b.pairTrans.ForwardTape(x, nil, n*n, zu, &t.pairTrans)
	})
}

// Backward computes the gradients of a scalar loss L through the block
// (supplement Algorithm 6, or 18 for an extra-MSA block) whose ForwardTape
// call filled tape, on the backend, with the convention of
// EvoformerBlockParams.Backward: on entry dmsa [S, N, c_m] and dpair
// [N, N, c_z] hold ∂L/∂ of the block's outputs; on return they hold ∂L/∂
// of its inputs msa and pair (overwritten in place, so that a stack chains
// blocks without extra buffers). When grad is not nil the parameter
// gradients are accumulated (+=) into it (start from p.ZerosLike()). The
// masks get no gradient. The tape is left intact, so Backward may be
// called again.
//
// On a tape filled by the CPU dispatch path Backward is
// EvoformerBlockParams.Backward (dmsa and dpair must then be CPU tensors).
// Otherwise it runs the modules' Backward in the reverse order of the
// updates: each update x += f(x') gives ∂L/∂x' = ∂L/∂x + f'ᵀ·∂L/∂x, so
// ∂L/∂x is copied into a scratch tensor as the module's dout and the
// module accumulates into dpair or dmsa; the outer product mean
// accumulates into dmsa from dpair, and row attention into both. Each
// module adds its parameter gradients to grad's module at the end of its
// call. The scratch is one [S, N, c_m] and one [N, N, c_z] tensor beside
// the modules' own.
//
// The error wraps ErrConfig for a closed block, a grad of another
// configuration, or a nil or empty tape or one filled by another block,
// num.ErrShape for a dmsa or dpair whose length does not match the tape's
// S and N, backend.ErrForeign for backend tensors given with a tape of the
// CPU path, num.ErrNaN for a non-finite gradient on the CPU path, and the
// modules' and backend's errors; dmsa and dpair may then have been partly
// updated.
func (b *EvoformerBlock[T]) Backward(tape *EvoformerBlockTape[T], dmsa, dpair backend.Tensor[T], grad *EvoformerBlockParams[T]) error {
	if b.p == nil {
		return fmt.Errorf("alphafold: EvoformerBlock.Backward on a closed block: %w", ErrConfig)
	}
	if tape == nil || !tape.valid {
		return fmt.Errorf("alphafold: EvoformerBlock.Backward without a ForwardTape pass in the tape: %w", ErrConfig)
	}
	if tape.b != b {
		return fmt.Errorf("alphafold: EvoformerBlock.Backward: tape filled by another block: %w", ErrConfig)
	}
	s, n, cm, cz := tape.s, tape.n, b.cfg.MSAChannels, b.cfg.PairChannels
	const mod = "Evoformer block"
	if err := bkCheck(mod, "dmsa", dmsa, s*n*cm, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cm)); err != nil {
		return err
	}
	if err := bkCheck(mod, "dpair", dpair, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	if grad != nil {
		if grad.Config != b.cfg {
			return fmt.Errorf("alphafold: EvoformerBlock.Backward: gradient has config %+v, want %+v: %w", grad.Config, b.cfg, ErrConfig)
		}
		if err := grad.check(); err != nil {
			return err
		}
	}
	if tape.host {
		h, err := bkHostGrads("EvoformerBlock.Backward", dmsa, dpair)
		if err != nil {
			return err
		}
		return b.p.Backward(&tape.cache, h[0], h[1], grad)
	}
	if err := b.backward(tape, dmsa, dpair, grad); err != nil {
		return fmt.Errorf("alphafold: EvoformerBlock.Backward: %w", err)
	}
	return nil
}

// backward is the composed path of Backward on checked arguments.
func (b *EvoformerBlock[T]) backward(t *EvoformerBlockTape[T], dm, dz backend.Tensor[T], grad *EvoformerBlockParams[T]) error {
	k := b.k
	s, n := t.s, t.n
	var g EvoformerBlockParams[T] // the modules' gradients, nil without grad
	if grad != nil {
		g = *grad
	}
	sc := backend.NewArena(k)
	defer sc.Free()
	mu, zu := sc.Alloc(s*n*b.cfg.MSAChannels), sc.Alloc(n*n*b.cfg.PairChannels)
	if sc.Err() != nil {
		return sc.Err()
	}

	// Pair stack, last update first: z_{k+1} = z_k + f(z_k), so
	// ∂L/∂z_k = ∂L/∂z_{k+1} + f'(z_k)ᵀ·∂L/∂z_{k+1}.
	if err := k.Copy(zu, dz); err != nil {
		return err
	}
	if err := b.pairTrans.Backward(&t.pairTrans, zu, dz, g.PairTransition); err != nil {
		return err
	}
	for _, st := range []func() error{
		func() error { return b.attEnd.Backward(&t.attEnd, zu, dz, g.TriangleAttentionEndingNode) },
		func() error { return b.attStart.Backward(&t.attStart, zu, dz, g.TriangleAttentionStartingNode) },
		func() error { return b.mulIn.Backward(&t.mulIn, zu, dz, g.TriangleMultiplicationIncoming) },
		func() error { return b.mulOut.Backward(&t.mulOut, zu, dz, g.TriangleMultiplicationOutgoing) },
	} {
		if err := k.Copy(zu, dz); err != nil {
			return err
		}
		if err := st(); err != nil {
			return err
		}
	}

	// The outer product mean feeds the pair from the MSA.
	if err := b.opm.Backward(&t.opm, dz, dm, g.OuterProductMean); err != nil {
		return err
	}

	// MSA stack, last update first; row attention feeds both.
	for _, st := range []func() error{
		func() error { return b.msaTrans.Backward(&t.msaTrans, mu, dm, g.MSATransition) },
		func() error {
			if b.glob != nil {
				return b.glob.Backward(&t.glob, mu, dm, g.MSAColumnGlobalAttention)
			}
			return b.col.Backward(&t.col, mu, dm, g.MSAColumnAttention)
		},
		func() error { return b.row.Backward(&t.row, mu, dm, dz, g.MSARowAttention) },
	} {
		if err := k.Copy(mu, dm); err != nil {
			return err
		}
		if err := st(); err != nil {
			return err
		}
	}
	return nil
}

// EvoformerBlocksTape records on the backend what EvoformerBlocks.Backward
// needs from one ForwardTape call: one EvoformerBlockTape per block (each
// holds its block's residual stream, so the stack's in-place updates
// lose nothing). A zero tape is ready to use.
type EvoformerBlocksTape[T num.Float] struct {
	bs    *EvoformerBlocks[T]
	tapes []EvoformerBlockTape[T]
	valid bool
}

// Free releases the tapes of every block; the tape is then empty.
func (t *EvoformerBlocksTape[T]) Free() {
	for i := range t.tapes {
		t.tapes[i].Free()
	}
	*t = EvoformerBlocksTape[T]{}
}

// ForwardTape runs the blocks in order as Forward does, each through
// EvoformerBlock.ForwardTape, recording in tape what Backward needs: the
// stack of Evoformer (Algorithm 6) or extra-MSA (Algorithm 18) blocks for
// training on a backend, without dropout. The memory is that of the
// blocks' tapes (about four MSA-sized and six pair-sized tensors a block).
//
// The error wraps ErrConfig for a closed stack or a nil tape, num.ErrShape
// for a length that does not match s and n, and the blocks' errors; the
// tape is then empty.
func (bs *EvoformerBlocks[T]) ForwardTape(msa, pair, msaMask, pairMask backend.Tensor[T], s, n int, tape *EvoformerBlocksTape[T]) error {
	if bs.st == nil {
		return fmt.Errorf("alphafold: EvoformerBlocks.ForwardTape on a closed stack: %w", ErrConfig)
	}
	if tape == nil {
		return fmt.Errorf("alphafold: EvoformerBlocks.ForwardTape: nil tape: %w", ErrConfig)
	}
	tape.Free()
	if err := bkCheckBlockInputs(bs.cfg, msa, pair, msaMask, pairMask, s, n); err != nil {
		return err
	}
	tape.tapes = make([]EvoformerBlockTape[T], len(bs.blocks))
	for i, b := range bs.blocks {
		if err := b.ForwardTape(msa, pair, msaMask, pairMask, s, n, &tape.tapes[i]); err != nil {
			tape.Free()
			return fmt.Errorf("alphafold: Evoformer stack block %d: %w", i, err)
		}
	}
	tape.bs, tape.valid = bs, true
	return nil
}

// Backward computes the gradients of a scalar loss through the stack whose
// ForwardTape call filled tape, with the convention of
// EvoformerStack.Backward: on entry dmsa and dpair hold ∂L/∂ of the
// stack's outputs, on return ∂L/∂ of its inputs; the parameter gradients
// are accumulated into grad's blocks when grad is not nil. It runs the
// blocks' Backward from the last block to the first.
//
// The error wraps ErrConfig for a closed stack, a nil or empty tape or one
// filled by another stack, or a grad with another number of blocks, and
// the blocks' errors.
func (bs *EvoformerBlocks[T]) Backward(tape *EvoformerBlocksTape[T], dmsa, dpair backend.Tensor[T], grad *EvoformerStack[T]) error {
	switch {
	case bs.st == nil:
		return fmt.Errorf("alphafold: EvoformerBlocks.Backward on a closed stack: %w", ErrConfig)
	case tape == nil || !tape.valid || tape.bs != bs:
		return fmt.Errorf("alphafold: EvoformerBlocks.Backward needs a tape filled by this stack's ForwardTape: %w", ErrConfig)
	case grad != nil && len(grad.Blocks) != len(bs.blocks):
		return fmt.Errorf("alphafold: EvoformerBlocks.Backward: grad has %d blocks, the stack %d: %w", len(grad.Blocks), len(bs.blocks), ErrConfig)
	}
	for i := len(bs.blocks) - 1; i >= 0; i-- {
		var g *EvoformerBlockParams[T]
		if grad != nil {
			g = grad.Blocks[i]
		}
		if err := bs.blocks[i].Backward(&tape.tapes[i], dmsa, dpair, g); err != nil {
			return fmt.Errorf("alphafold: Evoformer stack block %d: %w", i, err)
		}
	}
	return nil
}
