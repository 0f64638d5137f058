package ipa

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/backendtest"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// ipaArrays names every array of a parameter gradient (AF2's names).
func ipaArrays[T num.Float](p *Params[T]) map[string][]T {
	m := map[string][]T{"trainable_point_weights": p.TrainablePointWeights}
	for _, l := range p.linears(p.Config) {
		m[l.name+"//weights"] = l.p.W
		m[l.name+"//bias"] = l.p.B
	}
	return m
}

// biasName names attention_2d's bias, whose gradient is zero in exact
// arithmetic (the softmax cancels a bias constant along each row).
const biasName = "attention_2d//bias"

// gradErrors compares every array of got with want (same names) and
// returns the largest error relative to each array's own max |want|, with
// the name of the array that has it; it fails the test if the names differ
// or a value is not finite.
//
// An array whose max is below 1e-3 of the largest array's max is measured
// against that 1e-3 instead: such an array can vanish analytically and
// then holds only round-off, which no two summation orders reproduce, as
// every gradient of one residue but those of the output projection and
// the value path does (the softmax over one key is constant).
func gradErrors[T num.Float](t *testing.T, got, want map[string][]T) (worst float64, name string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d gradient arrays, want %d", len(got), len(want))
	}
	keys := make([]string, 0, len(want))
	var top float64
	for k, w := range want {
		keys = append(keys, k)
		top = max(top, maxAbs(w))
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, w := got[k], want[k]
		if len(g) != len(w) {
			t.Fatalf("gradient %s: length %d, want %d", k, len(g), len(w))
		}
		var d float64
		for i := range g {
			e := math.Abs(float64(g[i]) - float64(w[i]))
			if math.IsNaN(e) || math.IsInf(e, 0) {
				t.Fatalf("gradient %s[%d] = %v is not finite", k, i, g[i])
			}
			d = max(d, e)
		}
		if e := d / max(maxAbs(w), 1e-3*top, 1e-300); e >= worst {
			worst, name = e, k
		}
	}
	return worst, name
}

// bitEqual returns the first index where a and b differ, or −1.
func bitEqual[T num.Float](a, b []T) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// ipaGrads holds the input gradients of one backward pass on the host.
type ipaGrads[T num.Float] struct {
	ds, dz, dframes []T
	g               *Params[T]
}

// arrays returns every gradient of r by name, the inputs' with the
// parameters'.
func (r *ipaGrads[T]) arrays() map[string][]T {
	m := ipaArrays(r.g)
	m["ds"], m["dz"], m["dframes"] = r.ds, r.dz, r.dframes
	return m
}

// cpuBackward runs the package's Forward and Backward on host slices and
// returns the output and the gradients for dout.
func cpuBackward[T num.Float](t *testing.T, p *Params[T], s, z, frames, mask, dout []T) ([]T, *ipaGrads[T]) {
	t.Helper()
	n := len(mask)
	var c Cache[T]
	out := make([]T, n*p.Config.CS)
	if err := Forward(p, s, z, backend.AsFrames(frames), mask, out, &c); err != nil {
		t.Fatal(err)
	}
	r := &ipaGrads[T]{ds: make([]T, len(s)), dz: make([]T, len(z)), dframes: make([]T, len(frames)), g: p.ZerosLike()}
	if err := Backward(p, &c, dout, r.ds, r.dz, backend.AsFrames(r.dframes), r.g); err != nil {
		t.Fatal(err)
	}
	return out, r
}

// gradInputs returns the inputs of a gradient test case in T: s, z, frames,
// mask as backendInputs draws them and a cotangent dout ~ N(0, 1).
func gradInputs[T num.Float](tc ipaBackendCase, seed uint64) (s, z, frames, mask, dout []T) {
	s64, z64, f64, m64 := backendInputs(tc.cfg, tc.n, tc.masked, seed)
	d64 := randomInputs(tc.cfg, tc.n, -1, seed+1).cot
	return convert[T](s64), convert[T](z64), convert[T](f64), convert[T](m64), convert[T](d64)
}

func TestIPABackendBackward(t *testing.T) {
	// The composed path differentiates the function that the package's
	// Backward differentiates, with the products and sums grouped
	// differently: separate products for the scalar and point terms of the
	// logits (the CPU's one product of concatenated features), the
	// per-row constant terms of the logits left out (their gradients are
	// zero in exact arithmetic; the CPU carries the round-off of row sums
	// of dl through them), the norms' gradient as (p/|p|)·dn with |p| from
	// the layer norm's 1/√(var + ε) (the CPU's (dn/|p|)·p), ∂L/∂ω_h
	// summed per residue then over residues, the parameter gradients
	// summed chunk by chunk, and the frames' gradient summed per frame map
	// (the CPU sums per point). Each gradient is a sum of at most F = 2112
	// (default configuration) products of O(1) terms, each a few ulp apart
	// between the paths, passed back through the softmax (whose gradient
	// subtracts the row's mean, cancelling a digit or two).
	//
	// float64 (ulp 1.1e-16): measured ≤ 3.2e-15 of each array's max on the
	// CPU backend (trainable_point_weights, a sum over every residue and
	// point of the default configuration; ds, dz and dframes ≤ 9e-16), so
	// 1e-12 keeps over two decades of margin. On CUDA (emulated or real)
	// the kernels differ from the CPU's within the conformance tolerances
	// (products 4e-14 of Σ|a|·|b|, softmax 1e-12, rigid maps 1e-14), and
	// the gradients sum up to F such terms: 1e-11, as for the forward
	// pass. float32 (ulp 6e-8, the CPU's softmax a polynomial exp within
	// 2e-7): measured ≤ 1.3e-6 on the CPU backend; 1e-5 leaves a margin of
	// 8×, and 1e-4 on CUDA allows its summation orders and exp (products
	// 2e-5 of Σ|a|·|b|).
	//
	// The masked residues' keys get weights exp(−1e5) = 0 in both paths,
	// and their own query rows (no mask term) attend to every key; with
	// every residue masked no logit has a mask term.
	t.Run("float64", func(t *testing.T) { testIPABackward[float64](t, 1e-12, 1e-11) })
	t.Run("float32", func(t *testing.T) { testIPABackward[float32](t, 1e-5, 1e-4) })
}

func testIPABackward[T num.Float](t *testing.T, tolCPU, tolCUDA float64) {
	for _, b := range backendtest.Backends[T](t) {
		tol := tolCPU
		if b.Name != "cpu" {
			tol = tolCUDA
		}
		for ci, tc := range ipaBackendCases() {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				p := randomParams[T](tc.cfg, uint64(201+ci))
				s, z, frames, mask, dout := gradInputs[T](tc, uint64(203+ci))
				_, want := cpuBackward(t, p, s, z, frames, mask, dout)

				m, err := NewIPA(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.scratch = true, tc.scratch
				n, cs := tc.n, tc.cfg.CS
				st, zt, ft, mt := backendtest.Put(t, b.K, s), backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, frames), backendtest.Put(t, b.K, mask)
				out, fwd := backendtest.Alloc(t, b.K, n*cs), backendtest.Alloc(t, b.K, n*cs)
				if err := m.Forward(st, zt, ft, mt, n, fwd); err != nil {
					t.Fatal(err)
				}
				var tape IPATape[T]
				defer tape.Free()
				if err := m.ForwardTape(st, zt, ft, mt, n, out, &tape); err != nil {
					t.Fatal(err)
				}
				if tape.host {
					t.Fatal("the tape is of the CPU path")
				}
				if i := bitEqual(backendtest.Get(t, b.K, out), backendtest.Get(t, b.K, fwd)); i >= 0 {
					t.Fatalf("ForwardTape's out[%d] differs from Forward's", i)
				}
				ds, dz, df := backendtest.Alloc(t, b.K, len(s)), backendtest.Alloc(t, b.K, len(z)), backendtest.Alloc(t, b.K, len(frames))
				got := &ipaGrads[T]{g: p.ZerosLike()}
				if err := m.Backward(&tape, backendtest.Put(t, b.K, dout), ds, dz, df, got.g); err != nil {
					t.Fatal(err)
				}
				got.ds, got.dz, got.dframes = backendtest.Get(t, b.K, ds), backendtest.Get(t, b.K, dz), backendtest.Get(t, b.K, df)
				// attention_2d's bias vanishes analytically: the composed path
				// gives 0, the package's Backward the round-off of row sums.
				ga, wa := got.arrays(), want.arrays()
				if maxAbs(ga[biasName]) != 0 {
					t.Errorf("%s: composed gradient %v, want zeros", biasName, ga[biasName])
				}
				t.Logf("%s: Backward's round-off %.2e of the largest gradient", biasName, maxAbs(wa[biasName])/maxAbs(wa["ds"]))
				delete(ga, biasName)
				delete(wa, biasName)
				e, worst := gradErrors(t, ga, wa)
				for _, name := range []string{"ds", "dz", "dframes"} {
					t.Logf("%s error %.2e", name, relErr(ga[name], wa[name]))
				}
				t.Logf("largest error %.2e (%s)", e, worst)
				if e > tol {
					t.Errorf("gradient %s: relative error %.3g vs Backward > %.0e", worst, e, tol)
				}
			})
		}
	}
}

func TestIPABackendBackwardDispatch(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testIPABackwardDispatch[float64](t) })
	t.Run("float32", func(t *testing.T) { testIPABackwardDispatch[float32](t) })
}

// testIPABackwardDispatch checks that ForwardTape and Backward on CPU
// tensors are the package's Forward and Backward, bit for bit, on NewIPA's
// copy of the parameters.
func testIPABackwardDispatch[T num.Float](t *testing.T) {
	k := backend.CPU[T]()
	tc := ipaBackendCases()[0]
	p := randomParams[T](tc.cfg, 211)
	s, z, frames, mask, dout := gradInputs[T](tc, 213)
	wantOut, want := cpuBackward(t, p, s, z, frames, mask, dout)
	m, err := NewIPA(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p.OutputProjection.W[0] += 1 // NewIPA copied the parameters
	out := make([]T, len(wantOut))
	var tape IPATape[T]
	defer tape.Free()
	if err := m.ForwardTape(backend.Host[T](s), backend.Host[T](z), backend.Host[T](frames), backend.Host[T](mask), tc.n, backend.Host[T](out), &tape); err != nil {
		t.Fatal(err)
	}
	if !tape.host {
		t.Error("the tape is not of the CPU path")
	}
	if i := bitEqual(out, wantOut); i >= 0 {
		t.Errorf("out[%d] = %v, Forward gives %v", i, out[i], wantOut[i])
	}
	got := &ipaGrads[T]{ds: make([]T, len(s)), dz: make([]T, len(z)), dframes: make([]T, len(frames)), g: want.g.ZerosLike()}
	if err := m.Backward(&tape, backend.Host[T](dout), backend.Host[T](got.ds), backend.Host[T](got.dz), backend.Host[T](got.dframes), got.g); err != nil {
		t.Fatal(err)
	}
	wa := want.arrays()
	for name, g := range got.arrays() {
		if i := bitEqual(g, wa[name]); i >= 0 {
			t.Errorf("gradient %s[%d] = %v, Backward gives %v", name, i, g[i], wa[name][i])
		}
	}
}

func TestIPABackendBackwardAccumulates(t *testing.T) {
	// Backward adds to ds, dz, dframes and grad: two calls on the same tape
	// give twice one call's values. Each call computes the same values in
	// the same order, but an input gradient receives several contributions
	// (ds six projections, dframes four frame maps, dz two products per
	// chunk), added one by one onto the previous call's sum: doubling
	// differs from that by a few roundings of the array's max, so 1e-13
	// (~500 ulp) is loose for round-off and far below a missing or doubled
	// term. The calls with some gradients left out compute the others with
	// the same kernels, so they give the full call's values (to the same
	// bound).
	t.Run("float64", func(t *testing.T) { testIPAAccumulates[float64](t, 1e-13) })
}

func testIPAAccumulates[T num.Float](t *testing.T, tol float64) {
	for _, b := range backendtest.Backends[T](t) {
		for _, composed := range []bool{false, true} {
			if !composed && b.Name != "cpu" {
				continue // the dispatch path is the CPU backend's
			}
			t.Run(fmt.Sprintf("%s/composed=%v", b.Name, composed), func(t *testing.T) {
				tc := ipaBackendCases()[1] // small, two masked residues, chunks of 2 rows
				p := randomParams[T](tc.cfg, 221)
				s, z, frames, mask, dout := gradInputs[T](tc, 223)
				m, err := NewIPA(b.K, p)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.composed, m.scratch = composed, tc.scratch
				var tape IPATape[T]
				defer tape.Free()
				n := tc.n
				if err := m.ForwardTape(backendtest.Put(t, b.K, s), backendtest.Put(t, b.K, z), backendtest.Put(t, b.K, frames), backendtest.Put(t, b.K, mask), n, backendtest.Alloc(t, b.K, n*tc.cfg.CS), &tape); err != nil {
					t.Fatal(err)
				}
				dt := backendtest.Put(t, b.K, dout)
				alloc := func() [3]backend.Tensor[T] {
					return [3]backend.Tensor[T]{backendtest.Alloc(t, b.K, len(s)), backendtest.Alloc(t, b.K, len(z)), backendtest.Alloc(t, b.K, len(frames))}
				}
				get := func(d [3]backend.Tensor[T], g *Params[T]) map[string][]T {
					if g == nil {
						g = p.ZerosLike()
					}
					r := &ipaGrads[T]{g: g}
					if !backend.Absent(d[0]) {
						r.ds = backendtest.Get(t, b.K, d[0])
					}
					if !backend.Absent(d[1]) {
						r.dz = backendtest.Get(t, b.K, d[1])
					}
					if !backend.Absent(d[2]) {
						r.dframes = backendtest.Get(t, b.K, d[2])
					}
					return r.arrays()
				}
				one, two := alloc(), alloc()
				g1, g2 := p.ZerosLike(), p.ZerosLike()
				for _, c := range []struct {
					d [3]backend.Tensor[T]
					g *Params[T]
				}{{one, g1}, {two, g2}, {two, g2}} {
					if err := m.Backward(&tape, dt, c.d[0], c.d[1], c.d[2], c.g); err != nil {
						t.Fatal(err)
					}
				}
				once, twice := get(one, g1), get(two, g2)
				for name, o := range once {
					checkDoubled(t, name, twice[name], o, tol)
				}
				// Every gradient is optional; each alone equals the full call's.
				if err := m.Backward(&tape, dt, nil, nil, nil, nil); err != nil {
					t.Errorf("Backward with no gradient wanted: %v", err)
				}
				for i, input := range []string{"ds", "dz", "dframes", ""} {
					var d [3]backend.Tensor[T]
					var g *Params[T]
					if input != "" {
						d[i] = alloc()[i]
					} else {
						g = p.ZerosLike()
					}
					if err := m.Backward(&tape, dt, d[0], d[1], d[2], g); err != nil {
						t.Fatal(err)
					}
					alone := get(d, g)
					names := []string{input}
					if input == "" {
						alone = ipaArrays(g)
						names = names[:0]
						for name := range alone {
							names = append(names, name)
						}
					}
					for _, name := range names {
						if e := relErr(alone[name], once[name]); e > tol {
							t.Errorf("%s alone: relative error %.3g vs the full call's", name, e)
						}
					}
				}
			})
		}
	}
}

// checkDoubled checks two ≈ 2·one within tol of max |2·one|.
func checkDoubled[T num.Float](t *testing.T, what string, two, one []T, tol float64) {
	t.Helper()
	want := make([]T, len(one))
	for i, v := range one {
		want[i] = 2 * v
	}
	if maxAbs(want) == 0 && what != "attention_2d//bias" {
		t.Errorf("%s: one Backward call gives zeros", what)
	}
	if e := relErr(two, want); e > tol {
		t.Errorf("%s after two Backward calls: relative error %.3g vs twice one call's", what, e)
	}
}

func TestIPABackendBackwardErrors(t *testing.T) {
	k := backend.CPU[float64]()
	cfg := smallConfig()
	p := randomParams[float64](cfg, 231)
	const n = 4
	cs, cz := cfg.CS, cfg.CZ
	host := func(n int) backend.Tensor[float64] { return backend.Host[float64](make([]float64, n)) }
	tc := ipaBackendCase{cfg: cfg, n: n, masked: []int{1}}
	s, z, frames, mask, dout := gradInputs[float64](tc, 233)
	st, zt, ft, mt := backend.Host[float64](s), backend.Host[float64](z), backend.Host[float64](frames), backend.Host[float64](mask)
	small := tc
	small.n = n - 1
	s3, z3, f3, m3, _ := gradInputs[float64](small, 235)
	badCfg := cfg
	badCfg.CZ++
	shortGrad := p.ZerosLike()
	shortGrad.TrainablePointWeights = shortGrad.TrainablePointWeights[1:]
	for _, composed := range []bool{false, true} {
		name := fmt.Sprintf("composed=%v/", composed)
		m, err := NewIPA(k, p)
		if err != nil {
			t.Fatal(err)
		}
		m.composed = composed
		other, err := NewIPA(k, p)
		if err != nil {
			t.Fatal(err)
		}
		other.composed = composed
		var tape, otherTape, smallTape IPATape[float64]
		if err := m.ForwardTape(st, zt, ft, mt, n, host(n*cs), &tape); err != nil {
			t.Fatal(err)
		}
		if err := other.ForwardTape(st, zt, ft, mt, n, host(n*cs), &otherTape); err != nil {
			t.Fatal(err)
		}
		if err := m.ForwardTape(backend.Host[float64](s3), backend.Host[float64](z3), backend.Host[float64](f3), backend.Host[float64](m3), n-1, host((n-1)*cs), &smallTape); err != nil {
			t.Fatal(err)
		}
		d := backend.Host[float64](dout)
		for _, tc := range []struct {
			name                 string
			tape                 *IPATape[float64]
			dout, ds, dz, dframe backend.Tensor[float64]
			grad                 *Params[float64]
			want                 error
			forwardFn            func() error // instead of Backward, when set
		}{
			{name: "nil tape", dout: d, want: ErrConfig},
			{name: "empty tape", tape: new(IPATape[float64]), dout: d, want: ErrConfig},
			{name: "tape of another module", tape: &otherTape, dout: d, want: ErrConfig},
			{name: "tape of another size", tape: &smallTape, dout: d, want: num.ErrShape},
			{name: "missing dout", tape: &tape, want: num.ErrShape},
			{name: "short dout", tape: &tape, dout: host(n*cs - 1), want: num.ErrShape},
			{name: "long ds", tape: &tape, dout: d, ds: host(n*cs + 1), want: num.ErrShape},
			{name: "short dz", tape: &tape, dout: d, dz: host(n*n*cz - 1), want: num.ErrShape},
			{name: "short dframes", tape: &tape, dout: d, dframe: host(12*n - 1), want: num.ErrShape},
			{name: "grad of another config", tape: &tape, dout: d, grad: randomParams[float64](badCfg, 237), want: ErrConfig},
			{name: "short grad", tape: &tape, dout: d, grad: shortGrad, want: num.ErrShape},
			{name: "ForwardTape/nil tape", want: ErrConfig, forwardFn: func() error {
				return m.ForwardTape(st, zt, ft, mt, n, host(n*cs), nil)
			}},
			{name: "ForwardTape/short out", want: num.ErrShape, forwardFn: func() error {
				var tp IPATape[float64]
				return m.ForwardTape(st, zt, ft, mt, n, host(n*cs-1), &tp)
			}},
			{name: "ForwardTape/long frames", want: num.ErrShape, forwardFn: func() error {
				var tp IPATape[float64]
				return m.ForwardTape(st, zt, host(12*n+1), mt, n, host(n*cs), &tp)
			}},
			{name: "ForwardTape/zero N", want: num.ErrShape, forwardFn: func() error {
				var tp IPATape[float64]
				return m.ForwardTape(host(0), host(0), host(0), host(0), 0, host(0), &tp)
			}},
		} {
			t.Run(name+tc.name, func(t *testing.T) {
				var err error
				if tc.forwardFn != nil {
					err = tc.forwardFn()
				} else {
					err = m.Backward(tc.tape, tc.dout, tc.ds, tc.dz, tc.dframe, tc.grad)
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("error %v, want one wrapping %v", err, tc.want)
				}
			})
		}
		// A failed ForwardTape leaves the tape empty.
		if err := m.ForwardTape(st, zt, ft, mt, n, host(1), &tape); !errors.Is(err, num.ErrShape) {
			t.Errorf("%sForwardTape with a short out: error %v", name, err)
		}
		if err := m.Backward(&tape, d, nil, nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after a failed ForwardTape: error %v, want ErrConfig", name, err)
		}
		// A freed tape holds nothing.
		if err := m.ForwardTape(st, zt, ft, mt, n, host(n*cs), &tape); err != nil {
			t.Fatal(err)
		}
		tape.Free()
		if err := m.Backward(&tape, d, nil, nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward after Free: error %v, want ErrConfig", name, err)
		}
		m.Close()
		if err := m.Backward(&otherTape, d, nil, nil, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%sBackward on a closed module: error %v, want ErrConfig", name, err)
		}
		if err := m.ForwardTape(st, zt, ft, mt, n, host(n*cs), &tape); !errors.Is(err, ErrConfig) {
			t.Errorf("%sForwardTape on a closed module: error %v, want ErrConfig", name, err)
		}
		otherTape.Free()
		smallTape.Free()
		other.Close()
	}

	// The CPU path checks values as the package's Forward and Backward do.
	m, err := NewIPA(k, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tape IPATape[float64]
	defer tape.Free()
	bad := slices.Clone(frames)
	bad[0] = 2 // not a rotation
	if err := m.ForwardTape(st, zt, backend.Host[float64](bad), mt, n, host(n*cs), &tape); !errors.Is(err, rigid.ErrNotRotation) {
		t.Errorf("ForwardTape with a bad rotation: error %v, want one wrapping rigid.ErrNotRotation", err)
	}
	if err := m.ForwardTape(st, zt, ft, mt, n, host(n*cs), &tape); err != nil {
		t.Fatal(err)
	}
	nan := slices.Clone(dout)
	nan[3] = math.NaN()
	if err := m.Backward(&tape, backend.Host[float64](nan), nil, nil, nil, nil); !errors.Is(err, num.ErrNaN) {
		t.Errorf("Backward with a NaN dout: error %v, want one wrapping num.ErrNaN", err)
	}
	// Tensors of another backend with a tape of the CPU path.
	for _, b := range backendtest.Backends[float64](t) {
		if b.Name == "cpu" {
			continue
		}
		if err := m.Backward(&tape, backendtest.Put(t, b.K, dout), nil, nil, nil, nil); !errors.Is(err, backend.ErrForeign) {
			t.Errorf("%s dout with a CPU tape: error %v, want one wrapping backend.ErrForeign", b.Name, err)
		}
	}
	var zeroTape IPATape[float64]
	zeroTape.Free() // a zero tape may be freed
}
