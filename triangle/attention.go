package triangle

import (
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

// keepBytes bounds the attention projections (queries, keys, values, gates
// and outputs of every row) that AttForward keeps in its cache for
// AttBackward. Above it AttBackward recomputes them chunk by chunk of rows.
const keepBytes = 1 << 30

// AttCache holds what AttBackward needs from one AttForward call. A zero
// AttCache is ready to use; its buffers are reused by later calls with the
// same or smaller sizes. It refers to (does not copy) the z and mask passed
// to AttForward, which must not change until AttBackward has run.
//
// It always holds the normalised input [N, N, c_z] (the one copy of the
// pair tensor the module makes) and the pair bias [H, N, N]. While the
// per-row attention projections of all rows fit in 1 GiB (N ≤ 512 at AF2's
// sizes in float32) it also keeps them, so that AttBackward need not
// recompute the forward pass; nothing of size N³ is ever stored.
type AttCache[T num.Float] struct {
	cfg     AttConfig
	n       int
	z, mask []T
	x       []T // [N², c_z] query_norm(z)
	mean    []T // [N²] statistics of query_norm
	rstd    []T
	bias    []T // [H, N, N] pair bias, indexed (head, query, key) of the attention
	keyMask []T // [N, N] key mask, indexed (batch row, key) of the attention
	maskT   []T // [N, N] storage of the transposed mask (ending node)
	rows    int // pair rows per chunk
	gated   []attn.GatedCache[T]
	kept    bool
	noKeep  bool // never keep the projections (tests of the recomputing path)
	valid   bool
}

// layout returns the attn layout of an [N, N, c_z] pair tensor seen as
// [batch, L, c_z]: rows i as the batch for the starting node, columns j for
// the ending node (the transposed view, with no copy).
func (c AttConfig) layout(n int) attn.Layout {
	cz := c.PairChannels
	if c.Ending {
		return attn.Layout{Batch: cz, Row: n * cz}
	}
	return attn.Layout{Batch: n * cz, Row: cz}
}

// AttForward computes the triangle self-attention of p.Config (supplement
// Algorithm 13 around the starting node, Algorithm 14 around the ending
// node) and writes the update of the pair representation to out
// [N, N, c_z] (AF2 adds the residual outside the module).
//
// z is the pair representation [N, N, c_z] and mask the pair mask [N, N]
// (1 present, 0 padding). Around the starting node, with x = LN(z)
// (query_norm), each row i is one attention over the residues j:
//
//	b_jk^h  = x_jk · feat_2d_weights[:, h]
//	l_ijk^h = q_ij^h·k_ik^h/√c + b_jk^h + 1e9·(mask_ik − 1)
//	out_ij  = gated multi-head attention (internal/attn.GatedForward) of x_i·
//
// Around the ending node the same computation runs on zᵀ and maskᵀ and the
// result is transposed back, as in AF2's code; here the transposition is a
// strided view of x, so the pair tensor is copied once (into x) for either
// node. A row whose mask is all 0 gives finite values (the uniform average
// over its keys), never NaN.
//
// The rows are processed p.Config.ChunkRows at a time, and every attention
// streams over key tiles with an online softmax (internal/attn), so that
// neither an N³ logit tensor nor the projections of all rows are live at
// once.
//
// If cache is not nil it is filled for AttBackward. AttForward returns an
// error wrapping num.ErrShape for a length that does not match n and
// p.Config, num.ErrNaN for a NaN or infinity in z or mask, and ErrConfig
// for an invalid p.Config. out must not overlap z.
func AttForward[T num.Float](p *AttParams[T], z, mask []T, n int, out []T, cache *AttCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	cfg := p.Config
	if err := checkPair(z, mask, n, cfg.PairChannels, out); err != nil {
		return err
	}
	c := cache
	if c == nil {
		c = new(AttCache[T])
	}
	c.valid = false
	c.z, c.mask = z, mask
	c.alloc(cfg, n, cache != nil)
	if n == 0 {
		c.valid = true
		return nil
	}
	if err := c.prepare(p, z, mask); err != nil {
		return err
	}
	lay := cfg.layout(n)
	for k, b0 := 0, 0; b0 < n; k, b0 = k+1, b0+c.rows {
		nb := min(c.rows, n-b0)
		var gc *attn.GatedCache[T]
		if c.kept {
			gc = &c.gated[k]
		}
		if err := attn.GatedForward(&p.Attention, c.x[b0*lay.Batch:], lay, nb, n, c.bias, c.keyMask[b0*n:(b0+nb)*n], out[b0*lay.Batch:], lay, gc); err != nil {
			return err
		}
	}
	c.valid = true
	return nil
}

// alloc sizes c's buffers for n residues and cfg; keep asks for the per-row
// attention caches when they fit in keepBytes.
func (c *AttCache[T]) alloc(cfg AttConfig, n int, keep bool) {
	n2, hc := n*n, cfg.Heads*cfg.HeadChannels
	c.cfg, c.n = cfg, n
	c.x = grow(c.x, n2*cfg.PairChannels)
	c.mean = grow(c.mean, n2)
	c.rstd = grow(c.rstd, n2)
	c.bias = grow(c.bias, cfg.Heads*n2)
	c.rows = cfg.chunk(n, sizeOf[T]())
	c.kept = keep && !c.noKeep && 5*n2*hc*sizeOf[T]() <= keepBytes
	if c.kept {
		nc := (n + c.rows - 1) / max(c.rows, 1)
		if cap(c.gated) >= nc {
			c.gated = c.gated[:nc]
		} else {
			c.gated = make([]attn.GatedCache[T], nc)
		}
	} else {
		c.gated = nil
	}
}

// prepare computes the normalised input, the pair bias and the key mask in
// the attention's order.
func (c *AttCache[T]) prepare(p *AttParams[T], z, mask []T) error {
	cfg := p.Config
	n, cz, h := c.n, cfg.PairChannels, cfg.Heads
	n2 := n * n
	if err := normInput(&p.QueryNorm, c.x, z, n2, cz, c.mean, c.rstd); err != nil {
		return err
	}
	// bias [H, N²] = feat_2d_weightsᵀ · xᵀ: b[h][j·N+k] = x_jk · w[:, h].
	gemm.Gemm(true, true, h, n2, cz, 1, p.FeatTwoDWeights, h, c.x, cz, 0, c.bias, n2)
	if cfg.Ending {
		// The ending node attends over zᵀ: its bias (q, k) is b_kq.
		for k := range h {
			transposeSquare(c.bias[k*n2:(k+1)*n2], n)
		}
		c.maskT = grow(c.maskT, n2)
		for i := range n {
			for j := range n {
				c.maskT[i*n+j] = mask[j*n+i]
			}
		}
		c.keyMask = c.maskT
	} else {
		c.keyMask = mask
	}
	return nil
}

// transposeSquare transposes the n×n matrix a in place.
func transposeSquare[T num.Float](a []T, n int) {
	for i := range n {
		for j := i + 1; j < n; j++ {
			a[i*n+j], a[j*n+i] = a[j*n+i], a[i*n+j]
		}
	}
}
