package triangle

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPermutationEquivariance checks that renumbering the residues
// (permuting the rows and columns of z and of the mask together) permutes
// the output of every module the same way. float64: the only difference is
// the order of the sums over residues, a round-off of about N·c ulp of the
// terms, so 1e-12 (relative to the largest output) is a wide bound.
func TestPermutationEquivariance(t *testing.T) {
	const n = 7
	for _, m := range modules(t) {
		t.Run(m.name, func(t *testing.T) {
			z, mask := testPair(n, m.cz, 1)
			perm := rand.New(rand.NewPCG(2, 2)).Perm(n)
			out, err := m.forward(z, mask, n)
			if err != nil {
				t.Fatal(err)
			}
			pout, err := m.forward(permutePair(z, n, m.cz, perm), permutePair(mask, n, 1, perm), n)
			if err != nil {
				t.Fatal(err)
			}
			d, s := maxDiff(pout, permutePair(out, n, m.cz, perm))
			t.Logf("max |out(πz) − π out(z)| = %.3g (max |out| %.3g)", d, s)
			if d > 1e-12*s || s == 0 {
				t.Errorf("not equivariant: max difference %.3g, max |out| %.3g", d, s)
			}
		})
	}
}

// TestTransposedForms checks the relations between the two forms of each
// update: the ending-node attention is the starting-node attention (with the
// same parameters) on zᵀ and maskᵀ, transposed back, as AF2 computes it; and
// the incoming multiplication is the outgoing one on zᵀ, transposed back
// (Σ_k a_kj b_ki is Σ_k a'_jk b'_ik for a' = aᵀ, b' = bᵀ). Outputs, input
// gradients and parameter gradients are compared in float64 to 1e-12
// relative to the largest entry (round-off only: the sums run in other
// orders).
func TestTransposedForms(t *testing.T) {
	const n = 6
	for _, tc := range []struct {
		name       string
		cz         int
		twoForms   func() (a, b module)
		transposed bool
	}{
		{name: "ending=starting(zᵀ)ᵀ", cz: smallAtt(true).PairChannels, twoForms: func() (module, module) {
			p := testAttParams[float64](t, smallAtt(true), 5)
			q := *p
			q.Config.Ending = false
			return attModule(p), attModule(&q)
		}},
		{name: "incoming=outgoing(zᵀ)ᵀ", cz: smallMul(true).PairChannels, twoForms: func() (module, module) {
			p := testMulParams[float64](t, smallMul(true), 3)
			q := *p
			q.Config.Incoming = false
			return mulModule(p), mulModule(&q)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.twoForms()
			z, mask := testPair(n, tc.cz, 4)
			cot := randn(len(z), 5)
			out, err := a.forward(z, mask, n)
			if err != nil {
				t.Fatal(err)
			}
			zt, mt := transposePair(z, n, tc.cz), transposePair(mask, n, 1)
			outT, err := b.forward(zt, mt, n)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want []float64) {
				t.Helper()
				d, s := maxDiff(got, want)
				t.Logf("%s: max difference %.3g (max |value| %.3g)", what, d, s)
				if d > 1e-12*s || s == 0 {
					t.Errorf("%s: max difference %.3g, max |value| %.3g", what, d, s)
				}
			}
			check("out", out, transposePair(outT, n, tc.cz))
			dz, ga, err := a.backward(z, mask, cot, n)
			if err != nil {
				t.Fatal(err)
			}
			dzT, gb, err := b.backward(zt, mt, transposePair(cot, n, tc.cz), n)
			if err != nil {
				t.Fatal(err)
			}
			check("dz", dz, transposePair(dzT, n, tc.cz))
			for k, g := range ga {
				check(k, g, gb[k])
			}
		})
	}
}

// mulModule and attModule wrap given parameters as a module.
func mulModule(p *MulParams[float64]) module {
	return module{
		name: p.Config.Name(), cz: p.Config.PairChannels,
		forward: func(z, mask []float64, n int) ([]float64, error) {
			out := make([]float64, len(z))
			return out, MulForward(p, z, mask, n, out, nil)
		},
		backward: func(z, mask, cot []float64, n int) ([]float64, map[string][]float64, error) {
			var c MulCache[float64]
			out := make([]float64, len(z))
			if err := MulForward(p, z, mask, n, out, &c); err != nil {
				return nil, nil, err
			}
			dz, g := make([]float64, len(z)), p.ZerosLike()
			err := MulBackward(p, &c, cot, dz, g)
			return dz, mulArrays(g), err
		},
		params: func() map[string][]float64 { return mulArrays(p) },
	}
}

func attModule(p *AttParams[float64]) module {
	return module{
		name: p.Config.Name(), cz: p.Config.PairChannels,
		forward: func(z, mask []float64, n int) ([]float64, error) {
			out := make([]float64, len(z))
			return out, AttForward(p, z, mask, n, out, nil)
		},
		backward: func(z, mask, cot []float64, n int) ([]float64, map[string][]float64, error) {
			var c AttCache[float64]
			out := make([]float64, len(z))
			if err := AttForward(p, z, mask, n, out, &c); err != nil {
				return nil, nil, err
			}
			dz, g := make([]float64, len(z)), p.ZerosLike()
			err := AttBackward(p, &c, cot, dz, g)
			return dz, attArrays(g), err
		},
		params: func() map[string][]float64 { return attArrays(p) },
	}
}

// TestFiniteDifference checks every gradient of every module in float64
// against central differences of L = Σ out·cot: along one random direction
// per array (the directional derivative ⟨∇L, v⟩) and for a few single
// entries. With step 1e-5 the truncation error is ~1e-10·|L”'| and the
// round-off ~1e-16·|L|/1e-5; 1e-6 relative to the size of the derivative
// (plus 1e-9 absolute) is far above both and far below any real error.
// The mask has holes but no fully masked row, whose logits (−1e9 + x) keep
// too little resolution in x for a difference quotient.
func TestFiniteDifference(t *testing.T) {
	const n, eps = 5, 1e-5
	for _, m := range modules(t) {
		t.Run(m.name, func(t *testing.T) {
			z, mask := testPair(n, m.cz, 6)
			cot := randn(len(z), 7)
			loss := func() float64 {
				out, err := m.forward(z, mask, n)
				if err != nil {
					t.Fatal(err)
				}
				return dot(out, cot)
			}
			dz, grads, err := m.backward(z, mask, cot, n)
			if err != nil {
				t.Fatal(err)
			}
			arrays := m.params()
			arrays["in/z"] = z
			grads["in/z"] = dz
			if len(grads) != len(arrays) {
				t.Fatalf("%d gradients for %d arrays", len(grads), len(arrays))
			}
			for name, x := range arrays {
				g := grads[name]
				v := randn(len(x), uint64(len(name)))
				fd := func(dir []float64) float64 {
					x0 := append([]float64(nil), x...)
					for i := range x {
						x[i] = x0[i] + eps*dir[i]
					}
					lp := loss()
					for i := range x {
						x[i] = x0[i] - eps*dir[i]
					}
					lm := loss()
					copy(x, x0)
					return (lp - lm) / (2 * eps)
				}
				check := func(what string, want, got float64) {
					t.Helper()
					if math.Abs(got-want) > 1e-9+1e-6*math.Abs(want) {
						t.Errorf("%s %s: backward %.10g, finite difference %.10g", name, what, got, want)
					}
				}
				check("along a random direction", fd(v), dot(g, v))
				for _, i := range []int{0, len(x) / 2, len(x) - 1} {
					e := make([]float64, len(x))
					e[i] = 1
					check("entry", fd(e), g[i])
				}
			}
		})
	}
}

// TestMaskedRows runs every module, in float32 and float64, with residue 2
// fully masked (its row and column of the pair mask are 0), and then with
// every pair masked: outputs and gradients must be finite. Rows whose keys
// are all masked attend uniformly (AF2's behaviour under its 1e9 bias).
func TestMaskedRows(t *testing.T) {
	const n = 6
	for _, all := range []bool{false, true} {
		z, mask := testPair(n, 6, 8)
		for i := range n {
			mask[2*n+i], mask[i*n+2] = 0, 0
			if all {
				for j := range n {
					mask[i*n+j] = 0
				}
			}
		}
		cot := randn(len(z), 9)
		for _, incoming := range []bool{false, true} {
			cfg := smallMul(incoming)
			p32, p64 := testMulParams[float32](t, cfg, 1), testMulParams[float64](t, cfg, 1)
			t.Run(cfg.Name(), func(t *testing.T) {
				checkFinite(t, "float32", runMul(t, p32, z, mask, cot, n))
				checkFinite(t, "float64", runMul(t, p64, z, mask, cot, n))
			})
		}
		for _, ending := range []bool{false, true} {
			cfg := smallAtt(ending)
			p32, p64 := testAttParams[float32](t, cfg, 1), testAttParams[float64](t, cfg, 1)
			t.Run(cfg.Name(), func(t *testing.T) {
				checkFinite(t, "float32", runAtt(t, p32, z, mask, cot, n))
				checkFinite(t, "float64", runAtt(t, p64, z, mask, cot, n))
			})
		}
	}
}

func checkFinite(t *testing.T, what string, xs map[string][]float64) {
	t.Helper()
	for k, x := range xs {
		if !allFinite(x) {
			t.Errorf("%s: %s is not finite", what, k)
		}
	}
}

// runMul runs MulForward and MulBackward in T and returns the output, the
// input gradient and the parameter gradients in float64.
func runMul[T float32 | float64](t *testing.T, p *MulParams[T], z, mask, cot []float64, n int) map[string][]float64 {
	t.Helper()
	zt, mt := convert[T](z), convert[T](mask)
	out := make([]T, len(z))
	var c MulCache[T]
	if err := MulForward(p, zt, mt, n, out, &c); err != nil {
		t.Fatal(err)
	}
	dz, g := make([]T, len(z)), p.ZerosLike()
	if err := MulBackward(p, &c, convert[T](cot), dz, g); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float64{"out": convert[float64](out), "dz": convert[float64](dz)}
	for k, v := range mulArrays(g) {
		res[k] = convert[float64](v)
	}
	return res
}

// runAtt is runMul for the attention.
func runAtt[T float32 | float64](t *testing.T, p *AttParams[T], z, mask, cot []float64, n int) map[string][]float64 {
	t.Helper()
	zt, mt := convert[T](z), convert[T](mask)
	out := make([]T, len(z))
	var c AttCache[T]
	if err := AttForward(p, zt, mt, n, out, &c); err != nil {
		t.Fatal(err)
	}
	dz, g := make([]T, len(z)), p.ZerosLike()
	if err := AttBackward(p, &c, convert[T](cot), dz, g); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float64{"out": convert[float64](out), "dz": convert[float64](dz)}
	for k, v := range attArrays(g) {
		res[k] = convert[float64](v)
	}
	return res
}
