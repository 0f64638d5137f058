package recycle

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/internal/num"
)

// State is what one pass of an AF2 model hands to the next (supplement
// Algorithm 2: the first MSA row m̂_1i, the pair representation ẑ_ij and the
// pseudo-β positions x̂_i of the previous cycle), together with the Cα
// positions that the early-stop criterion compares. Every field is a plain
// row-major slice owned by the State.
type State[T num.Float] struct {
	// MSAFirstRow is the first row of the MSA representation, [N, c_m].
	MSAFirstRow []T
	// Pair is the pair representation, [N, N, c_z].
	Pair []T
	// PseudoBeta holds the pseudo-β positions, [N, 3] in Å (Cβ, or Cα for
	// glycine).
	PseudoBeta []T
	// CA holds the Cα positions, [N, 3] in Å. Only the early-stop
	// criterion reads it; it may be nil when Options.Tolerance is 0.
	CA []T
}

// NewState returns the state AF2 feeds to its first pass: zeros for the
// first MSA row [N, c_m], the pair representation [N, N, c_z], and the
// pseudo-β and Cα positions [N, 3].
func NewState[T num.Float](n, cm, cz int) *State[T] {
	n, cm, cz = max(n, 0), max(cm, 0), max(cz, 0)
	return &State[T]{
		MSAFirstRow: make([]T, n*cm),
		Pair:        make([]T, n*n*cz),
		PseudoBeta:  make([]T, n*3),
		CA:          make([]T, n*3),
	}
}

// Clone returns a copy of s that shares no memory with it (nil fields stay
// nil). Run hands each pass a clone of the previous pass's output: AF2's
// stop_gradient between cycles, in a setting where gradients are computed
// by explicit backward passes, means that the next pass sees the values as
// constants and that nothing it does reaches the previous pass.
func (s *State[T]) Clone() *State[T] {
	if s == nil {
		return nil
	}
	cp := func(x []T) []T {
		if x == nil {
			return nil
		}
		return append([]T(nil), x...)
	}
	return &State[T]{MSAFirstRow: cp(s.MSAFirstRow), Pair: cp(s.Pair), PseudoBeta: cp(s.PseudoBeta), CA: cp(s.CA)}
}

// Step runs one pass of a recycled model: given the state recycled from the
// previous pass (NewState's zeros, or Run's init, at iter 0), it returns the
// state to recycle into the next one. iter counts passes from 0. A Step may
// keep any other output of the pass (structure, confidences, a cache for a
// backward pass) in its closure; the state it receives is its own to keep.
type Step[T num.Float] func(iter int, prev *State[T]) (*State[T], error)

// Options control Run.
type Options struct {
	// Iterations is the largest number of passes, at least 1. AF2 runs
	// num_recycle + 1 = 4 passes at inference.
	Iterations int
	// Tolerance, when positive, stops the loop after the first pass whose
	// Cα distance change from the previous pass (CAChange, in Å) is at
	// most Tolerance, as ColabFold does (recycle_early_stop_tolerance, the
	// criterion of AF2 v2.3's multimer recycling loop). Zero runs all
	// Iterations passes.
	Tolerance float64
	// SeqMask, when not nil, is the residue mask [N] of the criterion:
	// only pairs of present residues (mask 1) are compared. nil counts
	// every residue.
	SeqMask []float64
	// Hook, when not nil, is called after every pass, for progress output;
	// an error it returns stops Run and is returned.
	Hook func(Progress) error
}

// Progress reports one finished pass to Options.Hook.
type Progress struct {
	// Iter is the index of the pass that just finished, from 0.
	Iter int
	// Iterations is Options.Iterations, the largest number of passes.
	Iterations int
	// Change is the Cα distance change from the previous pass (CAChange,
	// Å), or NaN for the first pass or when no Cα positions are given.
	Change float64
	// Converged is true when Change is at most Options.Tolerance, which
	// ends the loop.
	Converged bool
	// Last is true for the final pass: the last of Iterations, or a
	// converged one.
	Last bool
}

// Summary describes a finished Run.
type Summary struct {
	// Passes is the number of passes run.
	Passes int
	// Converged reports whether the loop stopped early on the tolerance.
	Converged bool
	// Changes holds the Cα distance change after each pass (NaN where it
	// was not computed, always for the first pass).
	Changes []float64
}

// Run runs step up to opt.Iterations times (supplement Algorithm 2, the
// recycling loop): pass 0 receives a clone of init, and pass k > 0 a clone of
// pass k − 1's output, so that every pass sees its recycled inputs as
// constants (AF2's stop_gradient) and the caller can back-propagate through
// the last pass alone, as AF2 trains. Running N passes gives exactly what N
// explicit calls of step, each fed a clone of the previous output, give.
//
// When opt.Tolerance is positive the loop ends early after a pass whose Cα
// change (CAChange of the two states' CA fields) is at most the tolerance.
// opt.Hook, when set, sees every pass.
//
// Run returns the last pass's state. The error wraps ErrConfig for
// Iterations < 1, a negative or NaN Tolerance, or a nil step or init, and
// otherwise is the first error of step or the hook, with the pass index.
func Run[T num.Float](step Step[T], init *State[T], opt Options) (*State[T], Summary, error) {
	var sum Summary
	if step == nil || init == nil {
		return nil, sum, fmt.Errorf("recycle: Run needs a step and an initial state: %w", ErrConfig)
	}
	if opt.Iterations < 1 {
		return nil, sum, fmt.Errorf("recycle: Run with %d iterations, want ≥ 1: %w", opt.Iterations, ErrConfig)
	}
	if !(opt.Tolerance >= 0) || math.IsInf(opt.Tolerance, 0) {
		return nil, sum, fmt.Errorf("recycle: Run with tolerance %v, want finite and ≥ 0: %w", opt.Tolerance, ErrConfig)
	}
	prev := init
	for it := range opt.Iterations {
		next, err := step(it, prev.Clone())
		if err != nil {
			return nil, sum, fmt.Errorf("recycle: pass %d: %w", it, err)
		}
		if next == nil {
			return nil, sum, fmt.Errorf("recycle: pass %d returned no state: %w", it, ErrConfig)
		}
		change := math.NaN()
		if it > 0 && next.CA != nil && prev.CA != nil {
			change, err = CAChange(prev.CA, next.CA, opt.SeqMask)
			if err != nil {
				return nil, sum, fmt.Errorf("recycle: pass %d: %w", it, err)
			}
		}
		sum.Passes++
		sum.Changes = append(sum.Changes, change)
		converged := opt.Tolerance > 0 && change <= opt.Tolerance
		sum.Converged = converged
		last := converged || it == opt.Iterations-1
		if opt.Hook != nil {
			if err := opt.Hook(Progress{Iter: it, Iterations: opt.Iterations, Change: change, Converged: converged, Last: last}); err != nil {
				return nil, sum, fmt.Errorf("recycle: hook after pass %d: %w", it, err)
			}
		}
		prev = next
		if last {
			break
		}
	}
	return prev, sum, nil
}

// CAChange returns the change between two sets of Cα positions [N, 3] (Å)
// that ColabFold and AF2 v2.3 use to stop recycling early: the root mean
// square, over residue pairs (i, j) with both residues present, of the
// change of their distance,
//
//	√( Σ_ij m_i m_j (d_ij − d'_ij)² / (Σ_ij m_i m_j + 1e-10) + 1e-8 ),
//
// with d and d' the Cα distance matrices of prev and next. The pairs (i, i)
// are included (they contribute zero), as in AF2. mask [N] may be nil for
// all residues. The sum is taken in float64 row by row, so no N×N matrix is
// formed. The error wraps num.ErrShape for lengths that do not match.
func CAChange[T num.Float](prev, next []T, mask []float64) (float64, error) {
	if len(prev) != len(next) || len(prev)%3 != 0 {
		return 0, fmt.Errorf("recycle: Cα positions have %d and %d elements, want two [N 3]: %w", len(prev), len(next), num.ErrShape)
	}
	n := len(prev) / 3
	if mask != nil && len(mask) != n {
		return 0, fmt.Errorf("recycle: Cα mask has %d elements, want [N] = %d: %w", len(mask), n, num.ErrShape)
	}
	m := func(i int) float64 {
		if mask == nil {
			return 1
		}
		return mask[i]
	}
	dist := func(x []T, i, j int) float64 {
		a := float64(x[3*i]) - float64(x[3*j])
		b := float64(x[3*i+1]) - float64(x[3*j+1])
		c := float64(x[3*i+2]) - float64(x[3*j+2])
		return math.Sqrt(a*a + b*b + c*c)
	}
	var sn, sd float64
	for i := range n {
		mi := m(i)
		if mi == 0 {
			continue
		}
		var rn, rd float64
		for j := range n {
			w := mi * m(j)
			if w == 0 {
				continue
			}
			d := dist(prev, i, j) - dist(next, i, j)
			rn += w * d * d
			rd += w
		}
		sn += rn
		sd += rd
	}
	return math.Sqrt(sn/(sd+1e-10) + 1e-8), nil
}
