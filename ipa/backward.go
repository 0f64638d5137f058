package ipa

import (
	"fmt"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// Backward computes the gradients of invariant point attention (Algorithm 22)
// for the Forward call that filled c, given dout = ∂L/∂out [N, c_s]. It
// accumulates (+=)
//
//   - ds [N, c_s], the gradient with respect to s;
//   - dz [N, N, c_z], with respect to z;
//   - dframes [N]: Rot holds ∂L/∂Rot with the nine entries taken as
//     independent (no projection onto rotations), Trans ∂L/∂Trans;
//   - g, with respect to every parameter, in p's layouts (start from
//     p.ZerosLike()); g.TrainablePointWeights is with respect to the raw
//     values, before the softplus.
//
// Any of ds, dz, dframes and g may be nil and is then skipped. The mask gets
// no gradient. p must be the parameters of the Forward call, and its s and z
// must be unchanged. The error wraps num.ErrShape for a length that does not
// match, num.ErrNaN for a non-finite dout, and ErrConfig if c holds no
// forward pass or g's Config differs from p's.
func Backward[T num.Float](p *Params[T], c *Cache[T], dout, ds, dz []T, dframes []rigid.Rigid[T], g *Params[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if c == nil || !c.hasForward {
		return fmt.Errorf("ipa: Backward without a Forward pass in the cache: %w", ErrConfig)
	}
	cfg := p.Config
	n := c.n
	if len(c.feat) != n*cfg.outputWidth() || len(c.omega) != cfg.Heads {
		return fmt.Errorf("ipa: cache was filled for another configuration: %w", ErrConfig)
	}
	shp := fmt.Sprintf("[N c_s] = [%d %d]", n, cfg.CS)
	if err := num.CheckLen("dout", dout, n*cfg.CS, shp); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	if err := num.CheckFinite("dout", dout); err != nil {
		return fmt.Errorf("ipa: %w", err)
	}
	if ds != nil {
		if err := num.CheckLen("ds", ds, n*cfg.CS, shp); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
	}
	if dz != nil {
		if err := num.CheckLen("dz", dz, n*n*cfg.CZ, fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cfg.CZ)); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
	}
	if dframes != nil {
		if err := num.CheckLen("dframes", dframes, n, fmt.Sprintf("[N] = [%d]", n)); err != nil {
			return fmt.Errorf("ipa: %w", err)
		}
	}
	if g != nil {
		if g.Config != cfg {
			return fmt.Errorf("ipa: gradient Params have config %+v, want %+v: %w", g.Config, cfg, ErrConfig)
		}
		if err := g.check(); err != nil {
			return err
		}
	}
	backward(p, c, dout, ds, dz, dframes, g)
	return nil
}

// backward is Backward on validated arguments.
func backward[T num.Float](p *Params[T], c *Cache[T], dout, ds, dz []T, dframes []rigid.Rigid[T], g *Params[T]) {
	cfg := p.Config
	n := c.n
	h, ch, pq, pv, cz := cfg.Heads, cfg.Channels, cfg.QueryPoints, cfg.ValuePoints, cfg.CZ
	d, cv, fw := ch+3*pq, ch+3*pv, cfg.outputWidth()
	hc, hpv := h*ch, h*pv
	off := hc + 4*hpv
	// Gradients of the linear layers, nil when g is nil.
	var gQS, gKVS, gQP, gKVP, gOut *nn.LinearParams[T]
	if g != nil {
		gQS, gKVS, gQP, gKVP, gOut = &g.QScalar, &g.KVScalar, &g.QPointLocal, &g.KVPointLocal, &g.OutputProjection
	}
	// Frame gradients are accumulated here and added to dframes at the end.
	dR := make([][9]T, n)
	dT := make([][3]T, n)

	// Output projection (line 12).
	dfeat := make([]T, n*fw)
	p.OutputProjection.Backward(dfeat, gOut, c.feat, dout, n)

	// Back through the output features to dO [N, H, Cv] (points in global
	// coordinates relative to the center).
	dO := make([]T, n*h*cv)
	for i := range n {
		f := &c.frames[i]
		t := sub3(f.Trans, c.center)
		fr := c.feat[i*fw : (i+1)*fw]
		df := dfeat[i*fw : (i+1)*fw]
		for hh := range h {
			o := c.o[(i*h+hh)*cv : (i*h+hh+1)*cv]
			do := dO[(i*h+hh)*cv : (i*h+hh+1)*cv]
			copy(do[:ch], df[hh*ch:(hh+1)*ch])
			for pp := range pv {
				k := hh*pv + pp
				l := [3]T{fr[hc+k], fr[hc+hpv+k], fr[hc+2*hpv+k]}
				dl := [3]T{df[hc+k], df[hc+hpv+k], df[hc+2*hpv+k]}
				// The norm's gradient is l/|l|; at |l| = 0 (only with Eps = 0)
				// take the subgradient 0.
				if dn, nrm := df[hc+3*hpv+k], fr[hc+3*hpv+k]; dn != 0 && nrm != 0 {
					s := dn / nrm
					for e := range 3 {
						dl[e] += s * l[e]
					}
				}
				// l = Rᵀ(o − t): do = R·dl, dR[a][b] += (o − t)[a]·dl[b], dt −= do.
				rel := [3]T{o[ch+3*pp] - t[0], o[ch+3*pp+1] - t[1], o[ch+3*pp+2] - t[2]}
				r := &f.Rot
				for a := range 3 {
					u := r[3*a]*dl[0] + r[3*a+1]*dl[1] + r[3*a+2]*dl[2]
					do[ch+3*pp+a] = u
					dT[i][a] -= u
					for b := range 3 {
						dR[i][3*a+b] += rel[a] * dl[b]
					}
				}
			}
		}
	}

	// Attention weights: da = dO·vᵀ + dpair·zᵀ; dv = aᵀ·dO; dz += aᵀ·dpair.
	a := c.a
	da := make([]T, n*h*n)
	dv := make([]T, n*h*cv)
	for hh := range h {
		gemm.Gemm(false, true, n, n, cv, 1, dO[hh*cv:], h*cv, c.v[hh*cv:], h*cv, 0, da[hh*n:], h*n)
		gemm.Gemm(true, false, n, cv, n, 1, a[hh*n:], h*n, dO[hh*cv:], h*cv, 0, dv[hh*cv:], h*cv)
	}
	// Row by row (in parallel, reading each z_i once): the pair output's
	// term of da; the softmax backward in place, dl = a ⊙ (da − Σ_j a·da);
	// the row sums of dl; and the pair bias's gradients dWᵀ += w_L·dl_i·z_i,
	// dB += w_L·Σ_j dl_i and dz_i += a_iᵀ·dpair_i + w_L·dl_iᵀ·Wᵀ, the last two
	// as one product [a_i; dl_i]ᵀ·[dpair_i; w_L·Wᵀ] ([N, 2H]·[2H, c_z]).
	wl := T(pairWeight())
	w2t := transpose(p.Attention2D.W, cz, h) // [H, c_z]
	for k := range w2t {
		w2t[k] *= wl
	}
	dl := da
	rs := make([]T, n*h)
	nw := workers(n, 4*h*n*cz)
	var dw2t, db2 []T // per worker [H, c_z] and [H]
	if g != nil {
		dw2t = make([]T, nw*h*cz)
		db2 = make([]T, nw*h)
	}
	forRows(n, nw, func(w, lo, hi int) {
		var stackA, stackB []T
		if dz != nil {
			stackA = make([]T, 2*h*n)
			stackB = make([]T, 2*h*cz)
			copy(stackB[h*cz:], w2t)
		}
		for i := lo; i < hi; i++ {
			ai := a[i*h*n : (i+1)*h*n]
			dli := dl[i*h*n : (i+1)*h*n]
			zi := c.z[i*n*cz : (i+1)*n*cz]
			dpair := dfeat[i*fw+off : i*fw+off+h*cz]
			gemm.Gemm(false, true, h, n, cz, 1, dpair, cz, zi, cz, 1, dli, n)
			for hh := range h {
				ar := ai[hh*n : (hh+1)*n]
				dr := dli[hh*n : (hh+1)*n]
				dr = dr[:len(ar)]
				var s T
				for j, v := range ar {
					s += v * dr[j]
				}
				var sum T
				for j, v := range ar {
					x := v * (dr[j] - s)
					dr[j] = x
					sum += x
				}
				rs[i*h+hh] = sum
				if g != nil {
					db2[w*h+hh] += wl * sum
				}
			}
			if g != nil {
				gemm.Gemm(false, false, h, cz, n, wl, dli, n, zi, cz, 1, dw2t[w*h*cz:], cz)
			}
			if dz != nil {
				copy(stackA, ai)
				copy(stackA[h*n:], dli)
				copy(stackB, dpair)
				gemm.Gemm(true, false, n, cz, 2*h, 1, stackA, n, stackB, cz, 1, dz[i*n*cz:], cz)
			}
		}
	})
	if g != nil {
		for w := range nw {
			for hh := range h {
				g.Attention2D.B[hh] += db2[w*h+hh]
				for k := range cz {
					g.Attention2D.W[k*h+hh] += dw2t[(w*h+hh)*cz+k]
				}
			}
		}
	}
	// Column sums of dl per head, [H, N], for the |k|² terms.
	cs := make([]T, h*n)
	for i := range n {
		for hh := range h {
			c := cs[hh*n : (hh+1)*n]
			for j, v := range dl[(i*h+hh)*n : (i*h+hh+1)*n] {
				c[j] += v
			}
		}
	}

	// Scalar and point products: dQ̃ = dl·K̃, dK̃ = dlᵀ·Q̃ per head.
	dqt := make([]T, n*h*d)
	dkt := make([]T, n*h*d)
	for hh := range h {
		gemm.Gemm(false, false, n, d, n, 1, dl[hh*n:], h*n, c.kt[hh*d:], h*d, 0, dqt[hh*d:], h*d)
		gemm.Gemm(true, false, n, d, n, 1, dl[hh*n:], h*n, c.qt[hh*d:], h*d, 0, dkt[hh*d:], h*d)
	}

	// Back to the projections' outputs and the frames.
	sw := T(cfg.scalarWeight())
	kvp := pq + pv
	dqs := make([]T, n*h*ch)
	dkvs := make([]T, n*2*h*ch)
	dqpl := make([]T, n*3*h*pq)
	dkvpl := make([]T, n*3*h*kvp)
	domega := make([]T, h)
	for i := range n {
		f := &c.frames[i]
		r := &f.Rot
		for hh := range h {
			om := c.omega[hh]
			dq := dqt[(i*h+hh)*d : (i*h+hh+1)*d]
			dk := dkt[(i*h+hh)*d : (i*h+hh+1)*d]
			dvv := dv[(i*h+hh)*cv : (i*h+hh+1)*cv]
			kt := c.kt[(i*h+hh)*d : (i*h+hh+1)*d]
			qs := dqs[(i*h+hh)*ch:]
			kvs := dkvs[(i*h+hh)*2*ch:]
			for k := range ch {
				qs[k] = sw * dq[k]
				kvs[k] = dk[k]
				kvs[ch+k] = dvv[k]
			}
			rq, rk := rs[i*h+hh], cs[hh*n+i]
			domega[hh] -= (rq*c.qn[i*h+hh] + rk*c.kn[i*h+hh]) / 2
			// Query points: logit terms ω·q_g·k_g − ω/2·|q_g|².
			for pp := range pq {
				qg := c.qg[((i*h+hh)*pq+pp)*3:]
				var dg [3]T
				for e := range 3 {
					domega[hh] += qg[e] * dq[ch+3*pp+e]
					dg[e] = om * (dq[ch+3*pp+e] - rq*qg[e])
				}
				base := i*3*h*pq + hh*pq + pp
				local := [3]T{c.qpl[base], c.qpl[base+h*pq], c.qpl[base+2*h*pq]}
				dloc := pointBack(r, &dR[i], &dT[i], dg, local)
				dqpl[base], dqpl[base+h*pq], dqpl[base+2*h*pq] = dloc[0], dloc[1], dloc[2]
			}
			// Key points (Q̃ carries ω) and value points.
			for pp := range kvp {
				var dg [3]T
				if pp < pq {
					kg := kt[ch+3*pp:]
					for e := range 3 {
						dg[e] = dk[ch+3*pp+e] - om*rk*kg[e]
					}
				} else {
					copy(dg[:], dvv[ch+3*(pp-pq):])
				}
				base := i*3*h*kvp + hh*kvp + pp
				local := [3]T{c.kvpl[base], c.kvpl[base+h*kvp], c.kvpl[base+2*h*kvp]}
				dloc := pointBack(r, &dR[i], &dT[i], dg, local)
				dkvpl[base], dkvpl[base+h*kvp], dkvpl[base+2*h*kvp] = dloc[0], dloc[1], dloc[2]
			}
		}
	}
	if g != nil {
		pw := T(cfg.pointWeight())
		for hh, raw := range p.TrainablePointWeights {
			// ω_h = pw·softplus(raw); softplus' = sigmoid.
			g.TrainablePointWeights[hh] += domega[hh] * pw * num.Sigmoid(raw)
		}
	}

	// The four projections of s (lines 1–3).
	p.QScalar.Backward(ds, gQS, c.s, dqs, n)
	p.KVScalar.Backward(ds, gKVS, c.s, dkvs, n)
	p.QPointLocal.Backward(ds, gQP, c.s, dqpl, n)
	p.KVPointLocal.Backward(ds, gKVP, c.s, dkvpl, n)

	if dframes != nil {
		for i := range dframes {
			for k := range 9 {
				dframes[i].Rot[k] += dR[i][k]
			}
			for k := range 3 {
				dframes[i].Trans[k] += dT[i][k]
			}
		}
	}
}

// pointBack back-propagates g = R·local + t − center: given dg it adds
// dg·localᵀ to dR and dg to dt, and returns Rᵀ·dg, the gradient of local.
func pointBack[T num.Float](r *[9]T, dR *[9]T, dt *[3]T, dg, local [3]T) [3]T {
	for a := range 3 {
		dt[a] += dg[a]
		for b := range 3 {
			dR[3*a+b] += dg[a] * local[b]
		}
	}
	return [3]T{
		r[0]*dg[0] + r[3]*dg[1] + r[6]*dg[2],
		r[1]*dg[0] + r[4]*dg[1] + r[7]*dg[2],
		r[2]*dg[0] + r[5]*dg[1] + r[8]*dg[2],
	}
}
