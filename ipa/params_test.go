package ipa

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

// TestLoadParams reads the reference case's parameters, checks that every
// parameter key is read, and that Save writes back the same arrays.
func TestLoadParams(t *testing.T) {
	cs := refcase.Open(t, "ipa.npz")
	ps := cs.Sub("params/")
	p, err := LoadParams[float64](ps, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if u := ps.Unused(); len(u) != 0 {
		t.Errorf("parameters not read: %v", u)
	}
	saved := params.New()
	if err := p.Save(saved, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(saved.Keys(), ","), strings.Join(ps.Keys(), ","); got != want {
		t.Errorf("Save wrote keys %s, want %s", got, want)
	}
	q, err := LoadParams[float64](saved, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for k, a := range p.arrays() {
		b := q.arrays()[k]
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: saved and reloaded %v, want %v", ParamNames()[k], i, b[i], a[i])
			}
		}
	}
}

// TestLoadParamsErrors checks that a missing or mis-shaped array is
// reported with its key.
func TestLoadParamsErrors(t *testing.T) {
	p := randomParams[float32](smallConfig(), 1)
	s := params.New()
	if err := p.Save(s, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadParams[float32](s, DefaultConfig()); !errors.Is(err, num.ErrShape) || !strings.Contains(err.Error(), "q_scalar//weights") {
		t.Errorf("loading small parameters as AF2's default: %v, want ErrShape naming q_scalar//weights", err)
	}
	full := params.New()
	for _, k := range s.Keys() {
		if k == pointWeightsName {
			continue
		}
		a, _ := s.Array(k)
		if err := full.PutArray(k, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadParams[float32](full, smallConfig()); !errors.Is(err, params.ErrMissing) || !strings.Contains(err.Error(), "trainable_point_weights") {
		t.Errorf("missing point weights: %v, want ErrMissing naming the key", err)
	}
	bad := smallConfig()
	bad.ValuePoints = 0
	if _, err := LoadParams[float32](s, bad); !errors.Is(err, ErrConfig) {
		t.Errorf("invalid config: %v, want ErrConfig", err)
	}
}

// TestNewParams checks AF2's initialisation: zero output projection (a fresh
// IPA adds nothing), point weights with softplus = 1, zero biases, and
// weights of variance 1/fan_in.
func TestNewParams(t *testing.T) {
	cfg := DefaultConfig()
	p, err := NewParams[float64](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range p.OutputProjection.W {
		if v != 0 {
			t.Fatal("output_projection weights not zero")
		}
	}
	for _, r := range p.TrainablePointWeights {
		if g := num.Softplus(r); math.Abs(g-1) > 1e-15 {
			t.Errorf("softplus(raw) = %v, want 1", g)
		}
	}
	for _, l := range p.linears(cfg) {
		for _, b := range l.p.B {
			if b != 0 {
				t.Fatalf("%s bias not zero", l.name)
			}
		}
		if l.p == &p.OutputProjection {
			continue
		}
		var ss float64
		for _, w := range l.p.W {
			ss += w * w
		}
		v := ss / float64(len(l.p.W)) * float64(l.in)
		// The sample variance over ≥ 1536 draws has relative standard
		// error ≤ √(2/1536) ≈ 0.04: 0.2 is five of them.
		if math.Abs(v-1) > 0.2 {
			t.Errorf("%s: variance × fan_in = %.3f, want 1", l.name, v)
		}
	}
	if _, err := NewParams[float32](Config{}, rand.New(rand.NewPCG(1, 2))); !errors.Is(err, ErrConfig) {
		t.Errorf("zero config: %v, want ErrConfig", err)
	}

	// A fresh IPA outputs zeros, as AF2 intends.
	in := randomInputs(cfg, 5, -1, 3)
	out, err := run(p, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out {
		if v != 0 {
			t.Fatal("fresh IPA output is not zero")
		}
	}
}

// TestRunCaseErrors checks that RunCase refuses unknown dtypes, other
// cases and keys it does not use.
func TestRunCaseErrors(t *testing.T) {
	cs := refcase.Open(t, "ipa.npz")
	if _, err := RunCase(cs, "float16", false); !errors.Is(err, ErrConfig) {
		t.Errorf("dtype float16: %v, want ErrConfig", err)
	}
	extra := params.New()
	for _, k := range cs.Keys() {
		a, _ := cs.Array(k)
		if err := extra.PutArray(k, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := params.Put(extra, "in/extra", []int{1}, []float64{1}); err != nil {
		t.Fatal(err)
	}
	// Without -grad the cotangent may stay unread; in/extra may not.
	if _, err := RunCase(extra, "float64", false); err == nil || !strings.Contains(err.Error(), "in/extra") ||
		strings.Contains(err.Error(), "cot_") {
		t.Errorf("unused key: %v, want an error naming in/extra only", err)
	}
	noMask := params.New()
	for _, k := range cs.Keys() {
		if k == "in/mask" {
			continue
		}
		a, _ := cs.Array(k)
		if err := noMask.PutArray(k, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := RunCase(noMask, "float32", false); !errors.Is(err, params.ErrMissing) || !strings.Contains(err.Error(), "in/mask") {
		t.Errorf("missing in/mask: %v, want ErrMissing naming it", err)
	}
}
