package recycle

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// toyModel is a recycled model small enough for finite differences: each
// pass embeds the previous state with the recycling embedder and adds fixed
// features, m_1 = f_m + LN(m̂_1), z = f_z + LN(ẑ) + dgram·W + b, and moves
// its Cα (= pseudo-β) positions a fraction of the way to fixed targets
// scaled by the mean of the new first row, so that the positions depend on
// the parameters too. It keeps the cache of its last pass, which is all a
// training step back-propagates through.
type toyModel struct {
	p            *Params[float64]
	n            int
	featM, featZ []float64
	target       []float64
	last         Cache[float64]
	lastPrev     *State[float64]
	calls        int
}

func newToyModel(t testing.TB, seed uint64) *toyModel {
	cfg := smallConfig()
	rng := rand.New(rand.NewPCG(seed, 9))
	const n = 5
	m := &toyModel{p: randomParams[float64](t, cfg, seed), n: n}
	m.featM = randv(rng, n*cfg.CM, 1)
	m.featZ = randv(rng, n*n*cfg.CZ, 1)
	m.target = randv(rng, 3*n, 6)
	return m
}

// step is the model's Step.
func (m *toyModel) step(iter int, prev *State[float64]) (*State[float64], error) {
	m.calls++
	cfg := m.p.Config
	n := m.n
	next := &State[float64]{
		MSAFirstRow: make([]float64, n*cfg.CM),
		Pair:        make([]float64, n*n*cfg.CZ),
	}
	if err := Forward(m.p, prev.MSAFirstRow, prev.Pair, prev.PseudoBeta, next.MSAFirstRow, next.Pair, &m.last); err != nil {
		return nil, err
	}
	m.lastPrev = prev
	var mean float64
	for i := range next.MSAFirstRow {
		next.MSAFirstRow[i] += m.featM[i]
		mean += next.MSAFirstRow[i]
	}
	mean /= float64(len(next.MSAFirstRow))
	for i := range next.Pair {
		next.Pair[i] += m.featZ[i]
	}
	next.PseudoBeta = make([]float64, 3*n)
	for i := range next.PseudoBeta {
		next.PseudoBeta[i] = prev.PseudoBeta[i] + 0.5*(m.target[i]*(1+0.1*mean)-prev.PseudoBeta[i])
	}
	next.CA = append([]float64(nil), next.PseudoBeta...)
	return next, nil
}

// loss is Σ cot·(final m_1, z).
func (m *toyModel) loss(st *State[float64], cotM, cotZ []float64) float64 {
	var l float64
	for i, v := range st.MSAFirstRow {
		l += cotM[i] * v
	}
	for i, v := range st.Pair {
		l += cotZ[i] * v
	}
	return l
}

// TestRunMatchesExplicitCalls checks that Run with N passes returns exactly
// (bit for bit) what N explicit calls of the step give when each is fed a
// copy of the previous output, that it calls the step N times, and that a
// pass cannot reach the previous pass's state through its input (the input
// is a copy).
func TestRunMatchesExplicitCalls(t *testing.T) {
	const passes = 4
	m := newToyModel(t, 1)
	cfg := m.p.Config
	init := NewState[float64](m.n, cfg.CM, cfg.CZ)
	got, sum, err := Run(m.step, init, Options{Iterations: passes})
	if err != nil {
		t.Fatal(err)
	}
	if m.calls != passes || sum.Passes != passes || sum.Converged {
		t.Errorf("%d calls, summary %+v; want %d passes, not converged", m.calls, sum, passes)
	}

	m2 := newToyModel(t, 1)
	st := NewState[float64](m2.n, cfg.CM, cfg.CZ)
	for it := range passes {
		if st, err = m2.step(it, st.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		name      string
		got, want []float64
	}{{"MSAFirstRow", got.MSAFirstRow, st.MSAFirstRow}, {"Pair", got.Pair, st.Pair}, {"PseudoBeta", got.PseudoBeta, st.PseudoBeta}} {
		for i := range f.want {
			if f.got[i] != f.want[i] {
				t.Fatalf("%s[%d]: Run %v, explicit calls %v", f.name, i, f.got[i], f.want[i])
			}
		}
	}

	// A step that writes into its input cannot change what the previous
	// pass returned.
	var outputs []*State[float64]
	vandal := func(it int, prev *State[float64]) (*State[float64], error) {
		for i := range prev.Pair {
			prev.Pair[i] = math.NaN()
		}
		next := NewState[float64](m.n, cfg.CM, cfg.CZ)
		next.Pair[0] = float64(it + 1)
		outputs = append(outputs, next)
		return next, nil
	}
	if _, _, err := Run(vandal, init, Options{Iterations: 3}); err != nil {
		t.Fatal(err)
	}
	for k, o := range outputs {
		if o.Pair[0] != float64(k+1) {
			t.Errorf("pass %d's output was changed by the next pass: Pair[0] = %v", k, o.Pair[0])
		}
	}
	if init.Pair[0] != 0 {
		t.Errorf("init changed: %v", init.Pair[0])
	}
}

// TestStopGradient shows that gradients do not flow through the recycled
// inputs. The gradient a training step computes, Backward through the last
// pass only, matches the finite-difference derivative of the last pass with
// its recycled input held fixed (the stop_gradient semantics) and not that
// of the whole unrolled loop, where a parameter change also moves the
// recycled inputs.
//
// Finite differences with h = 1e-6 in float64 of a layer norm plus smooth
// terms: truncation ~h²·10 and cancellation ~1e-16·|L|/h ≈ 1e-9, so the
// match tolerance 1e-6·(1 + |fd|) is safe; the unrolled derivative differs
// by O(0.1) in relative norm (checked to be > 1e-2).
func TestStopGradient(t *testing.T) {
	const passes = 3
	m := newToyModel(t, 2)
	cfg := m.p.Config
	rng := rand.New(rand.NewPCG(3, 3))
	cotM, cotZ := randv(rng, m.n*cfg.CM, 1), randv(rng, m.n*m.n*cfg.CZ, 1)
	init := NewState[float64](m.n, cfg.CM, cfg.CZ)
	final, _, err := Run(m.step, init, Options{Iterations: passes})
	if err != nil {
		t.Fatal(err)
	}
	g := m.p.ZerosLike()
	dRow, dPair := make([]float64, len(cotM)), make([]float64, len(cotZ))
	if err := Backward(m.p, &m.last, cotM, cotZ, dRow, dPair, g); err != nil {
		t.Fatal(err)
	}
	fixedPrev := m.lastPrev.Clone()

	// Last pass alone, its recycled input fixed.
	lastOnly := func() float64 {
		st, err := m.step(passes-1, fixedPrev.Clone())
		if err != nil {
			t.Fatal(err)
		}
		return m.loss(st, cotM, cotZ)
	}
	// The whole loop, unrolled: parameters act on every pass.
	unrolled := func() float64 {
		st, _, err := Run(m.step, init, Options{Iterations: passes})
		if err != nil {
			t.Fatal(err)
		}
		return m.loss(st, cotM, cotZ)
	}
	if l := m.loss(final, cotM, cotZ); l != lastOnly() {
		t.Fatalf("the last pass on its recycled input gives loss %v, the loop %v", lastOnly(), l)
	}
	const h = 1e-6
	var diff2, norm2 float64
	gt := g.tensors()
	for k, pt := range m.p.tensors() {
		x := *pt.data
		for i := range x {
			x0 := x[i]
			x[i] = x0 + h
			lp, up := lastOnly(), unrolled()
			x[i] = x0 - h
			lm, um := lastOnly(), unrolled()
			x[i] = x0
			fd, fu := (lp-lm)/(2*h), (up-um)/(2*h)
			an := (*gt[k].data)[i]
			if math.Abs(an-fd) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%s[%d]: Backward of the last pass %.10g, finite difference with the recycled input fixed %.10g", pt.name, i, an, fd)
			}
			diff2 += (an - fu) * (an - fu)
			norm2 += fu * fu
		}
	}
	rel := math.Sqrt(diff2 / norm2)
	t.Logf("‖g_last − g_unrolled‖/‖g_unrolled‖ = %.3g", rel)
	if rel < 1e-2 {
		t.Errorf("the unrolled loop's gradient is within %.3g of the last pass's: the test cannot tell them apart", rel)
	}

	// The recycled inputs get gradients from Backward (dRow, dPair), but
	// Run never passes them on: nothing reaches earlier passes. Their being
	// non-zero shows what a missing stop_gradient would have propagated.
	var nz float64
	for _, v := range dPair {
		nz = math.Max(nz, math.Abs(v))
	}
	if nz == 0 {
		t.Error("the gradient with respect to the recycled pair is 0: the test shows nothing")
	}
}

// TestEarlyStop checks the tolerance and the hook: positions that converge
// geometrically stop the loop after the first pass whose CAChange is at
// most the tolerance; every pass is reported once, with the change CAChange
// gives for the two states and Last set on the final one.
func TestEarlyStop(t *testing.T) {
	const n = 6
	rng := rand.New(rand.NewPCG(4, 4))
	target := randv(rng, 3*n, 8)
	noise := randv(rng, 3*n, 2)
	var states []*State[float64]
	step := func(it int, prev *State[float64]) (*State[float64], error) {
		st := NewState[float64](n, 1, 1)
		f := math.Pow(0.3, float64(it))
		for i := range st.CA {
			st.CA[i] = target[i] + f*noise[i]
		}
		states = append(states, st)
		return st, nil
	}
	var reports []Progress
	hook := func(p Progress) error {
		reports = append(reports, p)
		return nil
	}
	const tol = 0.05
	final, sum, err := Run(step, NewState[float64](n, 1, 1), Options{Iterations: 20, Tolerance: tol, Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Converged || sum.Passes >= 20 || len(reports) != sum.Passes || final != states[len(states)-1] {
		t.Fatalf("summary %+v with %d reports: want an early, converged stop reported pass by pass", sum, len(reports))
	}
	for k, r := range reports {
		want := math.NaN()
		if k > 0 {
			want, _ = CAChange(states[k-1].CA, states[k].CA, nil)
		}
		if r.Iter != k || r.Iterations != 20 || !(r.Change == want || math.IsNaN(r.Change) && math.IsNaN(want)) {
			t.Errorf("report %d: %+v, want change %v", k, r, want)
		}
		last := k == len(reports)-1
		if r.Last != last || r.Converged != last {
			t.Errorf("report %d: Last %v, Converged %v, want %v", k, r.Last, r.Converged, last)
		}
		if k > 0 && !last && r.Change <= tol {
			t.Errorf("report %d: change %v ≤ %v but the loop went on", k, r.Change, tol)
		}
	}
	if c := reports[len(reports)-1].Change; !(c <= tol) {
		t.Errorf("stopped with change %v > tolerance %v", c, tol)
	}

	// A hook error stops the loop and is returned.
	stop := errors.New("stop")
	calls := 0
	_, _, err = Run(step, NewState[float64](n, 1, 1), Options{Iterations: 5, Hook: func(Progress) error {
		calls++
		return stop
	}})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("hook error: got %v after %d calls, want the hook's error after 1", err, calls)
	}
}

// TestCAChange checks the criterion on a case worked by hand: moving one of
// three residues changes two of the six ordered off-diagonal distances; with
// the diagonal the mean runs over 9 pairs (AF2 includes it), and a mask
// leaves pairs out.
func TestCAChange(t *testing.T) {
	a := []float64{0, 0, 0, 3, 0, 0, 0, 4, 0}
	b := []float64{0, 0, 0, 6, 0, 0, 0, 4, 0}
	// d01: 3 → 6, d12: 5 → √52; d02 = 4 unchanged.
	d12 := math.Sqrt(52) - 5
	want := math.Sqrt((2*9+2*d12*d12)/(9+1e-10) + 1e-8)
	got, err := CAChange(a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-15 {
		t.Errorf("CAChange = %v, want %v", got, want)
	}
	// Without residue 1 nothing changes: √(0 + 1e-8) = 1e-4.
	got, _ = CAChange(a, b, []float64{1, 0, 1})
	if math.Abs(got-1e-4) > 1e-18 {
		t.Errorf("masked CAChange = %v, want 1e-4", got)
	}
	if _, err := CAChange(a, b[:6], nil); err == nil {
		t.Error("no error for positions of different lengths")
	}
}

// TestRunErrors checks Run's argument errors and that a step's error is
// returned with its pass.
func TestRunErrors(t *testing.T) {
	st := NewState[float32](2, 1, 1)
	ok := func(int, *State[float32]) (*State[float32], error) { return NewState[float32](2, 1, 1), nil }
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"no iterations", func() error { _, _, err := Run(ok, st, Options{}); return err }()},
		{"negative tolerance", func() error { _, _, err := Run(ok, st, Options{Iterations: 1, Tolerance: -1}); return err }()},
		{"nil step", func() error { _, _, err := Run[float32](nil, st, Options{Iterations: 1}); return err }()},
		{"nil state", func() error {
			_, _, err := Run(func(int, *State[float32]) (*State[float32], error) { return nil, nil }, st, Options{Iterations: 1})
			return err
		}()},
	} {
		if !errors.Is(tc.err, ErrConfig) {
			t.Errorf("%s: error %v, want one wrapping ErrConfig", tc.name, tc.err)
		}
	}
	boom := fmt.Errorf("boom")
	_, _, err := Run(func(it int, _ *State[float32]) (*State[float32], error) {
		if it == 2 {
			return nil, boom
		}
		return NewState[float32](2, 1, 1), nil
	}, st, Options{Iterations: 4})
	if !errors.Is(err, boom) {
		t.Errorf("step error: got %v, want it wrapped", err)
	}
}
