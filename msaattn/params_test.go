package msaattn

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// paramsCase gives one module's parameter functions, in float64, behind a
// common signature.
type paramsCase struct {
	name   string
	prefix string
	names  []string
	// random returns random parameters: their listing, Save and ZerosLike's
	// listing.
	random func(rng *rand.Rand) (ts []Tensor[float64], save func(*params.Set, string) error, zeros func() []Tensor[float64])
	// load reads parameters from s (narrowed to the module) and lists them.
	load func(s *params.Set) ([]Tensor[float64], error)
}

var paramsCases = []paramsCase{
	{
		name: "row", prefix: RowPrefix, names: RowParamNames(),
		random: func(rng *rand.Rand) ([]Tensor[float64], func(*params.Set, string) error, func() []Tensor[float64]) {
			p := must(NewRowParams[float64](smallRow, rng))
			randomize(rng, p.tensors(smallRow))
			return p.Tensors(smallRow), p.Save, func() []Tensor[float64] { return p.ZerosLike().Tensors(smallRow) }
		},
		load: func(s *params.Set) ([]Tensor[float64], error) {
			p, err := LoadRowParams[float64](s, smallRow)
			if err != nil {
				return nil, err
			}
			return p.Tensors(smallRow), nil
		},
	},
	{
		name: "column", prefix: ColumnPrefix, names: ColumnParamNames(),
		random: func(rng *rand.Rand) ([]Tensor[float64], func(*params.Set, string) error, func() []Tensor[float64]) {
			p := must(NewColumnParams[float64](smallColumn, rng))
			randomize(rng, p.tensors(smallColumn))
			return p.Tensors(smallColumn), p.Save, func() []Tensor[float64] { return p.ZerosLike().Tensors(smallColumn) }
		},
		load: func(s *params.Set) ([]Tensor[float64], error) {
			p, err := LoadColumnParams[float64](s, smallColumn)
			if err != nil {
				return nil, err
			}
			return p.Tensors(smallColumn), nil
		},
	},
	{
		name: "global", prefix: GlobalColumnPrefix, names: GlobalColumnParamNames(),
		random: func(rng *rand.Rand) ([]Tensor[float64], func(*params.Set, string) error, func() []Tensor[float64]) {
			p := must(NewGlobalColumnParams[float64](smallGlobal, rng))
			randomize(rng, p.tensors(smallGlobal))
			return p.Tensors(smallGlobal), p.Save, func() []Tensor[float64] { return p.ZerosLike().Tensors(smallGlobal) }
		},
		load: func(s *params.Set) ([]Tensor[float64], error) {
			p, err := LoadGlobalColumnParams[float64](s, smallGlobal)
			if err != nil {
				return nil, err
			}
			return p.Tensors(smallGlobal), nil
		},
	},
}

// TestSaveLoad checks that Tensors lists the arrays in ParamNames order,
// that Save writes exactly those names (with the prefix) and that the Load
// function reads the same values back; and that ZerosLike has the same
// shapes, all zero.
func TestSaveLoad(t *testing.T) {
	const prefix = "some/stack/"
	for _, tc := range paramsCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			ts, save, zeros := tc.random(rng)
			names := make([]string, len(ts))
			for i, x := range ts {
				names[i] = x.Name
			}
			if !slices.Equal(names, tc.names) {
				t.Fatalf("Tensors names %q, want ParamNames %q", names, tc.names)
			}
			s := params.New()
			if err := save(s, prefix); err != nil {
				t.Fatal(err)
			}
			keys := s.Keys()
			want := make([]string, len(tc.names))
			for i, n := range tc.names {
				want[i] = prefix + n
			}
			slices.Sort(keys)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Fatalf("Save wrote %q, want %q", keys, want)
			}
			back, err := tc.load(s.Sub(prefix + tc.prefix))
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range ts {
				// Save and Load copy the values: they must come back exactly.
				if !slices.Equal(*back[i].Data, *x.Data) || !slices.Equal(back[i].Shape, x.Shape) {
					t.Errorf("%s does not come back from Save and Load", x.Name)
				}
			}
			if unused := s.Unused(); len(unused) != 0 {
				t.Errorf("Load left %q unread", unused)
			}
			for i, z := range zeros() {
				if z.Name != ts[i].Name || !slices.Equal(z.Shape, ts[i].Shape) || len(*z.Data) != len(*ts[i].Data) {
					t.Fatalf("ZerosLike: %s %v with %d elements, want %s %v with %d", z.Name, z.Shape, len(*z.Data), ts[i].Name, ts[i].Shape, len(*ts[i].Data))
				}
				if slices.ContainsFunc(*z.Data, func(v float64) bool { return v != 0 }) {
					t.Errorf("ZerosLike: %s is not zero", z.Name)
				}
			}
		})
	}
}

// TestSaveBadParams checks that Save rejects an array of the wrong length
// and a non-finite value, naming the array.
func TestSaveBadParams(t *testing.T) {
	for _, tc := range paramsCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 7))
			ts, save, _ := tc.random(rng)
			last := ts[len(ts)-1]
			x := *last.Data
			*last.Data = x[:len(x)-1]
			if err := save(params.New(), ""); !errors.Is(err, num.ErrShape) {
				t.Errorf("short %s: got %v, want %v", last.Name, err, num.ErrShape)
			}
			*last.Data = x
			x[0] = math.NaN()
			if err := save(params.New(), ""); !errors.Is(err, num.ErrNaN) {
				t.Errorf("NaN in %s: got %v, want %v", last.Name, err, num.ErrNaN)
			}
		})
	}
}
