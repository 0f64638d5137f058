package triangle

import (
	"errors"
	"fmt"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// ErrNoForward is returned by the backward passes when the cache was not
// filled by a successful forward call.
var ErrNoForward = errors.New("cache holds no forward pass")

// MulBackward computes the gradients of a scalar loss L through the triangle
// multiplicative update whose MulForward filled cache. dout is ∂L/∂out
// [N, N, c_z]. It accumulates (+=) ∂L/∂z into dz [N, N, c_z] and, when grad
// is not nil, ∂L/∂θ into grad (shaped as p: start from p.ZerosLike()). dz
// may be nil to skip the input gradient. The mask gets no gradient.
//
// The backward pass recomputes rather than stores: the output gate and the
// output projection are recomputed block by block from the cached
// normalised input and edges, and the projections a and b chunk by chunk of
// hidden channels; the gradients of the contraction are two N×N×N matrix
// products per channel (for outgoing edges dA_c = dU_c·B_c and
// dB_c = dU_cᵀ·A_c). Beside the cache it holds two N×N×c_z-sized arrays
// (∂L/∂x and ∂L/∂u) and six [chunk, N, N] buffers; nothing of size N³.
//
// MulBackward returns an error wrapping ErrNoForward if cache holds no
// successful forward pass of p.Config, num.ErrShape for a wrong length and
// num.ErrNaN for a non-finite dout.
func MulBackward[T num.Float](p *MulParams[T], cache *MulCache[T], dout, dz []T, grad *MulParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	c := cache
	if c == nil || !c.valid || c.cfg != p.Config {
		return fmt.Errorf("triangle: MulBackward: %w", ErrNoForward)
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
			return fmt.Errorf("triangle: MulBackward: gradient config %+v, want %+v: %w", g.Config, p.Config, ErrConfig)
		}
		if err := g.check(); err != nil {
			return fmt.Errorf("triangle: MulBackward: gradient: %w", err)
		}
	}
	mulBackward(p, c, dout, dz, g)
	return nil
}

// mulBackward is MulBackward on validated arguments.
func mulBackward[T num.Float](p *MulParams[T], c *MulCache[T], dout, dz []T, g *MulParams[T]) {
	cfg := p.Config
	cz, ch, n := cfg.PairChannels, cfg.HiddenChannels, c.n
	n2 := n * n
	if n2 == 0 {
		return
	}
	dx := make([]T, n2*cz) // ∂L/∂x, x = layer_norm_input(z)
	du := make([]T, ch*n2) // ∂L/∂u, channel-major

	// Output gate, output projection and centre layer norm, block by block.
	// With the affine map of center_layer_norm folded into the output
	// projection (foldCenter), y = û·W' + b' and out = y ⊙ σ(x·W_g + b_g);
	// the gradients of W_o, b_o, scale and offset follow from ∂L/∂y and
	// M = ûᵀ·∂L/∂y (see below).
	npm := min(blockPairs, n2)
	yb, gb, dtb := make([]T, npm*cz), make([]T, npm*cz), make([]T, ch*npm)
	m, sumDy := make([]T, ch*cz), make([]T, cz)
	wf, bf := foldCenter(p)
	op, gl := &p.OutputProjection, &p.GatingLinear
	gop, ggl := &g.OutputProjection, &g.GatingLinear
	for p0 := 0; p0 < n2; p0 += blockPairs {
		np := min(blockPairs, n2-p0)
		xb, ub := c.x[p0*cz:(p0+np)*cz], c.u[p0:]
		y, gt := yb[:np*cz], gb[:np*cz]
		gemm.Gemm(true, false, np, cz, ch, 1, ub, n2, wf, cz, 0, y, cz)
		gemm.Gemm(false, false, np, cz, cz, 1, xb, cz, gl.W, cz, 0, gt, cz)
		do := dout[p0*cz : (p0+np)*cz]
		// out = (y + b') ⊙ s with s = σ(gt + b_g): y becomes ∂L/∂y and gt
		// ∂L/∂gt.
		parallelFor(np, np*cz, func(_, lo, hi int) {
			for q := lo; q < hi; q++ {
				yr, gr, dr := y[q*cz:(q+1)*cz], gt[q*cz:(q+1)*cz], do[q*cz:(q+1)*cz]
				sigmoidVec(gr, gr, gl.B)
				bo := bf[:len(yr)]
				gr, dr = gr[:len(yr)], dr[:len(yr)]
				for j, yv := range yr {
					s, d := gr[j], dr[j]
					yr[j] = d * s
					gr[j] = d * (yv + bo[j]) * s * (1 - s)
				}
			}
		})
		gemm.Gemm(true, false, cz, cz, np, 1, xb, cz, gt, cz, 1, ggl.W, cz)
		colSum(ggl.B, gt, np, cz)
		gemm.Gemm(false, true, np, cz, cz, 1, gt, cz, gl.W, cz, 1, dx[p0*cz:], cz)
		gemm.Gemm(false, false, ch, cz, np, 1, ub, n2, y, cz, 1, m, cz)
		colSum(sumDy, y, np, cz)
		dt := dtb[:ch*np] // ∂L/∂(û⊙scale + offset) = W_o·∂L/∂yᵀ, channel-major
		gemm.Gemm(false, true, ch, np, cz, 1, op.W, cz, y, cz, 0, dt, np)
		centerNormBackward(du, dt, c.u, n2, p0, np, ch, &p.CenterLayerNorm, &g.CenterLayerNorm, c.urstd[p0:p0+np])
	}
	// With t = û⊙scale + offset: ∂W_o = tᵀ·∂y = diag(scale)·M + offset ⊗ Σ∂y,
	// ∂b_o = Σ∂y.
	for k := range ch {
		s, o := p.CenterLayerNorm.Scale[k], p.CenterLayerNorm.Offset[k]
		dst, mr := gop.W[k*cz:(k+1)*cz], m[k*cz:(k+1)*cz]
		for j, v := range mr {
			dst[j] += s*v + o*sumDy[j]
		}
	}
	addTo(gop.B, sumDy)

	// Projections and contraction, chunk by chunk of hidden channels.
	w := cfg.chunk(n, sizeOf[T]())
	pk := packProjections(p, w)
	gw, gbias := make([]T, cz*4*ch), make([]T, 4*ch)
	a, b := grow(c.a, w*n2), grow(c.b, w*n2)   // gated projections (the forward pass's workspace)
	sa, sb := make([]T, w*n2), make([]T, w*n2) // their gates σ(·)
	da, db := make([]T, w*n2), make([]T, w*n2) // ∂L/∂a, ∂L/∂b
	proj := grow(c.proj, 4*w*npm)
	for c0 := 0; c0 < ch; c0 += w {
		cw := min(w, ch-c0)
		for p0 := 0; p0 < n2; p0 += blockPairs {
			np := min(blockPairs, n2-p0)
			pr := pk.project(c.x, c0, cw, p0, np, proj)
			m := c.mask[p0 : p0+np]
			parallelFor(2*cw, 2*cw*np, func(_, lo, hi int) {
				for r := lo; r < hi; r++ {
					side, k := r/cw, r%cw
					dst, s := a, sa
					if side == 1 {
						dst, s = b, sb
					}
					pp, gg, bp, bg := pk.rows(pr, side, k, c0, cw, np)
					sr, dr := s[k*n2+p0:][:np], dst[k*n2+p0:][:np]
					sigmoidScalar(sr, gg, bg)
					pp, m := pp[:len(sr)], m[:len(sr)]
					for i, v := range sr {
						dr[i] = m[i] * (pp[i] + bp) * v
					}
				}
			})
		}
		uncontract(cfg.Incoming, n, cw, a, b, du[c0*n2:], da, db)
		for p0 := 0; p0 < n2; p0 += blockPairs {
			np := min(blockPairs, n2-p0)
			d := proj[:4*cw*np] // ∂L/∂(projections), in the packed order
			m := c.mask[p0 : p0+np]
			parallelFor(2*cw, 2*cw*np, func(_, lo, hi int) {
				for r := lo; r < hi; r++ {
					side, k := r/cw, r%cw
					av, sv, dv := a, sa, da
					if side == 1 {
						av, sv, dv = b, sb, db
					}
					ar, sr, dr := av[k*n2+p0:][:np], sv[k*n2+p0:][:np], dv[k*n2+p0:][:np]
					ip, ig := 2*side*cw+k, (2*side+1)*cw+k
					dp, dg := d[ip*np:][:np], d[ig*np:][:np]
					// a = m·(p + b_p)·s, s = σ(g + b_g):
					// ∂a/∂p = m·s and ∂a/∂g = a·(1 − s).
					m, ar, sr := m[:len(dr)], ar[:len(dr)], sr[:len(dr)]
					for i, dv := range dr {
						s := sr[i]
						dp[i] = dv * m[i] * s
						dg[i] = dv * ar[i] * (1 - s)
					}
					gbias[4*c0+ip] += sum(dp)
					gbias[4*c0+ig] += sum(dg)
				}
			})
			xb := c.x[p0*cz:]
			gemm.Gemm(true, true, cz, 4*cw, np, 1, xb, cz, d, np, 1, gw[4*c0:], 4*ch)
			gemm.Gemm(true, true, np, cz, 4*cw, 1, d, np, pk.w[4*c0:], 4*ch, 1, dx[p0*cz:], cz)
		}
	}
	unpackAdd(g, w, gw, gbias)
	p.LayerNormInput.Backward(dz, &g.LayerNormInput, c.z, c.mean, c.rstd, dx, n2)
}

// uncontract computes the gradients of contract for cw channels:
// outgoing (U = A·Bᵀ) dA = dU·B and dB = dUᵀ·A; incoming (U = Bᵀ·A)
// dA = B·dU and dB = A·dUᵀ. All are channel-major [cw, N, N]; da and db are
// overwritten.
func uncontract[T num.Float](incoming bool, n, cw int, a, b, du, da, db []T) {
	n2 := n * n
	for k := range cw {
		ak, bk, duk := a[k*n2:(k+1)*n2], b[k*n2:(k+1)*n2], du[k*n2:(k+1)*n2]
		dak, dbk := da[k*n2:(k+1)*n2], db[k*n2:(k+1)*n2]
		if incoming {
			gemm.Gemm(false, false, n, n, n, 1, bk, n, duk, n, 0, dak, n)
			gemm.Gemm(false, true, n, n, n, 1, ak, n, duk, n, 0, dbk, n)
		} else {
			gemm.Gemm(false, false, n, n, n, 1, duk, n, bk, n, 0, dak, n)
			gemm.Gemm(true, false, n, n, n, 1, duk, n, ak, n, 0, dbk, n)
		}
	}
}

// centerNormBackward back-propagates center_layer_norm for the pairs
// [p0, p0+np): dt [ch, np] is ∂L/∂(normalised edges), channel-major, and
// û [ch, n2] the normalised edges before the affine map; it writes ∂L/∂u
// into du [ch, n2] and accumulates the scale and offset gradients into g.
// rstd [np] holds the forward statistics.
func centerNormBackward[T num.Float](du, dt, uhat []T, n2, p0, np, ch int, ln, g *nn.LayerNormParams[T], rstd []T) {
	// Parameter gradients: a sum over the pairs of each channel.
	parallelFor(ch, ch*np, func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			row, d := uhat[c*n2+p0:][:np], dt[c*np:][:np]
			var ss, so T
			for i, xh := range row {
				ss += d[i] * xh
				so += d[i]
			}
			g.Scale[c] += ss
			g.Offset[c] += so
		}
	})
	// Input gradient: per pair, sums over the channels.
	fc := T(ch)
	parallelFor(np, ch*np, func(_, lo, hi int) {
		s1, s2 := make([]T, hi-lo), make([]T, hi-lo)
		r := rstd[lo:hi]
		for c := range ch {
			sc := ln.Scale[c]
			row, d := uhat[c*n2+p0+lo:c*n2+p0+hi], dt[c*np+lo:c*np+hi]
			d = d[:len(row)]
			for i, xh := range row {
				gv := d[i] * sc
				s1[i] += gv
				s2[i] += gv * xh
			}
		}
		for i := range s1 {
			s1[i] /= fc
			s2[i] /= fc
		}
		for c := range ch {
			sc := ln.Scale[c]
			row, d := uhat[c*n2+p0+lo:c*n2+p0+hi], dt[c*np+lo:c*np+hi]
			dst := du[c*n2+p0+lo : c*n2+p0+hi]
			d, dst = d[:len(row)], dst[:len(row)]
			for i, xh := range row {
				dst[i] = r[i] * (d[i]*sc - s1[i] - xh*s2[i])
			}
		}
	})
}
