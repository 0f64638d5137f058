package attn

import (
	"fmt"
	"testing"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// triAttention runs triangle attention (supplement Algorithms 13 and 14) on a
// reference case with the gated module: x = LN(z), pair bias
// x·feat_2d_weights, then GatedForward over rows i (starting node) or, for
// the ending node, over columns j through a strided layout instead of a
// transpose. It returns z_update, and with cot the gradients of Σ z_update⊙cot
// with respect to z and to the parameters (by AF2 name).
//
// The triangle package owns the full module; this is the reference-case
// proof of the gated attention it builds on.
func triAttention[T num.Float](t *testing.T, cs *params.Set, module string, ending bool, cot []float64) (out []T, dz []T, grads map[string][]T) {
	t.Helper()
	shape, err := cs.Shape("in/z")
	if err != nil {
		t.Fatal(err)
	}
	n := shape[0]
	const cz, heads, c = 128, 4, 32
	z, err := params.Get[T](cs, "in/z", n, n, cz)
	if err != nil {
		t.Fatal(err)
	}
	mask, err := params.Get[T](cs, "in/pair_mask", n, n)
	if err != nil {
		t.Fatal(err)
	}
	ps := cs.Sub("params/" + module + "/")
	lnScale, err1 := params.Get[T](ps, "query_norm//scale", cz)
	lnOffset, err2 := params.Get[T](ps, "query_norm//offset", cz)
	feat, err3 := params.Get[T](ps, "/feat_2d_weights", cz, heads)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatal(err)
		}
	}
	gp, err := LoadGated[T](ps.Sub("attention"), cz, heads, c, cz)
	if err != nil {
		t.Fatal(err)
	}

	rows := n * n
	x := make([]T, rows*cz)
	mean, rstd := make([]T, rows), make([]T, rows)
	nn.LayerNorm(x, z, rows, cz, lnScale, lnOffset, nn.LayerNormEps, mean, rstd)
	b := make([]T, rows*heads) // [n, n, heads]
	nn.Linear(b, x, rows, cz, heads, feat, nil)

	// Starting node: batch = row i, queries and keys along j. Ending node:
	// the same on zᵀ, i.e. batch = column j, queries and keys along i.
	lay := Layout{Batch: n * cz, Row: cz}
	pbIndex := func(q, k int) int { return q*n + k } // position of bias (q, k) in b
	keyMask := mask
	if ending {
		lay = Layout{Batch: cz, Row: n * cz}
		pbIndex = func(q, k int) int { return k*n + q }
		keyMask = make([]T, n*n)
		for i := 0; i < n; i++ {
			for k := 0; k < n; k++ {
				keyMask[i*n+k] = mask[k*n+i]
			}
		}
	}
	pairBias := make([]T, heads*n*n)
	for h := 0; h < heads; h++ {
		for q := 0; q < n; q++ {
			for k := 0; k < n; k++ {
				pairBias[(h*n+q)*n+k] = b[pbIndex(q, k)*heads+h]
			}
		}
	}
	out = make([]T, rows*cz)
	var cache GatedCache[T]
	if err := GatedForward(&gp, x, lay, n, n, pairBias, keyMask, out, lay, &cache); err != nil {
		t.Fatal(err)
	}
	if cot == nil {
		return out, nil, nil
	}

	dout := make([]T, len(cot))
	for i, v := range cot {
		dout[i] = T(v)
	}
	dx := make([]T, rows*cz)
	dpb := make([]T, heads*n*n)
	g := gp.ZerosLike()
	if err := GatedBackward(&gp, &cache, dout, dx, dpb, &g); err != nil {
		t.Fatal(err)
	}
	db := make([]T, rows*heads)
	for h := 0; h < heads; h++ {
		for q := 0; q < n; q++ {
			for k := 0; k < n; k++ {
				db[pbIndex(q, k)*heads+h] += dpb[(h*n+q)*n+k]
			}
		}
	}
	dfeat := make([]T, cz*heads)
	nn.LinearBackward(dx, dfeat, nil, x, feat, db, rows, cz, heads)
	dz = make([]T, rows*cz)
	dScale, dOffset := make([]T, cz), make([]T, cz)
	nn.LayerNormBackward(dz, dScale, dOffset, z, lnScale, mean, rstd, dx, rows, cz)
	grads = map[string][]T{
		"query_norm//scale":   dScale,
		"query_norm//offset":  dOffset,
		"/feat_2d_weights":    dfeat,
		"attention//query_w":  g.QueryW,
		"attention//key_w":    g.KeyW,
		"attention//value_w":  g.ValueW,
		"attention//gating_w": g.GatingW,
		"attention//gating_b": g.GatingB,
		"attention//output_w": g.OutputW,
		"attention//output_b": g.OutputB,
	}
	return out, dz, grads
}

// TestTriangleAttentionRefcase reproduces tri_att_starting.npz and
// tri_att_ending.npz (output, input gradient and parameter gradients) in
// float64 and float32 with the tolerances of each case's meta.
func TestTriangleAttentionRefcase(t *testing.T) {
	for _, tc := range []struct {
		file, module string
		ending       bool
	}{
		{"tri_att_starting.npz", "triangle_attention_starting_node", false},
		{"tri_att_ending.npz", "triangle_attention_ending_node", true},
	} {
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(tc.file+"/"+dtype, func(t *testing.T) {
				cs := refcase.Open(t, tc.file)
				meta, err := refcase.ReadMeta(cs)
				if err != nil {
					t.Fatal(err)
				}
				want, err := params.Get[float64](cs, "out/z_update")
				if err != nil {
					t.Fatal(err)
				}
				cot, err1 := params.Get[float64](cs, "in/cot_z_update")
				wantDz, err2 := params.Get[float64](cs, "grad/in/z")
				mask, err3 := params.Get[float64](cs, "in/pair_mask")
				for _, err := range []error{err1, err2, err3} {
					if err != nil {
						t.Fatal(err)
					}
				}
				// Positions whose own pair mask is 0 have separate
				// tolerances in the meta (rows with every key masked; see
				// refcases README §3).
				masked := func(i int) bool { return mask[i/128] == 0 }
				unmasked := func(i int) bool { return !masked(i) }
				switch dtype {
				case "float64":
					out, dz, grads := triAttention[float64](t, cs, tc.module, tc.ending, cot)
					refcase.CompareSkip(t, "z_update", out, want, meta.Tol(1e-9, "float64", "abs"), meta.Tol(1e-7, "float64", "rel"), masked)
					maskTol := meta.Tol(1e-6, "float64_positions_with_mask_0", "abs")
					refcase.CompareSkip(t, "z_update (mask 0)", out, want, maskTol, 0, unmasked)
					gabs := meta.Tol(1e-8, "grad", "grad/in (float64)", "abs")
					grel := meta.Tol(1e-6, "grad", "grad/in (float64)", "rel")
					// Adding the biases in AF2's and OpenFold's order makes
					// even the fully masked rows agree to ~1e-14, so the
					// gradient needs no separate bound at masked positions.
					refcase.Compare(t, "grad z", dz, wantDz, gabs, grel)
					compareParamGrads(t, cs, tc.module, grads, meta.Tol(1e-6, "grad", "grad/params (stored float32)", "rel_to_max_abs"))
				case "float32":
					out, _, _ := triAttention[float32](t, cs, tc.module, tc.ending, nil)
					refcase.CompareSkip(t, "z_update", out, want, meta.Tol(1e-4, "float32", "abs"), meta.Tol(1e-3, "float32", "rel"), masked)
					refcase.CompareSkip(t, "z_update (mask 0)", out, want, meta.Tol(7, "float32_positions_with_mask_0", "abs"), 0, unmasked)

					// Gradients. A query row whose keys are all masked is the
					// uniform average in float32 but softmax(x) in float64
					// (z_update differs by up to 0.9 there, as in the case's
					// own out32/), and through the shared pair bias such rows
					// reach every gradient. So the float32 gradients are
					// checked against this package's float64 gradients (checked
					// against the case above) for a cotangent that is zero
					// on those rows; the rows themselves are covered by
					// TestFullyMaskedUniform and TestCoreFloat32.
					n := isqrt(len(mask))
					cot0 := append([]float64(nil), cot...)
					for i := 0; i < n; i++ {
						for j := 0; j < n; j++ {
							var keys float64 // keys of query (i, j): row i, or column j when ending
							for k := 0; k < n; k++ {
								if tc.ending {
									keys += mask[k*n+j]
								} else {
									keys += mask[i*n+k]
								}
							}
							if keys == 0 {
								clear(cot0[(i*n+j)*128 : (i*n+j+1)*128])
							}
						}
					}
					_, dz64, g64 := triAttention[float64](t, cs, tc.module, tc.ending, cot0)
					_, dz, grads := triAttention[float32](t, cs, tc.module, tc.ending, cot0)
					// "Gradients from a float32 implementation": 1e-3 × the
					// largest |value| of each array (meta "grad").
					tol := meta.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs")
					refcase.Compare(t, "grad z (vs float64)", dz, dz64, tol*refcase.MaxAbs(dz64), 0)
					for name, got := range grads {
						refcase.Compare(t, "grad "+name+" (vs float64)", got, g64[name], tol*refcase.MaxAbs(g64[name]), 0)
					}
				}
			})
		}
	}
}

// isqrt returns the integer square root of a perfect square.
func isqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// compareParamGrads compares gradients by AF2 parameter name with the case's
// grad/params (stored as float32) to relTol × the largest |value| of each.
//
// Some gradients are exactly zero (README §5: softmax is invariant to a
// constant added to a query's logits, so e.g. the offset of the layer norm
// in front of the pair-bias projection gets none); their stored values are
// round-off, ~1e-16, and relative to them any implementation's round-off
// fails. Such an array (largest |value| below 1e-9 of the module's largest
// gradient) is held to relTol × the module's largest gradient instead.
func compareParamGrads[T num.Float](t *testing.T, cs *params.Set, module string, grads map[string][]T, relTol float64) {
	t.Helper()
	wants := map[string][]float64{}
	var scale float64
	for name := range grads {
		want, err := params.Get[float64](cs, "grad/params/"+module+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		wants[name] = want
		scale = max(scale, refcase.MaxAbs(want))
	}
	for name, got := range grads {
		want := wants[name]
		m := refcase.MaxAbs(want)
		if m < 1e-9*scale {
			m = scale
		}
		refcase.Compare(t, fmt.Sprintf("grad %s", name), got, want, relTol*m, 0)
	}
}

// msaAttention runs MSA row attention with pair bias (supplement Algorithm
// 7) or MSA column attention (Algorithm 8) on a reference case with the gated
// module: x = LN(msa), then GatedForward over sequences (row: batch s,
// queries and keys along residues, bias LN(z)·feat_2d_weights) or over
// residues through the column layout (batch n, queries and keys along
// sequences). It returns msa_update, and with cot the gradients of
// Σ msa_update⊙cot with respect to msa, z (row attention) and the
// parameters (by AF2 name). The msaattn package owns the full modules.
func msaAttention[T num.Float](t *testing.T, cs *params.Set, module string, column bool, cot []float64) (out, dmsa, dz []T, grads map[string][]T) {
	t.Helper()
	const cm, cz, heads, c = 256, 128, 8, 32
	shape, err := cs.Shape("in/msa")
	if err != nil {
		t.Fatal(err)
	}
	s, n := shape[0], shape[1]
	msa, err1 := params.Get[T](cs, "in/msa", s, n, cm)
	mask, err2 := params.Get[T](cs, "in/msa_mask", s, n)
	ps := cs.Sub("params/" + module + "/")
	qn, err3 := nn.LoadLayerNorm[T](ps, "query_norm", cm)
	gp, err4 := LoadGated[T](ps.Sub("attention"), cm, heads, c, cm)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := s * n
	x := make([]T, rows*cm)
	mean, rstd := make([]T, rows), make([]T, rows)
	nn.LayerNorm(x, msa, rows, cm, qn.Scale, qn.Offset, nn.LayerNormEps, mean, rstd)

	var (
		batch, l    = s, n
		lay         = Layout{Batch: n * cm, Row: cm}
		keyMask     = mask
		pairBias    []T
		z, zn, feat []T
		zMean, zStd []T
		zNorm       nn.LayerNormParams[T]
	)
	if column {
		batch, l = n, s
		lay = Layout{Batch: cm, Row: n * cm}
		keyMask = make([]T, n*s)
		for i := 0; i < n; i++ {
			for k := 0; k < s; k++ {
				keyMask[i*s+k] = mask[k*n+i]
			}
		}
	} else {
		var err1, err2, err3 error
		z, err1 = params.Get[T](cs, "in/z", n, n, cz)
		zNorm, err2 = nn.LoadLayerNorm[T](ps, "feat_2d_norm", cz)
		feat, err3 = params.Get[T](ps, "/feat_2d_weights", cz, heads)
		for _, err := range []error{err1, err2, err3} {
			if err != nil {
				t.Fatal(err)
			}
		}
		zn = make([]T, n*n*cz)
		zMean, zStd = make([]T, n*n), make([]T, n*n)
		nn.LayerNorm(zn, z, n*n, cz, zNorm.Scale, zNorm.Offset, nn.LayerNormEps, zMean, zStd)
		b := make([]T, n*n*heads)
		nn.Linear(b, zn, n*n, cz, heads, feat, nil)
		pairBias = make([]T, heads*n*n)
		for h := 0; h < heads; h++ {
			for q := 0; q < n*n; q++ {
				pairBias[h*n*n+q] = b[q*heads+h]
			}
		}
	}
	out = make([]T, rows*cm)
	var cache GatedCache[T]
	if err := GatedForward(&gp, x, lay, batch, l, pairBias, keyMask, out, lay, &cache); err != nil {
		t.Fatal(err)
	}
	if cot == nil {
		return out, nil, nil, nil
	}
	dout := make([]T, len(cot))
	for i, v := range cot {
		dout[i] = T(v)
	}
	dx := make([]T, rows*cm)
	g := gp.ZerosLike()
	var dpb []T
	if !column {
		dpb = make([]T, heads*n*n)
	}
	if err := GatedBackward(&gp, &cache, dout, dx, dpb, &g); err != nil {
		t.Fatal(err)
	}
	dmsa = make([]T, rows*cm)
	dqs, dqo := make([]T, cm), make([]T, cm)
	nn.LayerNormBackward(dmsa, dqs, dqo, msa, qn.Scale, mean, rstd, dx, rows, cm)
	grads = map[string][]T{
		"query_norm//scale":   dqs,
		"query_norm//offset":  dqo,
		"attention//query_w":  g.QueryW,
		"attention//key_w":    g.KeyW,
		"attention//value_w":  g.ValueW,
		"attention//gating_w": g.GatingW,
		"attention//gating_b": g.GatingB,
		"attention//output_w": g.OutputW,
		"attention//output_b": g.OutputB,
	}
	if !column {
		db := make([]T, n*n*heads)
		for h := 0; h < heads; h++ {
			for q := 0; q < n*n; q++ {
				db[q*heads+h] = dpb[h*n*n+q]
			}
		}
		dzn, dfeat := make([]T, n*n*cz), make([]T, cz*heads)
		nn.LinearBackward(dzn, dfeat, nil, zn, feat, db, n*n, cz, heads)
		dz = make([]T, n*n*cz)
		dzs, dzo := make([]T, cz), make([]T, cz)
		nn.LayerNormBackward(dz, dzs, dzo, z, zNorm.Scale, zMean, zStd, dzn, n*n, cz)
		grads["/feat_2d_weights"] = dfeat
		grads["feat_2d_norm//scale"] = dzs
		grads["feat_2d_norm//offset"] = dzo
	}
	return out, dmsa, dz, grads
}

// TestMSAAttentionRefcase reproduces msa_row_attention.npz (pair bias, H = 8,
// c_in = 256) and msa_column_attention.npz (the strided column layout) in
// float64 and float32 with the tolerances of each case's meta: output,
// input gradients and parameter gradients. Neither case has a query whose
// keys are all masked, so float32 gradients are compared with the case too.
func TestMSAAttentionRefcase(t *testing.T) {
	for _, tc := range []struct {
		file, module string
		column       bool
	}{
		{"msa_row_attention.npz", "msa_row_attention_with_pair_bias", false},
		{"msa_column_attention.npz", "msa_column_attention", true},
	} {
		for _, dtype := range []string{"float64", "float32"} {
			t.Run(tc.file+"/"+dtype, func(t *testing.T) {
				cs := refcase.Open(t, tc.file)
				meta, err := refcase.ReadMeta(cs)
				if err != nil {
					t.Fatal(err)
				}
				want, err1 := params.Get[float64](cs, "out/msa_update")
				cot, err2 := params.Get[float64](cs, "in/cot_msa_update")
				wantDmsa, err3 := params.Get[float64](cs, "grad/in/msa")
				for _, err := range []error{err1, err2, err3} {
					if err != nil {
						t.Fatal(err)
					}
				}
				var wantDz []float64
				if !tc.column {
					if wantDz, err = params.Get[float64](cs, "grad/in/z"); err != nil {
						t.Fatal(err)
					}
				}
				check := func(out, dmsa, dz []float64, grads map[string][]float64, abs, rel, gabs, grel, prel float64) {
					refcase.Compare(t, "msa_update", out, want, abs, rel)
					if gabs > 0 {
						refcase.Compare(t, "grad msa", dmsa, wantDmsa, gabs, grel)
					} else {
						refcase.Compare(t, "grad msa", dmsa, wantDmsa, prel*refcase.MaxAbs(wantDmsa), 0)
					}
					if !tc.column {
						if gabs > 0 {
							refcase.Compare(t, "grad z", dz, wantDz, gabs, grel)
						} else {
							refcase.Compare(t, "grad z", dz, wantDz, prel*refcase.MaxAbs(wantDz), 0)
						}
					}
					compareParamGrads(t, cs, tc.module, grads, prel)
				}
				switch dtype {
				case "float64":
					out, dmsa, dz, grads := msaAttention[float64](t, cs, tc.module, tc.column, cot)
					check(out, dmsa, dz, grads,
						meta.Tol(1e-9, "float64", "abs"), meta.Tol(1e-7, "float64", "rel"),
						meta.Tol(1e-8, "grad", "grad/in (float64)", "abs"), meta.Tol(1e-6, "grad", "grad/in (float64)", "rel"),
						meta.Tol(1e-6, "grad", "grad/params (stored float32)", "rel_to_max_abs"))
				case "float32":
					out, dmsa, dz, grads := msaAttention[float32](t, cs, tc.module, tc.column, cot)
					g64 := map[string][]float64{}
					for k, v := range grads {
						g64[k] = to64(v)
					}
					// float32 gradients: 1e-3 × the largest |value| of each
					// array (meta "grad", "float32 implementations").
					check(to64(out), to64(dmsa), to64(dz), g64,
						meta.Tol(1e-4, "float32", "abs"), meta.Tol(1e-3, "float32", "rel"),
						0, 0, meta.Tol(1e-3, "grad", "float32 implementations", "rel_to_max_abs"))
				}
			})
		}
	}
}
