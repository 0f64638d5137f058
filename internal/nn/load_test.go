package nn

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

func TestLoadLinear(t *testing.T) {
	s := params.New()
	w := []float32{1, 2, 3, 4, 5, 6}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(params.Put(s, "block/proj//weights", []int{3, 2}, w))
	must(params.Put(s, "block/proj//bias", []int{2}, []float32{0.5, -0.5}))
	must(params.Put(s, "block/nobias//weights", []int{2, 2}, []float64{1, 0, 0, 1}))
	must(params.Put(s, "block/nan//weights", []int{1, 2}, []float32{1, float32(math.NaN())}))
	must(params.Put(s, "block/norm//scale", []int{3}, []float32{1, 2, 3}))
	must(params.Put(s, "block/norm//offset", []int{3}, []float32{0, 0.5, 1}))

	p, err := LoadLinear[float64](s.Sub("block/"), "proj", 3, 2, true)
	must(err)
	if p.In != 3 || p.Out != 2 || !slices.Equal(p.W, []float64{1, 2, 3, 4, 5, 6}) || !slices.Equal(p.B, []float64{0.5, -0.5}) {
		t.Errorf("LoadLinear = %+v", p)
	}
	q, err := LoadLinear[float32](s, "block/nobias", 2, 2, false)
	must(err)
	if q.B != nil || !slices.Equal(q.W, []float32{1, 0, 0, 1}) {
		t.Errorf("LoadLinear without bias = %+v", q)
	}
	ln, err := LoadLayerNorm[float32](s, "block/norm", 3)
	must(err)
	if ln.C != 3 || !slices.Equal(ln.Scale, []float32{1, 2, 3}) || !slices.Equal(ln.Offset, []float32{0, 0.5, 1}) {
		t.Errorf("LoadLayerNorm = %+v", ln)
	}
	if u := s.Unused(); !slices.Equal(u, []string{"block/nan//weights"}) {
		t.Errorf("unused keys %v, want only the NaN array", u)
	}

	for _, tc := range []struct {
		name string
		load func() error
		want error
	}{
		{"wrong shape", func() error { _, err := LoadLinear[float32](s, "block/proj", 2, 3, true); return err }, num.ErrShape},
		{"missing bias", func() error { _, err := LoadLinear[float32](s, "block/nobias", 2, 2, true); return err }, params.ErrMissing},
		{"missing layer", func() error { _, err := LoadLinear[float32](s, "block/proj2", 3, 2, true); return err }, params.ErrMissing},
		{"NaN", func() error { _, err := LoadLinear[float32](s, "block/nan", 1, 2, false); return err }, num.ErrNaN},
		{"layer norm shape", func() error { _, err := LoadLayerNorm[float32](s, "block/norm", 4); return err }, num.ErrShape},
		{"layer norm missing", func() error { _, err := LoadLayerNorm[float32](s, "block/proj", 2); return err }, params.ErrMissing},
	} {
		err := tc.load()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			continue
		}
		if msg := err.Error(); len(msg) < 4 || msg[:4] != "nn: " {
			t.Errorf("%s: error %q does not start with \"nn: \"", tc.name, msg)
		}
	}
}
