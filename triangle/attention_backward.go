package triangle

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

// AttBackward computes the gradients of a scalar loss L through the triangle
// attention whose AttForward filled cache. dout is ∂L/∂out [N, N, c_z]. It
// accumulates (+=) ∂L/∂z into dz [N, N, c_z] and, when grad is not nil,
// ∂L/∂θ into grad (shaped as p: start from p.ZerosLike()). dz may be nil to
// skip the input gradient. The mask gets no gradient.
//
// Each chunk of rows goes through attn.GatedBackward, which recomputes the
// attention probabilities tile by tile from the saved log-sum-exp (no N³
// tensor). When the forward pass could not keep the per-row projections
// (see AttCache) they are recomputed here, one chunk of rows at a time. The
// gradient of the pair bias [H, N, N] is summed over the rows and then
// carried to feat_2d_weights and to z.
//
// AttBackward returns an error wrapping ErrNoForward if cache holds no
// successful forward pass of p.Config, num.ErrShape for a wrong length and
// num.ErrNaN for a non-finite dout.
func AttBackward[T num.Float](p *AttParams[T], cache *AttCache[T], dout, dz []T, grad *AttParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	c := cache
	if c == nil || !c.valid || c.cfg != p.Config {
		return fmt.Errorf("triangle: AttBackward: %w", ErrNoForward)
	}
	n, cz := c.n, p.Config.PairChannels
	shape := fmt.Sprintf("[N,N,c_z] = [%d %d %d]", n, n, cz)
	if err := num.CheckLen("triangle: dout", dout, n*n*cz, shape); err != nil {
		return err
	}
	if dz != nil {
		if err := num.CheckLen("triangle: dz", dz, n*n*cz, shape); err != nil {
			return err
		}
	}
	if err := num.CheckFinite("triangle: dout", dout); err != nil {
		return err
	}
	g := grad
	if g == nil {
		g = p.ZerosLike()
	} else {
		if g.Config != p.Config {
			return fmt.Errorf("triangle: AttBackward: gradient config %+v, want %+v: %w", g.Config, p.Config, ErrConfig)
		}
		if err := g.check(); err != nil {
			return fmt.Errorf("triangle: AttBackward: gradient: %w", err)
		}
	}
	return attBackward(p, c, dout, dz, g)
}

// attBackward is AttBackward on validated arguments.
func attBackward[T num.Float](p *AttParams[T], c *AttCache[T], dout, dz []T, g *AttParams[T]) error {
	cfg := p.Config
	n, cz, h := c.n, cfg.PairChannels, cfg.Heads
	n2 := n * n
	if n2 == 0 {
		return nil
	}
	lay := cfg.layout(n)
	dx := make([]T, n2*cz)   // ∂L/∂x, x = query_norm(z)
	dbias := make([]T, h*n2) // ∂L/∂bias, in the attention's (head, query, key) order
	var tmp attn.GatedCache[T]
	var out, dcompact []T
	for k, b0 := 0, 0; b0 < n; k, b0 = k+1, b0+c.rows {
		nb := min(c.rows, n-b0)
		xs, ms := c.x[b0*lay.Batch:], c.keyMask[b0*n:(b0+nb)*n]
		if c.kept {
			if err := attn.GatedBackward(&p.Attention, &c.gated[k], dout[b0*lay.Batch:], dx[b0*lay.Batch:], dbias, &g.Attention); err != nil {
				return err
			}
			continue
		}
		// Recompute this chunk's projections into a compact output layout,
		// with dout gathered into the same layout.
		cl := attn.Layout{Batch: n * cz, Row: cz}
		if cfg.Ending {
			cl = attn.Layout{Batch: cz, Row: nb * cz}
		}
		out = grow(out, nb*n*cz)
		dc := dout[b0*lay.Batch:] // the starting node's chunk is already compact
		if cfg.Ending {
			dcompact = grow(dcompact, nb*n*cz)
			for b := range nb {
				for l := range n {
					src := (b0+b)*lay.Batch + l*lay.Row
					copy(dcompact[b*cl.Batch+l*cl.Row:][:cz], dout[src:src+cz])
				}
			}
			dc = dcompact
		}
		if err := attn.GatedForward(&p.Attention, xs, lay, nb, n, c.bias, ms, out, cl, &tmp); err != nil {
			return err
		}
		if err := attn.GatedBackward(&p.Attention, &tmp, dc, dx[b0*lay.Batch:], dbias, &g.Attention); err != nil {
			return err
		}
	}
	if cfg.Ending {
		for k := range h {
			transposeSquare(dbias[k*n2:(k+1)*n2], n)
		}
	}
	// bias [H, N²] = wᵀ·xᵀ: ∂w += xᵀ·∂biasᵀ, ∂x += ∂biasᵀ·wᵀ.
	gemm.Gemm(true, true, cz, h, n2, 1, c.x, cz, dbias, n2, 1, g.FeatTwoDWeights, h)
	gemm.Gemm(true, true, n2, cz, h, 1, dbias, n2, p.FeatTwoDWeights, h, 1, dx, cz)
	p.QueryNorm.Backward(dz, &g.QueryNorm, c.z, c.mean, c.rstd, dx, n2)
	return nil
}
