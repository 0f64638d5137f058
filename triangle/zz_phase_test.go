package triangle

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/foldkit/foldkit/internal/gemm"
)

func TestZZPhases(t *testing.T) {
	n := 512
	cfg := DefaultMulConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	p, _ := NewMulParams[float32](cfg, rng)
	z, mask := randomPair[float32](rng, n, 128)
	out := make([]float32, len(z))
	var c MulCache[float32]
	MulForward(p, z, mask, n, out, &c)
	cz, ch := 128, 128
	n2 := n * n
	for rep := 0; rep < 4; rep++ {
		var tProjG, tGate, tCon, tCN, tOG, tGG, tOV time.Duration
		t0 := time.Now()
		normInput(&p.LayerNormInput, c.x, z, n2, cz, c.mean, c.rstd)
		tLN := time.Since(t0)
		w := cfg.chunk(n, 4)
		pk := packProjections(p, w)
		a, b, proj := c.a, c.b, c.proj
		for c0 := 0; c0 < ch; c0 += w {
			cw := min(w, ch-c0)
			for p0 := 0; p0 < n2; p0 += blockPairs {
				np := min(blockPairs, n2-p0)
				s := time.Now()
				pr := pk.project(c.x, c0, cw, p0, np, proj)
				tProjG += time.Since(s)
				s = time.Now()
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
				tGate += time.Since(s)
			}
			s := time.Now()
			contract(cfg.Incoming, n, cw, a, b, c.u[c0*n2:])
			tCon += time.Since(s)
		}
		wo, bo := foldCenter(p)
		gl := &p.GatingLinear
		g := make([]float32, 2048*cz)
		for p0 := 0; p0 < n2; p0 += blockPairs {
			np := min(blockPairs, n2-p0)
			s := time.Now()
			centerNorm(c.u, n2, p0, np, ch, c.urstd[p0:p0+np])
			tCN += time.Since(s)
			s = time.Now()
			o := out[p0*cz : (p0+np)*cz]
			gemm.Gemm(true, false, np, cz, ch, 1, c.u[p0:], n2, wo, cz, 0, o, cz)
			tOG += time.Since(s)
			s = time.Now()
			gemm.Gemm(false, false, np, cz, cz, 1, c.x[p0*cz:], cz, gl.W, cz, 0, g, cz)
			tGG += time.Since(s)
			s = time.Now()
			parallelFor(np, np*cz, func(_, lo, hi int) {
				for q := lo; q < hi; q++ {
					row := o[q*cz : (q+1)*cz]
					gateVec(row, row, g[q*cz:(q+1)*cz], bo, gl.B)
				}
			})
			tOV += time.Since(s)
		}
		tot := time.Since(t0)
		gf := func(f float64, d time.Duration) float64 { return f / d.Seconds() / 1e9 }
		fl := 2 * float64(n2) * 128 * 128
		fmt.Printf("total %v | LN %v gate %v center %v outgate %v | projGEMM %v (%.0f) contract %v (%.0f) outGEMM %v (%.0f) gateGEMM %v (%.0f) | peak %.0f\n",
			tot.Round(time.Millisecond), tLN.Round(time.Millisecond), tGate.Round(time.Millisecond), tCN.Round(time.Millisecond), tOV.Round(time.Millisecond),
			tProjG.Round(time.Millisecond), gf(4*fl, tProjG), tCon.Round(time.Millisecond), gf(2*float64(n2)*512*128, tCon), tOG.Round(time.Millisecond), gf(fl, tOG), tGG.Round(time.Millisecond), gf(fl, tGG), sgemmPeak())
	}
}
