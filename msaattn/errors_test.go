package msaattn

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/refcase"
	"github.com/foldkit/foldkit/params"
)

// withNaN returns a copy of x with x[i] = NaN.
func withNaN(x []float64, i int) []float64 {
	y := append([]float64(nil), x...)
	y[i] = math.NaN()
	return y
}

// errCase is one bad call: want is the sentinel the error must wrap (nil:
// any error), and text a word the message must contain.
type errCase struct {
	name string
	call func() error
	want error
	text string
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		err := tc.call()
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: error %q does not wrap %v", tc.name, err, tc.want)
		case !strings.Contains(err.Error(), tc.text):
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.text)
		case !strings.HasPrefix(err.Error(), "msaattn: "):
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		default:
			t.Logf("%s: %v", tc.name, err)
		}
	}
}

func TestRowBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	m := newRow[float64](t, rng, smallRow)
	s, n, cm, cz := 3, 4, smallRow.MSAChannels, smallRow.PairChannels
	msa, z, mask := randn[float64](rng, s*n*cm), randn[float64](rng, n*n*cz), randMask[float64](rng, s, n)
	fwd := func(msa, z, mask []float64, s, n int) func() error {
		return func() error { _, err := m.Forward(msa, z, mask, s, n, nil); return err }
	}
	var cache RowCache[float64]
	if _, err := m.Forward(msa, z, mask, s, n, &cache); err != nil {
		t.Fatal(err)
	}
	badW := newRow[float64](t, rng, smallRow)
	badW.Params.Attention.KeyW = badW.Params.Attention.KeyW[1:]
	nanW := newRow[float64](t, rng, smallRow)
	nanW.Params.FeatTwoDWeights[3] = math.Inf(1)
	badCfg := &RowAttention[float64]{Config: RowConfig{MSAChannels: 8, PairChannels: 0, Heads: 2, HeadChannels: 3}, Params: m.Params}
	runErrCases(t, []errCase{
		{"short msa", fwd(msa[1:], z, mask, s, n), num.ErrShape, "msa"},
		{"short z", fwd(msa, z[:len(z)-1], mask, s, n), num.ErrShape, "z"},
		{"short mask", fwd(msa, z, mask[1:], s, n), num.ErrShape, "msaMask"},
		{"sizes swapped", fwd(msa, z, mask, n, s), num.ErrShape, ": z has"},
		{"no sequences", fwd(nil, z, nil, 0, n), num.ErrShape, "sequences"},
		{"NaN msa", fwd(withNaN(msa, 5), z, mask, s, n), num.ErrNaN, "msa"},
		{"NaN z", fwd(msa, withNaN(z, 7), mask, s, n), num.ErrNaN, "z"},
		{"NaN mask", fwd(msa, z, withNaN(mask, 2), s, n), num.ErrNaN, "msaMask"},
		{"short parameter", func() error { _, err := badW.Forward(msa, z, mask, s, n, nil); return err }, num.ErrShape, "key_w"},
		{"Inf parameter", func() error { _, err := nanW.Forward(msa, z, mask, s, n, nil); return err }, num.ErrNaN, "feat_2d_weights"},
		{"bad config", func() error { _, err := badCfg.Forward(msa, z, mask, s, n, nil); return err }, nil, "PairChannels"},
		{"nil params", func() error {
			_, err := (&RowAttention[float64]{Config: smallRow}).Forward(msa, z, mask, s, n, nil)
			return err
		}, nil, "Params"},
		{"no cache", func() error { _, err := m.Backward(nil, msa); return err }, nil, "cache"},
		{"short dUpdate", func() error { _, err := m.Backward(&cache, msa[1:]); return err }, num.ErrShape, "dUpdate"},
		{"NaN dUpdate", func() error { _, err := m.Backward(&cache, withNaN(msa, 0)); return err }, num.ErrNaN, "dUpdate"},
		{"new with bad config", func() error { _, err := NewRowParams[float64](RowConfig{}, rng); return err }, nil, "MSAChannels"},
	})
}

func TestColumnBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	m := newColumn[float64](t, rng, smallColumn)
	s, n, cm := 3, 4, smallColumn.MSAChannels
	msa, mask := randn[float64](rng, s*n*cm), randMask[float64](rng, s, n)
	fwd := func(msa, mask []float64, s, n int) func() error {
		return func() error { _, err := m.Forward(msa, mask, s, n, nil); return err }
	}
	var cache ColumnCache[float64]
	if _, err := m.Forward(msa, mask, s, n, &cache); err != nil {
		t.Fatal(err)
	}
	badW := newColumn[float64](t, rng, smallColumn)
	badW.Params.QueryNorm.Offset = nil
	runErrCases(t, []errCase{
		{"short msa", fwd(msa[1:], mask, s, n), num.ErrShape, "msa"},
		{"short mask", fwd(msa, mask[1:], s, n), num.ErrShape, "msaMask"},
		{"no residues", fwd(nil, nil, s, 0), num.ErrShape, "residues"},
		{"NaN msa", fwd(withNaN(msa, 5), mask, s, n), num.ErrNaN, "msa"},
		{"NaN mask", fwd(msa, withNaN(mask, 2), s, n), num.ErrNaN, "msaMask"},
		{"missing parameter", func() error { _, err := badW.Forward(msa, mask, s, n, nil); return err }, num.ErrShape, "query_norm//offset"},
		{"bad config", func() error {
			_, err := (&ColumnAttention[float64]{Config: ColumnConfig{MSAChannels: 8, Heads: -1, HeadChannels: 3}, Params: m.Params}).Forward(msa, mask, s, n, nil)
			return err
		}, nil, "Heads"},
		{"no cache", func() error { _, err := m.Backward(&ColumnCache[float64]{}, msa); return err }, nil, "cache"},
		{"short dUpdate", func() error { _, err := m.Backward(&cache, msa[1:]); return err }, num.ErrShape, "dUpdate"},
	})
}

func TestGlobalColumnBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	m := newGlobal[float64](t, rng, smallGlobal)
	s, n, ce := 3, 4, smallGlobal.MSAChannels
	msa, mask := randn[float64](rng, s*n*ce), randMask[float64](rng, s, n)
	fwd := func(msa, mask []float64, s, n int) func() error {
		return func() error { _, err := m.Forward(msa, mask, s, n, nil); return err }
	}
	var cache GlobalColumnCache[float64]
	if _, err := m.Forward(msa, mask, s, n, &cache); err != nil {
		t.Fatal(err)
	}
	badW := newGlobal[float64](t, rng, smallGlobal)
	badW.Params.KeyW = make([]float64, smallGlobal.MSAChannels*smallGlobal.Heads*smallGlobal.HeadChannels)
	runErrCases(t, []errCase{
		{"short msa", fwd(msa[1:], mask, s, n), num.ErrShape, "msa"},
		{"long mask", fwd(msa, append(mask, 1), s, n), num.ErrShape, "msaMask"},
		{"NaN msa", fwd(withNaN(msa, 5), mask, s, n), num.ErrNaN, "msa"},
		{"NaN mask", fwd(msa, withNaN(mask, 2), s, n), num.ErrNaN, "msaMask"},
		{"key_w with a head axis", func() error { _, err := badW.Forward(msa, mask, s, n, nil); return err }, num.ErrShape, "key_w"},
		{"bad config", func() error {
			_, err := (&GlobalColumnAttention[float64]{Config: GlobalColumnConfig{MSAChannels: 0, Heads: 8, HeadChannels: 8}, Params: m.Params}).Forward(msa, mask, s, n, nil)
			return err
		}, nil, "MSAChannels"},
		{"no cache", func() error { _, err := m.Backward(nil, msa); return err }, nil, "cache"},
		{"NaN dUpdate", func() error { _, err := m.Backward(&cache, withNaN(msa, 3)); return err }, num.ErrNaN, "dUpdate"},
	})
}

// copySet returns a new set with the arrays of cs, leaving out drop and
// renaming nothing.
func copySet(t *testing.T, cs *params.Set, drop string) *params.Set {
	t.Helper()
	out := params.New()
	for _, k := range cs.Keys() {
		if k == drop {
			continue
		}
		a, err := cs.Array(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.PutArray(k, a); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestRunCaseErrors(t *testing.T) {
	cs := refcase.Open(t, "msa_column_attention.npz")
	runErrCases(t, []errCase{
		{"missing parameter", func() error {
			_, err := RunCase(copySet(t, cs, "params/msa_column_attention/attention//gating_b"), "float64", false)
			return err
		}, params.ErrMissing, "gating_b"},
		{"missing input", func() error {
			_, err := RunCase(copySet(t, cs, "in/msa_mask"), "float64", false)
			return err
		}, params.ErrMissing, "msa_mask"},
		{"missing cotangent", func() error {
			_, err := RunCase(copySet(t, cs, "in/cot_msa_update"), "float64", true)
			return err
		}, params.ErrMissing, "cot_msa_update"},
		{"mis-shaped parameter", func() error {
			c := copySet(t, cs, "")
			if err := params.Put(c, "params/msa_column_attention/attention//output_b", []int{255}, make([]float32, 255)); err != nil {
				t.Fatal(err)
			}
			_, err := RunCase(c, "float64", false)
			return err
		}, num.ErrShape, "output_b"},
		{"unused parameter", func() error {
			c := copySet(t, cs, "")
			if err := params.Put(c, "params/msa_column_attention/extra//weights", []int{2}, []float32{1, 2}); err != nil {
				t.Fatal(err)
			}
			_, err := RunCase(c, "float64", false)
			return err
		}, nil, "extra//weights"},
		{"unused input", func() error {
			c := copySet(t, cs, "")
			if err := params.Put(c, "in/z", []int{2}, []float64{1, 2}); err != nil {
				t.Fatal(err)
			}
			_, err := RunCase(c, "float64", false)
			return err
		}, nil, "in/z"},
		{"unknown case", func() error {
			c := copySet(t, cs, "meta")
			if err := params.PutString(c, "meta", `{"case": "msa_transition", "config": {}}`); err != nil {
				t.Fatal(err)
			}
			_, err := RunCase(c, "float64", false)
			return err
		}, nil, "msa_transition"},
		{"other mask bias", func() error {
			c := copySet(t, cs, "meta")
			if err := params.PutString(c, "meta", `{"case": "msa_column_attention", "config": {"c_m": 256, "heads": 8, "c_hidden": 32, "inf": 30000}}`); err != nil {
				t.Fatal(err)
			}
			_, err := RunCase(c, "float64", false)
			return err
		}, nil, "inf"},
		{"bad dtype", func() error { _, err := RunCase(cs, "float16", false); return err }, nil, "float16"},
	})
}
