package alphafold

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/triangle"
)

// EvoformerBlock is one Evoformer block (supplement Algorithm 6), or one
// extra-MSA block (Algorithm 18) when its Config.GlobalColumn is set, on a
// backend chosen by the caller: the forward pass for inference (no
// dropout) of EvoformerBlockParams.Forward with rng = nil, composed of the
// backend modules of packages msaattn and triangle and of this package's
// Transition and OuterProductMean, with the parameters uploaded once. The
// representations stay on the backend; nothing is copied to the host.
// ForwardTape and Backward (evoformer_backend_grad.go) train it on the
// backend (without dropout).
type EvoformerBlock[T num.Float] struct {
	k   backend.Kernels[T]
	cfg EvoformerConfig
	// p is the CPU block the dispatch path runs.
	p *EvoformerBlockParams[T]

	row              *msaattn.Row[T]
	col              *msaattn.Column[T]       // nil when cfg.GlobalColumn
	glob             *msaattn.GlobalColumn[T] // nil unless cfg.GlobalColumn
	msaTrans         *Transition[T]
	opm              *OuterProductMean[T]
	mulOut, mulIn    *triangle.Mul[T]
	attStart, attEnd *triangle.Att[T]
	pairTrans        *Transition[T]

	// composed makes Forward compose the modules even when every tensor
	// is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewEvoformerBlock uploads the block p to k: it builds the backend module
// of each of the block's nine updates from p's parameters and p.Config.
// p's arrays are referenced by the CPU dispatch path and must not change
// while the block is in use.
//
// The error wraps ErrConfig for an invalid configuration, a nil p or a
// missing module, num.ErrShape for an array whose length does not match
// p.Config, and the backend's error if an upload fails.
func NewEvoformerBlock[T num.Float](k backend.Kernels[T], p *EvoformerBlockParams[T]) (*EvoformerBlock[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("alphafold: NewEvoformerBlock: nil backend or parameters: %w", ErrConfig)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	cfg := p.Config
	b := &EvoformerBlock[T]{k: k, cfg: cfg, p: p}
	err := b.build(p)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("alphafold: NewEvoformerBlock: %w", err)
	}
	return b, nil
}

// build creates the block's modules; on error the ones built so far are
// left for Close.
func (b *EvoformerBlock[T]) build(p *EvoformerBlockParams[T]) error {
	k, cfg := b.k, b.cfg
	var err error
	if b.row, err = msaattn.NewRow(k, &msaattn.RowAttention[T]{Config: cfg.rowConfig(), Params: p.MSARowAttention}); err != nil {
		return err
	}
	if cfg.GlobalColumn {
		if b.glob, err = msaattn.NewGlobalColumn(k, &msaattn.GlobalColumnAttention[T]{Config: cfg.globalConfig(), Params: p.MSAColumnGlobalAttention}); err != nil {
			return err
		}
	} else if b.col, err = msaattn.NewColumn(k, &msaattn.ColumnAttention[T]{Config: cfg.columnConfig(), Params: p.MSAColumnAttention}); err != nil {
		return err
	}
	if b.msaTrans, err = NewTransition(k, cfg.msaTransitionConfig(), p.MSATransition); err != nil {
		return err
	}
	if b.opm, err = NewOuterProductMean(k, cfg.outerConfig(), p.OuterProductMean); err != nil {
		return err
	}
	if b.mulOut, err = triangle.NewMul(k, p.TriangleMultiplicationOutgoing); err != nil {
		return err
	}
	if b.mulIn, err = triangle.NewMul(k, p.TriangleMultiplicationIncoming); err != nil {
		return err
	}
	if b.attStart, err = triangle.NewAtt(k, p.TriangleAttentionStartingNode); err != nil {
		return err
	}
	if b.attEnd, err = triangle.NewAtt(k, p.TriangleAttentionEndingNode); err != nil {
		return err
	}
	b.pairTrans, err = NewTransition(k, cfg.pairTransitionConfig(), p.PairTransition)
	return err
}

// Close frees the uploaded parameters of every module; b must not be used
// afterwards.
func (b *EvoformerBlock[T]) Close() {
	if b.row != nil {
		b.row.Close()
	}
	if b.col != nil {
		b.col.Close()
	}
	if b.glob != nil {
		b.glob.Close()
	}
	for _, t := range []*Transition[T]{b.msaTrans, b.pairTrans} {
		if t != nil {
			t.Close()
		}
	}
	if b.opm != nil {
		b.opm.Close()
	}
	for _, m := range []*triangle.Mul[T]{b.mulOut, b.mulIn} {
		if m != nil {
			m.Close()
		}
	}
	for _, a := range []*triangle.Att[T]{b.attStart, b.attEnd} {
		if a != nil {
			a.Close()
		}
	}
	*b = EvoformerBlock[T]{k: b.k, cfg: b.cfg}
}

// compose makes b and this package's modules in it take the composed
// backend path even on CPU tensors (tests).
func (b *EvoformerBlock[T]) compose() {
	b.composed = true
	b.msaTrans.composed, b.pairTrans.composed, b.opm.composed = true, true, true
}

// Forward runs the block for inference (no dropout), updating msa
// [S, N, c_m] and pair [N, N, c_z] in place with the nine residual updates
// in AF2's order (see EvoformerBlockParams.Forward): MSA row attention with
// pair bias, column attention (global column attention in an extra-MSA
// block), MSA transition, outer product mean, the outgoing and incoming
// triangle multiplications, the starting- and ending-node triangle
// attentions and the pair transition. msaMask is [S, N] and pairMask
// [N, N] (1 present, 0 padding).
//
// When every tensor is a CPU tensor, Forward runs
// EvoformerBlockParams.Forward on the slices with rng = nil. Otherwise each
// update is computed on the backend into a scratch tensor and added with
// Add; the two scratch tensors ([S, N, c_m] and [N, N, c_z]) are freed
// before Forward returns. The error wraps num.ErrShape for a length that
// does not match S, N and the configuration, num.ErrNaN on the CPU path (and
// in attention where the backend checks its inputs) for a non-finite input,
// ErrConfig after Close, and the backend's errors; msa and pair may then
// have been partly updated.
func (b *EvoformerBlock[T]) Forward(msa, pair, msaMask, pairMask backend.Tensor[T], s, n int) error {
	if b.p == nil {
		return fmt.Errorf("alphafold: EvoformerBlock.Forward on a closed block: %w", ErrConfig)
	}
	if err := bkCheckBlockInputs(b.cfg, msa, pair, msaMask, pairMask, s, n); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(msa, pair, msaMask, pairMask); ok && !b.composed {
		return b.p.Forward(h[0], h[1], h[2], h[3], s, n, nil, nil)
	}
	sc := backend.NewArena(b.k)
	defer sc.Free()
	mu, zu := sc.Alloc(s*n*b.cfg.MSAChannels), sc.Alloc(n*n*b.cfg.PairChannels)
	if sc.Err() != nil {
		return fmt.Errorf("alphafold: Evoformer block: %w", sc.Err())
	}
	if err := b.forward(msa, pair, msaMask, pairMask, s, n, mu, zu); err != nil {
		return fmt.Errorf("alphafold: Evoformer block: %w", err)
	}
	return nil
}

// forward is the composed path of Forward on checked arguments, with the
// scratch tensors mu [S, N, c_m] and zu [N, N, c_z] for the updates.
func (b *EvoformerBlock[T]) forward(msa, pair, msaMask, pairMask backend.Tensor[T], s, n int, mu, zu backend.Tensor[T]) error {
	return b.forwardTape(msa, pair, msaMask, pairMask, s, n, mu, zu, nil)
}

// EvoformerBlocks is a stack of Evoformer (or extra-MSA) blocks on a
// backend, the backend counterpart of EvoformerStack for inference: it runs
// every block in order with the representations staying on the backend.
// ForwardTape and Backward (evoformer_backend_grad.go) train it on the
// backend (without dropout).
type EvoformerBlocks[T num.Float] struct {
	k      backend.Kernels[T]
	cfg    EvoformerConfig
	st     *EvoformerStack[T]
	blocks []*EvoformerBlock[T]

	// composed makes Forward compose the blocks even when every tensor is
	// a CPU tensor (for tests of that path on the CPU backend).
	composed bool
}

// NewEvoformerBlocks uploads every block of st to k (NewEvoformerBlock).
// st's arrays are referenced by the CPU dispatch path and must not change
// while the stack is in use.
//
// The error wraps ErrConfig for a nil or empty stack, a block whose
// configuration differs from the stack's or an invalid one, num.ErrShape
// for an array whose length does not match, and the backend's error if an
// upload fails.
func NewEvoformerBlocks[T num.Float](k backend.Kernels[T], st *EvoformerStack[T]) (*EvoformerBlocks[T], error) {
	if k == nil || st == nil {
		return nil, fmt.Errorf("alphafold: NewEvoformerBlocks: nil backend or stack: %w", ErrConfig)
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	bs := &EvoformerBlocks[T]{k: k, cfg: st.Config, st: st}
	for i, p := range st.Blocks {
		b, err := NewEvoformerBlock(k, p)
		if err != nil {
			bs.Close()
			return nil, fmt.Errorf("alphafold: NewEvoformerBlocks: block %d: %w", i, err)
		}
		bs.blocks = append(bs.blocks, b)
	}
	return bs, nil
}

// Close frees the uploaded parameters of every block; bs must not be used
// afterwards.
func (bs *EvoformerBlocks[T]) Close() {
	for _, b := range bs.blocks {
		b.Close()
	}
	bs.blocks = nil
	bs.st = nil
}

// compose makes bs and its blocks take the composed path (tests).
func (bs *EvoformerBlocks[T]) compose() {
	bs.composed = true
	for _, b := range bs.blocks {
		b.compose()
	}
}

// Forward runs the blocks in order for inference (no dropout), updating
// msa [S, N, c_m] and pair [N, N, c_z] in place as
// EvoformerStack.Forward does with rng = nil; see EvoformerBlock.Forward for
// the masks and errors. When every tensor is a CPU tensor it runs
// EvoformerStack.Forward on the slices; otherwise the representations stay
// on the backend between blocks, which share two scratch tensors.
func (bs *EvoformerBlocks[T]) Forward(msa, pair, msaMask, pairMask backend.Tensor[T], s, n int) error {
	if bs.st == nil {
		return fmt.Errorf("alphafold: EvoformerBlocks.Forward on a closed stack: %w", ErrConfig)
	}
	if err := bkCheckBlockInputs(bs.cfg, msa, pair, msaMask, pairMask, s, n); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(msa, pair, msaMask, pairMask); ok && !bs.composed {
		return bs.st.Forward(h[0], h[1], h[2], h[3], s, n, nil, nil)
	}
	sc := backend.NewArena(bs.k)
	defer sc.Free()
	mu, zu := sc.Alloc(s*n*bs.cfg.MSAChannels), sc.Alloc(n*n*bs.cfg.PairChannels)
	if sc.Err() != nil {
		return fmt.Errorf("alphafold: Evoformer stack: %w", sc.Err())
	}
	for i, b := range bs.blocks {
		if err := b.forward(msa, pair, msaMask, pairMask, s, n, mu, zu); err != nil {
			return fmt.Errorf("alphafold: Evoformer stack block %d: %w", i, err)
		}
	}
	return nil
}

// bkCheckBlockInputs checks the lengths of a block's backend inputs.
func bkCheckBlockInputs[T num.Float](cfg EvoformerConfig, msa, pair, msaMask, pairMask backend.Tensor[T], s, n int) error {
	const mod = "Evoformer block"
	if s < 1 || n < 1 {
		return fmt.Errorf("alphafold: %s: %d sequences and %d residues, want at least 1 of each: %w", mod, s, n, num.ErrShape)
	}
	cm, cz := cfg.MSAChannels, cfg.PairChannels
	if err := bkCheck(mod, "msa", msa, s*n*cm, fmt.Sprintf("[S N c_m] = [%d %d %d]", s, n, cm)); err != nil {
		return err
	}
	if err := bkCheck(mod, "pair", pair, n*n*cz, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	if err := bkCheck(mod, "msaMask", msaMask, s*n, fmt.Sprintf("[S N] = [%d %d]", s, n)); err != nil {
		return err
	}
	return bkCheck(mod, "pairMask", pairMask, n*n, fmt.Sprintf("[N N] = [%d %d]", n, n))
}

// The helpers below are shared by the backend paths of this package.

// bkCheck reports a missing tensor what, or one whose length is not n,
// with an error wrapping num.ErrShape; shape describes the expected shape.
func bkCheck[T num.Float](module, what string, t backend.Tensor[T], n int, shape string) error {
	if backend.Absent(t) {
		return fmt.Errorf("alphafold: %s %s is missing, want %s = %d elements: %w", module, what, shape, n, num.ErrShape)
	}
	if t.Len() != n {
		return fmt.Errorf("alphafold: %s %s has %d elements, want %s = %d: %w", module, what, t.Len(), shape, n, num.ErrShape)
	}
	return nil
}
