package triangle

import (
	"math"
	"testing"
)

// naiveLN normalises v (one row) with scale and offset as AF2's layer norm.
func naiveLN(v, scale, offset []float64) []float64 {
	var m, s float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	r := 1 / math.Sqrt(s/float64(len(v))+1e-5)
	y := make([]float64, len(v))
	for i, x := range v {
		y[i] = (x-m)*r*scale[i] + offset[i]
	}
	return y
}

// naiveLinear returns x·W + b for W [in, out].
func naiveLinear(x, w, b []float64, out int) []float64 {
	y := make([]float64, out)
	for o := range out {
		y[o] = b[o]
		for i, v := range x {
			y[o] += v * w[i*out+o]
		}
	}
	return y
}

func sig(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// naiveMul is Algorithms 11 and 12 written out index by index, as the
// refcases README states them, with no chunking, blocking or BLAS.
func naiveMul(p *MulParams[float64], z, mask []float64, n int) []float64 {
	cz, ch := p.Config.PairChannels, p.Config.HiddenChannels
	x := make([][]float64, n*n)
	a := make([][]float64, n*n)
	b := make([][]float64, n*n)
	for q := range n * n {
		x[q] = naiveLN(z[q*cz:(q+1)*cz], p.LayerNormInput.Scale, p.LayerNormInput.Offset)
		lp := naiveLinear(x[q], p.LeftProjection.W, p.LeftProjection.B, ch)
		lg := naiveLinear(x[q], p.LeftGate.W, p.LeftGate.B, ch)
		rp := naiveLinear(x[q], p.RightProjection.W, p.RightProjection.B, ch)
		rg := naiveLinear(x[q], p.RightGate.W, p.RightGate.B, ch)
		a[q], b[q] = make([]float64, ch), make([]float64, ch)
		for c := range ch {
			a[q][c] = mask[q] * lp[c] * sig(lg[c])
			b[q][c] = mask[q] * rp[c] * sig(rg[c])
		}
	}
	out := make([]float64, n*n*cz)
	for i := range n {
		for j := range n {
			u := make([]float64, ch)
			for k := range n {
				for c := range ch {
					if p.Config.Incoming {
						u[c] += a[k*n+j][c] * b[k*n+i][c]
					} else {
						u[c] += a[i*n+k][c] * b[j*n+k][c]
					}
				}
			}
			q := i*n + j
			y := naiveLinear(naiveLN(u, p.CenterLayerNorm.Scale, p.CenterLayerNorm.Offset), p.OutputProjection.W, p.OutputProjection.B, cz)
			g := naiveLinear(x[q], p.GatingLinear.W, p.GatingLinear.B, cz)
			for c := range cz {
				out[q*cz+c] = y[c] * sig(g[c])
			}
		}
	}
	return out
}

// naiveAtt is Algorithm 13 written out index by index (and Algorithm 14 as
// Algorithm 13 on the transposed input), with a plain softmax.
func naiveAtt(p *AttParams[float64], z, mask []float64, n int) []float64 {
	cfg := p.Config
	cz, h, c := cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	hc := h * c
	if cfg.Ending {
		q := *p
		q.Config.Ending = false
		return transposePair(naiveAtt(&q, transposePair(z, n, cz), transposePair(mask, n, 1), n), n, cz)
	}
	a := &p.Attention
	zero := make([]float64, hc)
	x := make([][]float64, n*n)
	qv, kv, vv, gv := make([][]float64, n*n), make([][]float64, n*n), make([][]float64, n*n), make([][]float64, n*n)
	bias := make([][]float64, n*n)
	for r := range n * n {
		x[r] = naiveLN(z[r*cz:(r+1)*cz], p.QueryNorm.Scale, p.QueryNorm.Offset)
		qv[r] = naiveLinear(x[r], a.QueryW, zero, hc)
		kv[r] = naiveLinear(x[r], a.KeyW, zero, hc)
		vv[r] = naiveLinear(x[r], a.ValueW, zero, hc)
		gv[r] = naiveLinear(x[r], a.GatingW, a.GatingB, hc)
		bias[r] = naiveLinear(x[r], p.FeatTwoDWeights, make([]float64, h), h)
	}
	out := make([]float64, n*n*cz)
	for i := range n {
		for j := range n {
			o := make([]float64, hc)
			for hh := range h {
				logits := make([]float64, n)
				mx := math.Inf(-1)
				for k := range n {
					var s float64
					for cc := range c {
						s += qv[i*n+j][hh*c+cc] * kv[i*n+k][hh*c+cc]
					}
					logits[k] = s/math.Sqrt(float64(c)) + bias[j*n+k][hh] + 1e9*(mask[i*n+k]-1)
					mx = max(mx, logits[k])
				}
				var sum float64
				for k := range n {
					logits[k] = math.Exp(logits[k] - mx)
					sum += logits[k]
				}
				for k := range n {
					for cc := range c {
						o[hh*c+cc] += logits[k] / sum * vv[i*n+k][hh*c+cc]
					}
				}
			}
			for t := range hc {
				o[t] *= sig(gv[i*n+j][t])
			}
			y := naiveLinear(o, a.OutputW, a.OutputB, cz)
			copy(out[(i*n+j)*cz:], y)
		}
	}
	return out
}

// TestNaive compares the four modules with the index-by-index definitions
// above at widths where c_z, c and H·c differ (the reference cases have
// c_z = c = H·c = 128, which would hide a mixed-up width), with a mask that
// has holes but no fully masked row. float64, 1e-12 relative to the largest
// output: only the order of the sums differs.
//
// The same comparison at AF2's widths and N = 20 (400 pairs × 128 channels)
// runs the loops that split across goroutines, so that the race detector
// sees them.
func TestNaive(t *testing.T) {
	testNaive(t, 9, smallMul, smallAtt)
	wideMul := func(incoming bool) MulConfig {
		c := DefaultMulConfig()
		c.Incoming = incoming
		return c
	}
	wideAtt := func(ending bool) AttConfig {
		c := DefaultAttConfig()
		c.Ending = ending
		return c
	}
	testNaive(t, 20, wideMul, wideAtt)
}

func testNaive(t *testing.T, n int, mulCfg func(bool) MulConfig, attCfg func(bool) AttConfig) {
	z, mask := testPair(n, mulCfg(false).PairChannels, 31)
	for _, incoming := range []bool{false, true} {
		p := testMulParams[float64](t, mulCfg(incoming), 4)
		t.Run(p.Config.Name(), func(t *testing.T) {
			out := make([]float64, len(z))
			if err := MulForward(p, z, mask, n, out, nil); err != nil {
				t.Fatal(err)
			}
			d, s := maxDiff(out, naiveMul(p, z, mask, n))
			t.Logf("max difference %.3g (max |out| %.3g)", d, s)
			if d > 1e-12*s || s == 0 {
				t.Errorf("max difference %.3g (max |out| %.3g)", d, s)
			}
		})
	}
	for _, ending := range []bool{false, true} {
		p := testAttParams[float64](t, attCfg(ending), 4)
		t.Run(p.Config.Name(), func(t *testing.T) {
			out := make([]float64, len(z))
			if err := AttForward(p, z, mask, n, out, nil); err != nil {
				t.Fatal(err)
			}
			d, s := maxDiff(out, naiveAtt(p, z, mask, n))
			t.Logf("max difference %.3g (max |out| %.3g)", d, s)
			if d > 1e-12*s || s == 0 {
				t.Errorf("max difference %.3g (max |out| %.3g)", d, s)
			}
		})
	}
}

// TestFloat32 compares float32 with float64, outputs and all gradients, at
// N = 24 and AF2's widths (576 pairs × 128 channels: the AVX2 gate kernels
// run on full vectors and on tails, and the loops split across goroutines,
// for the race detector). Every float32 array must stay within 1e-4 of the
// largest float64 entry of that array: float32 round-off over sums of
// ~N·c terms of mixed sign gives a few 1e-6 here (about ten times less).
func TestFloat32(t *testing.T) {
	const n = 24
	mulCfg, attCfg := DefaultMulConfig(), DefaultAttConfig()
	attCfg.Ending = true
	z, mask := testPair(n, 128, 41)
	cot := randn(len(z), 42)
	for _, m := range []struct {
		name         string
		run32, run64 func() map[string][]float64
	}{
		{"multiplication", func() map[string][]float64 {
			return runMul(t, testMulParams[float32](t, mulCfg, 4), z, mask, cot, n)
		}, func() map[string][]float64 {
			return runMul(t, testMulParams[float64](t, mulCfg, 4), z, mask, cot, n)
		}},
		{"attention", func() map[string][]float64 {
			return runAtt(t, testAttParams[float32](t, attCfg, 4), z, mask, cot, n)
		}, func() map[string][]float64 {
			return runAtt(t, testAttParams[float64](t, attCfg, 4), z, mask, cot, n)
		}},
	} {
		t.Run(m.name, func(t *testing.T) {
			r32, r64 := m.run32(), m.run64()
			worst := 0.0
			for k, want := range r64 {
				d, s := maxDiff(r32[k], want)
				if d > 1e-4*s {
					t.Errorf("%s: float32 differs by %.3g (max |value| %.3g)", k, d, s)
				}
				worst = max(worst, d/s)
			}
			t.Logf("largest float32 error relative to the array's largest entry: %.3g", worst)
		})
	}
}
