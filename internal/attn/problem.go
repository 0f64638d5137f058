package attn

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/num"
)

// Default tile sizes of the streamed core. A worker holds one TileQ×TileK
// tile of logits (and, in Backward, one of dP) at a time; 64×128 float32 is
// 32 KiB, which stays in L2 beside the key and value tiles.
const (
	DefaultTileQ = 64
	DefaultTileK = 128
)

// EvoformerMaskBias is the magnitude of the additive mask bias AF2 uses in
// its Evoformer attentions (MSA row, MSA column, triangle attentions):
// masked keys get 1e9·(mask − 1) added to their logits.
const EvoformerMaskBias = 1e9

// Dims are the sizes of one batched attention problem.
type Dims struct {
	Batch, Heads int // independent problems × heads
	Lq, Lk       int // query and key lengths
	C, Cv        int // query/key and value channels per head
	KVHeads      int // Heads, or 1: one key/value head shared by all query heads (0 means Heads)
}

// Flops returns the floating-point operation count of Forward on d, the
// convention of every foldkit attention benchmark: the two products per
// (batch, head), q·kᵀ and p·v, 2·Batch·Heads·Lq·Lk·(C + Cv) (4·B·H·Lq·Lk·C
// when Cv = C). Exponentials, biases and the online rescaling are not counted.
func (d Dims) Flops() float64 {
	return 2 * float64(d.Batch) * float64(d.Heads) * float64(d.Lq) * float64(d.Lk) * float64(d.C+d.Cv)
}

// BackwardFlops returns the operation count of Backward on d with every
// gradient asked for: the five products per (batch, head) — recomputing
// q·kᵀ, then pᵀ·dO, dO·vᵀ, dS·k and dSᵀ·q — 2·Batch·Heads·Lq·Lk·(3C + 2Cv).
func (d Dims) BackwardFlops() float64 {
	return 2 * float64(d.Batch) * float64(d.Heads) * float64(d.Lq) * float64(d.Lk) * float64(3*d.C+2*d.Cv)
}

// kvHeads returns the number of key/value heads, resolving 0 to Heads.
func (d Dims) kvHeads() int {
	if d.KVHeads == 0 {
		return d.Heads
	}
	return d.KVHeads
}

// Layout gives the element strides of a [Batch, L, Heads, C] tensor stored
// in a flat slice, so that callers need no transposes: element (b, l, h, c)
// sits at b*Batch + l*Row + h*C + c (heads contiguous, channel stride 1).
//
// A contiguous [Batch, L, Heads, C] tensor has Layout{Batch: L*Heads*C, Row:
// Heads*C}. MSA column attention, which attends along the sequence axis of
// an [S, N, Heads*C] tensor for every residue, uses Layout{Batch: Heads*C,
// Row: N*Heads*C} with Batch = N residues and L = S sequences.
//
// Row must be at least the width of a row (Heads*C, or C for a single shared
// key/value head) when there is more than one row. A Batch stride of 0
// broadcasts one tensor to every batch element; it is allowed for inputs but
// not for outputs, whose elements must not overlap.
type Layout struct{ Batch, Row int }

// Problem is one batched multi-head attention problem (AF2 supplement,
// Algorithms 7, 8, 13, 14 and their gated attention core):
//
//	logits[b,h,q,k] = Scale·(q·k) + MaskBias·(KeyMask[b,k] − 1) + PairBias[h,q,k]
//	o[b,q,h,:]      = Σ_k softmax_k(logits[b,h,q,:])·v[b,k,h,:]
//
// The three terms are added in that order, which is AF2's (its Attention
// module adds the mask bias, then the "nonbatched" pair bias) and OpenFold's.
// The order matters only for a query whose keys are all masked: its logits
// are about −1e9 + x, where float64 keeps ~1e-7 of x and float32 none, so a
// different order moves such rows by ~1e-7 in float64 (and, through the
// shared pair bias, every pair-bias gradient). In float32 the constant
// swallows the other terms and the row becomes the uniform average of the
// values (finite, never NaN), as AF2's own float32 computation does.
type Problem[T num.Float] struct {
	Dims
	Q  []T // queries, [Batch, Lq, Heads, C] by QL (already scaled by the caller, or use Scale)
	QL Layout
	K  []T // keys, [Batch, Lk, KVHeads, C] by KL
	KL Layout
	V  []T // values, [Batch, Lk, KVHeads, Cv] by VL
	VL Layout

	// Scale multiplies q·k. AF2 puts c^-1/2 on the queries; use Scale = 1
	// when Q is already scaled.
	Scale T

	// PairBias is an optional [Heads, Lq, Lk] logit bias shared by every
	// batch element (AF2's pair bias, "nonbatched_bias"); nil means none.
	PairBias []T

	// KeyMask is an optional [Batch, Lk] mask of 0/1 values; MaskBias·(mask − 1)
	// is added to every logit of that key. nil means every key is present.
	KeyMask []T

	// MaskBias is the size of the mask bias, EvoformerMaskBias (1e9) in AF2.
	MaskBias T

	// TileQ and TileK are the streamed tile sizes (0 = DefaultTileQ,
	// DefaultTileK). They change speed, never results beyond round-off.
	TileQ, TileK int
}

// tiles returns the tile sizes in effect, clamped to the problem.
func (p *Problem[T]) tiles() (tq, tk int) {
	tq, tk = p.TileQ, p.TileK
	if tq == 0 {
		tq = DefaultTileQ
	}
	if tk == 0 {
		tk = DefaultTileK
	}
	tq = min(tq, max(p.Lq, 1))
	tk = min(tk, max(p.Lk, 1))
	return tq, tk
}

// check validates the dimensions, the input slices against their layouts and
// their values (finite).
func (p *Problem[T]) check() error {
	d := p.Dims
	switch {
	case d.Batch < 0 || d.Lq < 0:
		return fmt.Errorf("attn: Batch=%d, Lq=%d must not be negative: %w", d.Batch, d.Lq, num.ErrShape)
	case d.Heads < 1 || d.Lk < 1 || d.C < 1 || d.Cv < 1:
		return fmt.Errorf("attn: Heads=%d, Lk=%d, C=%d, Cv=%d must be positive: %w", d.Heads, d.Lk, d.C, d.Cv, num.ErrShape)
	case d.KVHeads != 0 && d.KVHeads != 1 && d.KVHeads != d.Heads:
		return fmt.Errorf("attn: KVHeads=%d, want 1 or Heads=%d: %w", d.KVHeads, d.Heads, num.ErrShape)
	case p.TileQ < 0 || p.TileK < 0:
		return fmt.Errorf("attn: tile sizes TileQ=%d, TileK=%d must not be negative: %w", p.TileQ, p.TileK, num.ErrShape)
	}
	kvh := d.kvHeads()
	if err := checkTensor("Q", p.Q, p.QL, d.Batch, d.Lq, d.Heads*d.C); err != nil {
		return err
	}
	if err := checkTensor("K", p.K, p.KL, d.Batch, d.Lk, kvh*d.C); err != nil {
		return err
	}
	if err := checkTensor("V", p.V, p.VL, d.Batch, d.Lk, kvh*d.Cv); err != nil {
		return err
	}
	if p.PairBias != nil {
		if err := num.CheckLen("attn: PairBias", p.PairBias, d.Heads*d.Lq*d.Lk, fmt.Sprintf("[Heads,Lq,Lk] = [%d %d %d]", d.Heads, d.Lq, d.Lk)); err != nil {
			return err
		}
		if err := num.CheckFinite("attn: PairBias", p.PairBias); err != nil {
			return err
		}
	}
	if p.KeyMask != nil {
		if err := num.CheckLen("attn: KeyMask", p.KeyMask, d.Batch*d.Lk, fmt.Sprintf("[Batch,Lk] = [%d %d]", d.Batch, d.Lk)); err != nil {
			return err
		}
		if err := num.CheckFinite("attn: KeyMask", p.KeyMask); err != nil {
			return err
		}
	}
	if err := num.CheckFinite("attn: Scale", []T{p.Scale, p.MaskBias}); err != nil {
		return fmt.Errorf("attn: Scale=%v and MaskBias=%v must be finite: %w", p.Scale, p.MaskBias, num.ErrNaN)
	}
	return nil
}

// span returns one more than the largest index a [batch, rows, width]
// tensor with layout l addresses, or 0 if it addresses nothing.
func span(l Layout, batch, rows, width int) int {
	if batch == 0 || rows == 0 || width == 0 {
		return 0
	}
	return (batch-1)*l.Batch + (rows-1)*l.Row + width
}

// checkLayout checks that l is a valid layout for a [batch, rows, width]
// tensor held in a slice of n elements.
func checkLayout(what string, n int, l Layout, batch, rows, width int) error {
	if l.Batch < 0 || l.Row < 0 {
		return fmt.Errorf("attn: %s layout %+v has a negative stride: %w", what, l, num.ErrShape)
	}
	if rows > 1 && l.Row < width {
		return fmt.Errorf("attn: %s layout row stride %d is less than the row width %d: %w", what, l.Row, width, num.ErrShape)
	}
	if need := span(l, batch, rows, width); n < need {
		return fmt.Errorf("attn: %s has %d elements, layout %+v of [%d %d %d] needs %d: %w", what, n, l, batch, rows, width, need, num.ErrShape)
	}
	return nil
}

// checkTensor checks an input tensor's layout and that every element it
// addresses is finite. Only addressed elements are read, so a caller may pass
// a strided view of a larger buffer.
func checkTensor[T num.Float](what string, x []T, l Layout, batch, rows, width int) error {
	if err := checkLayout(what, len(x), l, batch, rows, width); err != nil {
		return err
	}
	for b := 0; b < batch; b++ {
		for r := 0; r < rows; r++ {
			off := b*l.Batch + r*l.Row
			if err := num.CheckFinite(what, x[off:off+width]); err != nil {
				return fmt.Errorf("attn: %s element (batch %d, row %d) is not finite: %w", what, b, r, num.ErrNaN)
			}
		}
	}
	return nil
}

// checkOutput checks an output tensor's layout, and that no two of its
// elements share storage, so that parallel writes cannot collide. The test
// accepts the two layouts in use (batches stacked one after the other, or
// interleaved inside each row) and rejects other, exotic ones.
func checkOutput[T num.Float](what string, x []T, l Layout, batch, rows, width int) error {
	if err := checkLayout(what, len(x), l, batch, rows, width); err != nil {
		return err
	}
	if batch <= 1 || rows == 0 || width == 0 {
		return nil
	}
	stacked := l.Batch >= (rows-1)*l.Row+width
	interleaved := l.Batch >= width && (rows == 1 || l.Row >= (batch-1)*l.Batch+width)
	if !stacked && !interleaved {
		return fmt.Errorf("attn: %s layout %+v of [%d %d %d] makes elements overlap: %w", what, l, batch, rows, width, num.ErrShape)
	}
	return nil
}

// ld returns a leading dimension for gemm: the layout's row stride, or the
// row width when there is a single row (whose stride is never used).
func ld(row, width int) int {
	if row < width {
		return width
	}
	return row
}
