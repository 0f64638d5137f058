package triangle

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// blockPairs is the number of pairs (i, j) whose projections are computed
// together: the products stay large enough for the BLAS to run at full
// speed while the block buffers ([4·chunk, blockPairs] at most) stay a few
// MiB.
const blockPairs = 2048

// MulCache holds what MulBackward needs from one MulForward call. A zero
// MulCache is ready to use; its buffers are reused by later calls with the
// same or smaller sizes. It refers to (does not copy) the z and mask passed
// to MulForward, which must not change until MulBackward has run.
//
// Its size is two N×N×c_z-sized arrays (the normalised input and the
// normalised contracted edges, 512 MiB each at N = 1024, c_z = c = 128 in
// float32) and the forward pass's workspace (two [chunk, N, N] buffers,
// 128 MiB each at most, and a few MiB of blocks), which later calls reuse;
// nothing of size N³ is ever stored.
type MulCache[T num.Float] struct {
	cfg     MulConfig
	n       int
	z, mask []T
	x       []T // [N², c_z] layer_norm_input(z)
	mean    []T // [N²] statistics of layer_norm_input
	rstd    []T
	u       []T // [c, N²] contracted edges, channel-major, normalised in place: û = (u − μ)·rstd
	urstd   []T // [N²] rstd = 1/√(σ² + eps) of center_layer_norm
	valid   bool

	// Workspace reused by later calls: the gated projections a and b of one
	// chunk ([chunk, N²] each) and the block of projections.
	a, b, proj []T
}

// alloc sizes c's buffers for n residues and cfg.
func (c *MulCache[T]) alloc(cfg MulConfig, n int) {
	n2 := n * n
	c.cfg, c.n = cfg, n
	c.x = grow(c.x, n2*cfg.PairChannels)
	c.mean = grow(c.mean, n2)
	c.rstd = grow(c.rstd, n2)
	c.u = grow(c.u, n2*cfg.HiddenChannels)
	c.urstd = grow(c.urstd, n2)
}

// MulForward computes the triangle multiplicative update of p.Config
// (supplement Algorithm 11 for outgoing edges, Algorithm 12 for incoming
// edges) and writes the update of the pair representation to out
// [N, N, c_z] (AF2 adds the residual outside the module).
//
// z is the pair representation [N, N, c_z] and mask the pair mask [N, N]
// (1 present, 0 padding). With x = LN(z) (layer_norm_input),
//
//	a_ij = mask_ij · (x_ij·W_lp + b_lp) ⊙ σ(x_ij·W_lg + b_lg)   (left_projection, left_gate)
//	b_ij = mask_ij · (x_ij·W_rp + b_rp) ⊙ σ(x_ij·W_rg + b_rg)   (right_projection, right_gate)
//	u_ij = Σ_k a_ik ⊙ b_jk   (outgoing)    u_ij = Σ_k a_kj ⊙ b_ki   (incoming)
//	out_ij = (LN_c(u_ij)·W_o + b_o) ⊙ σ(x_ij·W_g + b_g)   (center_layer_norm, output_projection, gating_linear)
//
// as AF2's code computes it (AF2's names: for the incoming update its a is
// the supplement's b and vice versa). The output is not masked.
//
// The contraction runs as one N×N×N matrix product per hidden channel
// through internal/gemm, on projections laid out channel-major
// ([c, N, N]); the channels are taken p.Config.ChunkChannels at a time, so
// that only two [chunk, N, N] projection buffers are live beside the cache.
// The other products (the four projections together, the output projection
// with center_layer_norm's scale and offset folded in, the output gate) run
// block by block of pairs, each block's gates and normalisation fused in
// elementwise kernels while it is in cache.
//
// If cache is not nil it is filled for MulBackward. MulForward returns an
// error wrapping num.ErrShape for a length that does not match n and
// p.Config, num.ErrNaN for a NaN or infinity in z or mask, and ErrConfig
// for an invalid p.Config; out is then left unchanged. out must not
// overlap z.
func MulForward[T num.Float](p *MulParams[T], z, mask []T, n int, out []T, cache *MulCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	cfg := p.Config
	if err := checkPair(z, mask, n, cfg.PairChannels, out); err != nil {
		return err
	}
	c := cache
	if c == nil {
		c = new(MulCache[T])
	}
	c.valid = false
	c.alloc(cfg, n)
	c.z, c.mask = z, mask
	if err := mulForward(p, z, mask, n, out, c); err != nil {
		return err
	}
	c.valid = true
	return nil
}

// checkPair validates the shapes of a pair input z [n, n, cz], its mask
// [n, n] and the output [n, n, cz], and that the mask is finite.
func checkPair[T num.Float](z, mask []T, n, cz int, out []T) error {
	if n < 0 {
		return fmt.Errorf("triangle: N = %d, want ≥ 0: %w", n, num.ErrShape)
	}
	if err := num.CheckLen("triangle: z", z, n*n*cz, fmt.Sprintf("[N,N,c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	if err := num.CheckLen("triangle: mask", mask, n*n, fmt.Sprintf("[N,N] = [%d %d]", n, n)); err != nil {
		return err
	}
	if err := num.CheckLen("triangle: out", out, n*n*cz, fmt.Sprintf("[N,N,c_z] = [%d %d %d]", n, n, cz)); err != nil {
		return err
	}
	if err := num.CheckFinite("triangle: mask", mask); err != nil {
		return err
	}
	return nil
}

// normInput computes x = LN(z) for the rows rows of z [rows, c] with the
// statistics in mean and rstd, and returns an error wrapping num.ErrNaN if z
// holds a NaN or an infinity. The check reads the statistics, not z: a
// non-finite element makes its row's mean or variance non-finite.
//
// float32 rows whose width is a multiple of 8 go through the AVX2 row kernel
// of gate_amd64.s (the same two-pass statistics as nn.LayerNorm, summed in
// eight lanes), others through nn.LayerNorm.
func normInput[T num.Float](ln *nn.LayerNormParams[T], x, z []T, rows, c int, mean, rstd []T) error {
	if !num.Is32[T]() || !vecLayerNorm32(num.As32(x), num.As32(z), rows, c, num.As32(ln.Scale), num.As32(ln.Offset), nn.LayerNormEps, num.As32(mean), num.As32(rstd)) {
		ln.Forward(x, z, rows, mean, rstd)
	}
	for r := range rows {
		m, s := float64(mean[r]), float64(rstd[r])
		if math.IsNaN(m) || math.IsInf(m, 0) || math.IsNaN(s) || math.IsInf(s, 0) || s == 0 {
			if err := num.CheckFinite("z", z[r*c:(r+1)*c]); err != nil {
				return fmt.Errorf("triangle: z row %d (pair %d, %d): %w", r, r/isqrt(rows), r%isqrt(rows), err)
			}
		}
	}
	return nil
}

// isqrt returns ⌊√n⌋ for the pair counts n = N² used here.
func isqrt(n int) int {
	r := int(math.Sqrt(float64(n)))
	for r*r > n {
		r--
	}
	for (r+1)*(r+1) <= n {
		r++
	}
	return max(r, 1)
}

// mulForward is MulForward on validated inputs.
func mulForward[T num.Float](p *MulParams[T], z, mask []T, n int, out []T, c *MulCache[T]) error {
	cfg := p.Config
	cz, ch := cfg.PairChannels, cfg.HiddenChannels
	n2 := n * n
	if n2 == 0 {
		return nil
	}
	if err := normInput(&p.LayerNormInput, c.x, z, n2, cz, c.mean, c.rstd); err != nil {
		return err
	}

	// Projections and contraction, chunk by chunk of hidden channels.
	w := cfg.chunk(n, sizeOf[T]())
	pk := packProjections(p, w)
	npm := min(blockPairs, n2)
	c.a, c.b, c.proj = grow(c.a, w*n2), grow(c.b, w*n2), grow(c.proj, 4*w*npm)
	a, b, proj := c.a, c.b, c.proj
	for c0 := 0; c0 < ch; c0 += w {
		cw := min(w, ch-c0)
		for p0 := 0; p0 < n2; p0 += blockPairs {
			np := min(blockPairs, n2-p0)
			pr := pk.project(c.x, c0, cw, p0, np, proj)
			m := mask[p0 : p0+np]
			parallelFor(2*cw, 2*cw*np, func(_, lo, hi int) {
				for r := lo; r < hi; r++ {
					side, k := r/cw, r%cw
					dst := a
					if side == 1 {
						dst = b
					}
					pp, gg, bp, bg := pk.rows(pr, side, k, c0, cw, np)
					gateMask(dst[k*n2+p0:][:np], pp, gg, m, bp, bg)
				}
			})
		}
		contract(cfg.Incoming, n, cw, a, b, c.u[c0*n2:])
	}

	// Centre layer norm, output projection and output gate, block by block
	// of pairs, so that each block stays in cache from one step to the next.
	// The edges are normalised in place (for the backward pass too), and
	// the affine map of center_layer_norm is folded into the output
	// projection: out = û·(diag(scale)·W_o) + (offset·W_o + b_o).
	wo, bo := foldCenter(p)
	gl := &p.GatingLinear
	g := make([]T, npm*cz)
	for p0 := 0; p0 < n2; p0 += blockPairs {
		np := min(blockPairs, n2-p0)
		centerNorm(c.u, n2, p0, np, ch, c.urstd[p0:p0+np])
		o := out[p0*cz : (p0+np)*cz]
		gemm.Gemm(true, false, np, cz, ch, 1, c.u[p0:], n2, wo, cz, 0, o, cz)
		gemm.Gemm(false, false, np, cz, cz, 1, c.x[p0*cz:], cz, gl.W, cz, 0, g, cz)
		parallelFor(np, np*cz, func(_, lo, hi int) {
			for q := lo; q < hi; q++ {
				row := o[q*cz : (q+1)*cz]
				gateVec(row, row, g[q*cz:(q+1)*cz], bo, gl.B)
			}
		})
	}
	return nil
}

// foldCenter returns the output projection with center_layer_norm's affine
// map folded in: W' = diag(scale)·W_o [c, c_z] and b' = offset·W_o + b_o
// [c_z], so that (û⊙scale + offset)·W_o + b_o = û·W' + b'.
func foldCenter[T num.Float](p *MulParams[T]) (w, b []T) {
	ch, cz := p.Config.HiddenChannels, p.Config.PairChannels
	ln, op := &p.CenterLayerNorm, &p.OutputProjection
	w, b = make([]T, ch*cz), make([]T, cz)
	copy(b, op.B)
	for c := range ch {
		row, dst := op.W[c*cz:(c+1)*cz], w[c*cz:(c+1)*cz]
		s, o := ln.Scale[c], ln.Offset[c]
		for j, v := range row {
			dst[j] = s * v
			b[j] += o * v
		}
	}
	return w, b
}

// contract computes the edge products of cw hidden channels, one N×N×N
// matrix product per channel: U_c = A_c·B_cᵀ (outgoing, u_ij = Σ_k a_ik b_jk)
// or U_c = B_cᵀ·A_c (incoming, u_ij = Σ_k a_kj b_ki), with a, b and u
// channel-major [cw, N, N].
func contract[T num.Float](incoming bool, n, cw int, a, b, u []T) {
	n2 := n * n
	for k := range cw {
		ak, bk, uk := a[k*n2:(k+1)*n2], b[k*n2:(k+1)*n2], u[k*n2:(k+1)*n2]
		if incoming {
			gemm.Gemm(true, false, n, n, n, 1, bk, n, ak, n, 0, uk, n)
		} else {
			gemm.Gemm(false, true, n, n, n, 1, ak, n, bk, n, 0, uk, n)
		}
	}
}

// packed holds the four projections of a triangle update side by side,
// arranged chunk by chunk so that one matrix product computes all four for
// a chunk of hidden channels: the chunk of channels [c0, c0+cw) occupies
// columns [4·c0, 4·c0+4·cw) of w ([c_z, 4c]), in the order left_projection,
// left_gate, right_projection, right_gate (cw columns each).
type packed[T num.Float] struct {
	w, b   []T // [c_z, 4c] and [4c]
	cz, ch int
}

// packProjections packs p's four projections for chunks of width chunk.
func packProjections[T num.Float](p *MulParams[T], chunk int) packed[T] {
	cz, ch := p.Config.PairChannels, p.Config.HiddenChannels
	pk := packed[T]{w: make([]T, cz*4*ch), b: make([]T, 4*ch), cz: cz, ch: ch}
	src := [4]*nn.LinearParams[T]{&p.LeftProjection, &p.LeftGate, &p.RightProjection, &p.RightGate}
	for c0 := 0; c0 < ch; c0 += chunk {
		cw := min(chunk, ch-c0)
		for g, l := range src {
			col := 4*c0 + g*cw
			for r := range cz {
				copy(pk.w[r*4*ch+col:][:cw], l.W[r*ch+c0:][:cw])
			}
			copy(pk.b[col:][:cw], l.B[c0:][:cw])
		}
	}
	return pk
}

// unpackAdd adds a gradient laid out as packed (gw [c_z, 4c], gb [4c]) to
// the four projections of g.
func unpackAdd[T num.Float](g *MulParams[T], chunk int, gw, gb []T) {
	cz, ch := g.Config.PairChannels, g.Config.HiddenChannels
	dst := [4]*nn.LinearParams[T]{&g.LeftProjection, &g.LeftGate, &g.RightProjection, &g.RightGate}
	for c0 := 0; c0 < ch; c0 += chunk {
		cw := min(chunk, ch-c0)
		for k, l := range dst {
			col := 4*c0 + k*cw
			for r := range cz {
				addTo(l.W[r*ch+c0:][:cw], gw[r*4*ch+col:][:cw])
			}
			addTo(l.B[c0:][:cw], gb[col:][:cw])
		}
	}
}

// addTo adds x to dst elementwise; len(x) ≥ len(dst).
func addTo[T num.Float](dst, x []T) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += v
	}
}

// project computes the four projections (without biases) of the chunk of
// channels [c0, c0+cw) for the pairs [p0, p0+np), channel-major: the result
// [4·cw, np] (rows in the packed order) is written to the front of buf.
func (pk *packed[T]) project(x []T, c0, cw, p0, np int, buf []T) []T {
	pr := buf[:4*cw*np]
	gemm.Gemm(true, true, 4*cw, np, pk.cz, 1, pk.w[4*c0:], 4*pk.ch, x[p0*pk.cz:], pk.cz, 0, pr, np)
	return pr
}

// rows returns, for side 0 (left) or 1 (right) and channel c0+k, the
// projection and gate rows of pr (as made by project) and their biases.
func (pk *packed[T]) rows(pr []T, side, k, c0, cw, np int) (proj, gate []T, bp, bg T) {
	ip, ig := 2*side*cw+k, (2*side+1)*cw+k
	return pr[ip*np:][:np], pr[ig*np:][:np], pk.b[4*c0+ip], pk.b[4*c0+ig]
}

// centerNorm normalises the pairs [p0, p0+np) of the channel-major edges
// u [ch, n2] in place over their channels, û = (u − μ)/√(σ² + eps)
// (center_layer_norm without its affine map), and stores 1/√(σ² + eps) in
// rstd [np]. Each goroutine takes a range of pairs and walks the channels in
// order, so every access is a contiguous run.
//
// The statistics take two passes: the mean, then the shifted sums
// s1 = Σ(u_c − μ) and s2 = Σ(u_c − μ)², from which σ² = s2/c − (s1/c)²
// and the mean is corrected by s1/c (the corrected two-pass algorithm,
// exact to a few ulp).
func centerNorm[T num.Float](u []T, n2, p0, np, ch int, rstd []T) {
	fc := T(ch)
	parallelFor(np, ch*np, func(_, wlo, whi int) {
		m, s1 := make([]T, centerSlab), make([]T, centerSlab)
		for lo := wlo; lo < whi; lo += centerSlab {
			hi := min(lo+centerSlab, whi)
			m, s1, r := m[:hi-lo], s1[:hi-lo], rstd[lo:hi]
			a, b := p0+lo, p0+hi
			clear(m)
			for c := range ch {
				add(m, u[c*n2+a:c*n2+b])
			}
			for i := range m {
				m[i] /= fc
			}
			clear(s1)
			clear(r)
			for c := range ch {
				moments(s1, r, u[c*n2+a:c*n2+b], m)
			}
			r = r[:len(m)]
			for i, v := range s1 {
				d := v / fc
				m[i] += d
				r[i] = 1 / num.Sqrt(max(r[i]/fc-d*d, 0)+nn.LayerNormEps)
			}
			for c := range ch {
				row := u[c*n2+a : c*n2+b]
				normAffine(row, row, m, r, 1, 0)
			}
		}
	})
}

// centerSlab is the number of pairs centerNorm treats at a time: the
// [c, centerSlab] slab of edges it walks three times (256 KiB in float32 at
// c = 128) stays in the core's L2 cache.
const centerSlab = 512
