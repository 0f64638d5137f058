package rigid_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/rigid"
)

// fdCheck compares the gradient grad of L(x) = f(x)·cot with central finite
// differences in float64.
//
// With step h = 1e-5 the truncation error is ~h² times the third derivative ≈ 1e-10·O(10) and
// the round-off error ~ε·|L|/h ≈ 2e-16·O(100)/1e-5 = 2e-9, so a correct
// gradient agrees to ~1e-8; we allow 1e-6·(1 + |g|), which still catches
// any wrong term (those are O(1)).
func fdCheck(t *testing.T, name string, x []float64, f func([]float64) []float64, cot, grad []float64) {
	t.Helper()
	const h = 1e-5
	if len(grad) != len(x) {
		t.Fatalf("%s: %d gradient entries for %d inputs", name, len(grad), len(x))
	}
	loss := func(x []float64) float64 {
		y := f(x)
		if len(y) != len(cot) {
			t.Fatalf("%s: %d outputs for %d cotangents", name, len(y), len(cot))
		}
		s := 0.0
		for i := range y {
			s += y[i] * cot[i]
		}
		return s
	}
	worst := 0.0
	xp := append([]float64(nil), x...)
	for i := range x {
		xp[i] = x[i] + h
		lp := loss(xp)
		xp[i] = x[i] - h
		lm := loss(xp)
		xp[i] = x[i]
		fd := (lp - lm) / (2 * h)
		d := math.Abs(fd-grad[i]) / (1 + math.Abs(grad[i]))
		worst = math.Max(worst, d)
		if d > 1e-6 {
			t.Errorf("%s: d/dx[%d]: VJP %.10g, finite difference %.10g", name, i, grad[i], fd)
		}
	}
	t.Logf("%s: max |VJP − FD|/(1+|g|) = %.3g over %d inputs (tolerance 1e-6)", name, worst, len(x))
}

func randSlice(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

func frameOf(x []float64) rigid.Rigid[float64] {
	return rigid.Rigid[float64]{Rot: [9]float64(x[:9]), Trans: [3]float64(x[9:12])}
}

func flat(fs ...rigid.Rigid[float64]) []float64 {
	var y []float64
	for _, f := range fs {
		y = append(y, f.Rot[:]...)
		y = append(y, f.Trans[:]...)
	}
	return y
}

func TestVJPFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))

	t.Run("QuatToRot", func(t *testing.T) {
		x, cot := randSlice(rng, 4), randSlice(rng, 9)
		g := rigid.QuatToRotVJP(rigid.Quat[float64](x), [9]float64(cot))
		fdCheck(t, "QuatToRot", x, func(x []float64) []float64 {
			r := rigid.QuatToRot(rigid.Quat[float64](x))
			return r[:]
		}, cot, g[:])
	})
	t.Run("QuatMultiply", func(t *testing.T) {
		x, cot := randSlice(rng, 8), randSlice(rng, 4)
		g1, g2 := rigid.QuatMultiplyVJP(rigid.Quat[float64](x[:4]), rigid.Quat[float64](x[4:]), rigid.Quat[float64](cot))
		fdCheck(t, "QuatMultiply", x, func(x []float64) []float64 {
			q := rigid.QuatMultiply(rigid.Quat[float64](x[:4]), rigid.Quat[float64](x[4:]))
			return q[:]
		}, cot, append(g1[:], g2[:]...))
	})
	t.Run("Normalize", func(t *testing.T) {
		x, cot := randSlice(rng, 4), randSlice(rng, 4)
		g := rigid.NormalizeVJP(rigid.Quat[float64](x), rigid.Quat[float64](cot))
		fdCheck(t, "Normalize", x, func(x []float64) []float64 {
			q := rigid.Normalize(rigid.Quat[float64](x))
			return q[:]
		}, cot, g[:])
	})
	t.Run("Compose", func(t *testing.T) {
		// Rotation entries are free variables here: the VJP is the
		// gradient of the bilinear map, valid for any matrices.
		x, cot := randSlice(rng, 24), randSlice(rng, 12)
		d1, d2 := rigid.ComposeVJP(frameOf(x[:12]), frameOf(x[12:]), frameOf(cot))
		fdCheck(t, "Compose", x, func(x []float64) []float64 {
			return flat(frameOf(x[:12]).Compose(frameOf(x[12:])))
		}, cot, flat(d1, d2))
	})
	t.Run("Invert", func(t *testing.T) {
		x, cot := randSlice(rng, 12), randSlice(rng, 12)
		d := rigid.InvertVJP(frameOf(x), frameOf(cot))
		fdCheck(t, "Invert", x, func(x []float64) []float64 {
			return flat(frameOf(x).Invert())
		}, cot, flat(d))
	})
	t.Run("Apply", func(t *testing.T) {
		x, cot := randSlice(rng, 15), randSlice(rng, 3)
		df, dp := rigid.ApplyVJP(frameOf(x), [3]float64(x[12:]), [3]float64(cot))
		fdCheck(t, "Apply", x, func(x []float64) []float64 {
			p := frameOf(x).Apply([3]float64(x[12:]))
			return p[:]
		}, cot, append(flat(df), dp[:]...))
	})
	t.Run("InvertApply", func(t *testing.T) {
		x, cot := randSlice(rng, 15), randSlice(rng, 3)
		df, dp := rigid.InvertApplyVJP(frameOf(x), [3]float64(x[12:]), [3]float64(cot))
		fdCheck(t, "InvertApply", x, func(x []float64) []float64 {
			p := frameOf(x).InvertApply([3]float64(x[12:]))
			return p[:]
		}, cot, append(flat(df), dp[:]...))
	})
	t.Run("ApplyVec", func(t *testing.T) {
		x, cot := randSlice(rng, 15), randSlice(rng, 3)
		df, dp := rigid.ApplyVecVJP(frameOf(x), [3]float64(x[12:]), [3]float64(cot))
		fdCheck(t, "ApplyVec", x, func(x []float64) []float64 {
			p := frameOf(x).ApplyVec([3]float64(x[12:]))
			return p[:]
		}, cot, append(flat(df), dp[:]...))
	})
	t.Run("InvertApplyVec", func(t *testing.T) {
		x, cot := randSlice(rng, 15), randSlice(rng, 3)
		df, dp := rigid.InvertApplyVecVJP(frameOf(x), [3]float64(x[12:]), [3]float64(cot))
		fdCheck(t, "InvertApplyVec", x, func(x []float64) []float64 {
			p := frameOf(x).InvertApplyVec([3]float64(x[12:]))
			return p[:]
		}, cot, append(flat(df), dp[:]...))
	})
	t.Run("FromThreePoints", func(t *testing.T) {
		x, cot := randSlice(rng, 9), randSlice(rng, 12)
		a, o, b := rigid.FromThreePointsVJP([3]float64(x[:3]), [3]float64(x[3:6]), [3]float64(x[6:]), frameOf(cot))
		fdCheck(t, "FromThreePoints", x, func(x []float64) []float64 {
			f, err := rigid.FromThreePoints([3]float64(x[:3]), [3]float64(x[3:6]), [3]float64(x[6:]))
			if err != nil {
				t.Fatal(err)
			}
			return flat(f)
		}, cot, append(append(a[:], o[:]...), b[:]...))
	})
	t.Run("FromThreePointsAlg21", func(t *testing.T) {
		x, cot := randSlice(rng, 9), randSlice(rng, 12)
		a, o, b := rigid.FromThreePointsAlg21VJP([3]float64(x[:3]), [3]float64(x[3:6]), [3]float64(x[6:]), frameOf(cot))
		fdCheck(t, "FromThreePointsAlg21", x, func(x []float64) []float64 {
			f, err := rigid.FromThreePointsAlg21([3]float64(x[:3]), [3]float64(x[3:6]), [3]float64(x[6:]))
			if err != nil {
				t.Fatal(err)
			}
			return flat(f)
		}, cot, append(append(a[:], o[:]...), b[:]...))
	})
	t.Run("ComposeQUpdate", func(t *testing.T) {
		q := rigid.RandomQuat[float64](rng)
		x := append(q[:], randSlice(rng, 9)...) // q, t, update
		for i := 4; i < 7; i++ {
			x[i] *= 0.3 // moderate rotation updates, as in AF2
		}
		cot := randSlice(rng, 16) // quat, rot, trans
		gq, gt, gu := rigid.ComposeQUpdateVJP(rigid.Quat[float64](x[:4]), [3]float64(x[4:7]), [6]float64(x[7:]),
			rigid.Quat[float64](cot[:4]), frameOf(cot[4:]))
		fdCheck(t, "ComposeQUpdate", x, func(x []float64) []float64 {
			nq, nt := rigid.ComposeQUpdate(rigid.Quat[float64](x[:4]), [3]float64(x[4:7]), [6]float64(x[7:]))
			return append(nq[:], flat(rigid.FromQuat(nq, nt))...)
		}, cot, append(append(gq[:], gt[:]...), gu[:]...))
	})
	t.Run("TorsionFramesAtom14", func(t *testing.T) {
		// One residue of every type, Unk included.
		const n = 21
		aatype := make([]int, n)
		for i := range aatype {
			aatype[i] = i
		}
		bbx := make([]float64, 0, 12*n)
		for range n {
			bbx = append(bbx, flat(randFrame[float64](rng))...)
		}
		sc := make([]float64, 0, 14*n)
		for range 7 * n {
			s, c := math.Sincos(2 * math.Pi * rng.Float64())
			sc = append(sc, s, c)
		}
		x := append(bbx, sc...)
		split := func(x []float64) ([]rigid.Rigid[float64], []float64) {
			bb := make([]rigid.Rigid[float64], n)
			for i := range bb {
				bb[i] = frameOf(x[12*i:])
			}
			return bb, x[12*n:]
		}
		forward := func(x []float64) []float64 {
			bb, sc := split(x)
			fr, err := rigid.TorsionFrames(bb, sc, aatype)
			if err != nil {
				t.Fatal(err)
			}
			pos, err := rigid.Atom14Positions(fr, aatype)
			if err != nil {
				t.Fatal(err)
			}
			return append(flat(fr...), pos...)
		}
		cot := randSlice(rng, 8*12*n+14*3*n)
		cf := make([]rigid.Rigid[float64], 8*n)
		for j := range cf {
			cf[j] = frameOf(cot[12*j:])
		}
		df, err := rigid.Atom14PositionsVJP(aatype, cot[8*12*n:])
		if err != nil {
			t.Fatal(err)
		}
		for j := range df {
			for k := range df[j].Rot {
				df[j].Rot[k] += cf[j].Rot[k]
			}
			for k := range df[j].Trans {
				df[j].Trans[k] += cf[j].Trans[k]
			}
		}
		bb, scIn := split(x)
		dbb, dsc, err := rigid.TorsionFramesVJP(bb, scIn, aatype, df)
		if err != nil {
			t.Fatal(err)
		}
		fdCheck(t, "TorsionFrames+Atom14Positions", x, forward, cot, append(flat(dbb...), dsc...))
	})
}
