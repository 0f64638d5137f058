package msaattn

import (
	"math/rand/v2"
	"testing"
)

// permTol bounds the float64 error of the permutation properties. Permuting
// rows or residues changes only the order in which the softmax sums, the
// masked means and the layer-norm statistics add up their terms (dozens of
// terms of size ~1), so results differ by a few ulp of values ~1: 1e-12 is
// ~5000 ulp, the bound the issue sets.
const permTol = 1e-12

// The permutation tests attend over more keys than one tile of the
// streaming core holds (128 keys for row and column attention, 1024 for the
// global one), so that the permuted problems are streamed over several tiles
// with an online softmax.

func TestRowPermutation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newRow[float64](t, rng, smallRow)
	s, n, cm, cz := 5, 150, smallRow.MSAChannels, smallRow.PairChannels
	msa, z, mask := randn[float64](rng, s*n*cm), randn[float64](rng, n*n*cz), randMask[float64](rng, s, n)
	mask[3*n+5] = 0
	out, err := m.Forward(msa, z, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, res := rng.Perm(s), rng.Perm(n)
	for _, tc := range []struct {
		name         string
		msa, z, mask []float64
		want         []float64
	}{
		{"sequences", permuteRows(msa, rows, n*cm), z, permuteRows(mask, rows, n), permuteRows(out, rows, n*cm)},
		{"residues with z", permuteResidues(msa, res, s, n, cm), permutePair(z, res, n, cz), permuteResidues(mask, res, s, n, 1), permuteResidues(out, res, s, n, cm)},
	} {
		got, err := m.Forward(tc.msa, tc.z, tc.mask, s, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, tc.want); d > permTol {
			t.Errorf("row attention, permuted %s: max error %.3g, want ≤ %g", tc.name, d, permTol)
		} else {
			t.Logf("row attention, permuted %s: max error %.3g", tc.name, d)
		}
	}
	// Permuting residues without permuting z is not a symmetry: the test
	// above can fail.
	got, err := m.Forward(permuteResidues(msa, res, s, n, cm), z, permuteResidues(mask, res, s, n, 1), s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, permuteResidues(out, res, s, n, cm)); d < 1e-3 {
		t.Errorf("row attention with residues permuted but z not: max change %.3g, expected the pair bias to matter", d)
	}
}

func TestColumnPermutation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := newColumn[float64](t, rng, smallColumn)
	s, n, cm := 150, 7, smallColumn.MSAChannels
	msa, mask := randn[float64](rng, s*n*cm), randMask[float64](rng, s, n)
	out, err := m.Forward(msa, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, res := rng.Perm(s), rng.Perm(n)
	for _, tc := range []struct {
		name            string
		msa, mask, want []float64
	}{
		{"sequences", permuteRows(msa, rows, n*cm), permuteRows(mask, rows, n), permuteRows(out, rows, n*cm)},
		{"residues", permuteResidues(msa, res, s, n, cm), permuteResidues(mask, res, s, n, 1), permuteResidues(out, res, s, n, cm)},
	} {
		got, err := m.Forward(tc.msa, tc.mask, s, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, tc.want); d > permTol {
			t.Errorf("column attention, permuted %s: max error %.3g, want ≤ %g", tc.name, d, permTol)
		} else {
			t.Logf("column attention, permuted %s: max error %.3g", tc.name, d)
		}
	}
}

func TestGlobalColumnPermutation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m := newGlobal[float64](t, rng, smallGlobal)
	s, n, ce := 1100, 5, smallGlobal.MSAChannels
	msa, mask := randn[float64](rng, s*n*ce), randMask[float64](rng, s, n)
	out, err := m.Forward(msa, mask, s, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, res := rng.Perm(s), rng.Perm(n)
	for _, tc := range []struct {
		name            string
		msa, mask, want []float64
	}{
		// Permuting the sequences permutes the per-sequence outputs: their
		// set is invariant (the global query is a mean over sequences).
		{"sequences", permuteRows(msa, rows, n*ce), permuteRows(mask, rows, n), permuteRows(out, rows, n*ce)},
		{"residues", permuteResidues(msa, res, s, n, ce), permuteResidues(mask, res, s, n, 1), permuteResidues(out, res, s, n, ce)},
	} {
		got, err := m.Forward(tc.msa, tc.mask, s, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, tc.want); d > permTol {
			t.Errorf("global column attention, permuted %s: max error %.3g, want ≤ %g", tc.name, d, permTol)
		} else {
			t.Logf("global column attention, permuted %s: max error %.3g", tc.name, d)
		}
	}
}

// TestFullyMasked checks that a sequence or a residue column with every
// position masked gives finite outputs and gradients in float32 and
// float64: its queries see only keys biased by −1e9, which the softmax must
// turn into a uniform average, not 0/0; global attention's masked mean must
// divide by Σ mask + 1e-10, not 0.
func TestFullyMasked(t *testing.T) {
	t.Run("float64", func(t *testing.T) { testFullyMasked[float64](t) })
	t.Run("float32", func(t *testing.T) { testFullyMasked[float32](t) })
}

func testFullyMasked[T float32 | float64](t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s, n := 5, 6
	for _, tc := range []struct {
		name string
		mask func(s, n int) []T
	}{
		{"sequence", func(s, n int) []T { // sequence 2 fully masked
			m := randMask[T](rng, s, n)
			for i := range n {
				m[2*n+i] = 0
			}
			return m
		}},
		{"column", func(s, n int) []T { // residue 4 fully masked
			m := randMask[T](rng, s, n)
			for i := range s {
				m[i*n+4] = 0
			}
			return m
		}},
		{"everything", func(s, n int) []T { return make([]T, s*n) }},
	} {
		mask := tc.mask(s, n)
		check := func(mod string, out []T, grads ...[]T) {
			t.Helper()
			if !allFinite(out) {
				t.Errorf("%s, %s masked: output not finite", mod, tc.name)
			}
			for _, g := range grads {
				if !allFinite(g) {
					t.Errorf("%s, %s masked: gradient not finite", mod, tc.name)
				}
			}
		}

		row := newRow[T](t, rng, smallRow)
		msa, z := randn[T](rng, s*n*smallRow.MSAChannels), randn[T](rng, n*n*smallRow.PairChannels)
		var rc RowCache[T]
		out, err := row.Forward(msa, z, mask, s, n, &rc)
		if err != nil {
			t.Fatal(err)
		}
		g, err := row.Backward(&rc, randn[T](rng, len(out)))
		if err != nil {
			t.Fatal(err)
		}
		check("row attention", out, g.MSA, g.Z)

		col := newColumn[T](t, rng, smallColumn)
		msa = randn[T](rng, s*n*smallColumn.MSAChannels)
		var cc ColumnCache[T]
		out, err = col.Forward(msa, mask, s, n, &cc)
		if err != nil {
			t.Fatal(err)
		}
		gc, err := col.Backward(&cc, randn[T](rng, len(out)))
		if err != nil {
			t.Fatal(err)
		}
		check("column attention", out, gc.MSA)

		glob := newGlobal[T](t, rng, smallGlobal)
		msa = randn[T](rng, s*n*smallGlobal.MSAChannels)
		var gcc GlobalColumnCache[T]
		out, err = glob.Forward(msa, mask, s, n, &gcc)
		if err != nil {
			t.Fatal(err)
		}
		gg, err := glob.Backward(&gcc, randn[T](rng, len(out)))
		if err != nil {
			t.Fatal(err)
		}
		check("global column attention", out, gg.MSA)
	}
}
