package triangle

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// TestErrors checks that bad inputs give errors wrapping the documented
// sentinel, never a panic and never a silently wrong result.
func TestErrors(t *testing.T) {
	const n = 4
	mp := testMulParams[float64](t, smallMul(false), 1)
	ap := testAttParams[float64](t, smallAtt(false), 1)
	z, mask := testPair(n, 6, 1)
	out := make([]float64, len(z))
	nan := func(x []float64, i int) []float64 {
		y := append([]float64(nil), x...)
		y[i] = math.NaN()
		return y
	}
	inf := func(x []float64, i int) []float64 {
		y := append([]float64(nil), x...)
		y[i] = math.Inf(-1)
		return y
	}
	badMul := *mp
	badMul.LeftGate.W = badMul.LeftGate.W[1:]
	badAtt := *ap
	badAtt.FeatTwoDWeights = nil
	cfgMul := *mp
	cfgMul.Config.HiddenChannels = 0
	cfgAtt := *ap
	cfgAtt.Config.ChunkRows = -1

	var mc MulCache[float64]
	var ac AttCache[float64]
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"mul short z", num.ErrShape, func() error { return MulForward(mp, z[1:], mask, n, out, nil) }},
		{"mul short mask", num.ErrShape, func() error { return MulForward(mp, z, mask[1:], n, out, nil) }},
		{"mul short out", num.ErrShape, func() error { return MulForward(mp, z, mask, n, out[1:], nil) }},
		{"mul negative n", num.ErrShape, func() error { return MulForward(mp, z, mask, -1, out, nil) }},
		{"mul NaN in z", num.ErrNaN, func() error { return MulForward(mp, nan(z, 37), mask, n, out, nil) }},
		{"mul Inf in z", num.ErrNaN, func() error { return MulForward(mp, inf(z, 0), mask, n, out, nil) }},
		{"mul NaN in mask", num.ErrNaN, func() error { return MulForward(mp, z, nan(mask, 5), n, out, nil) }},
		{"mul params shape", num.ErrShape, func() error { return MulForward(&badMul, z, mask, n, out, nil) }},
		{"mul config", ErrConfig, func() error { return MulForward(&cfgMul, z, mask, n, out, nil) }},
		{"mul backward without forward", ErrNoForward, func() error { return MulBackward(mp, &mc, z, nil, nil) }},
		{"att short z", num.ErrShape, func() error { return AttForward(ap, z[1:], mask, n, out, nil) }},
		{"att short mask", num.ErrShape, func() error { return AttForward(ap, z, mask[1:], n, out, nil) }},
		{"att NaN in z", num.ErrNaN, func() error { return AttForward(ap, nan(z, 11), mask, n, out, nil) }},
		{"att NaN in mask", num.ErrNaN, func() error { return AttForward(ap, z, nan(mask, 0), n, out, nil) }},
		{"att params shape", num.ErrShape, func() error { return AttForward(&badAtt, z, mask, n, out, nil) }},
		{"att config", ErrConfig, func() error { return AttForward(&cfgAtt, z, mask, n, out, nil) }},
		{"att backward without forward", ErrNoForward, func() error { return AttBackward(ap, &ac, z, nil, nil) }},
		{"mul backward bad dout", num.ErrShape, func() error {
			var c MulCache[float64]
			if err := MulForward(mp, z, mask, n, out, &c); err != nil {
				return err
			}
			return MulBackward(mp, &c, z[1:], nil, nil)
		}},
		{"mul backward NaN dout", num.ErrNaN, func() error {
			var c MulCache[float64]
			if err := MulForward(mp, z, mask, n, out, &c); err != nil {
				return err
			}
			return MulBackward(mp, &c, nan(z, 3), nil, nil)
		}},
		{"mul backward other params", ErrNoForward, func() error {
			var c MulCache[float64]
			if err := MulForward(mp, z, mask, n, out, &c); err != nil {
				return err
			}
			q := *mp
			q.Config.Incoming = true
			return MulBackward(&q, &c, z, nil, nil)
		}},
		{"att backward bad dz", num.ErrShape, func() error {
			var c AttCache[float64]
			if err := AttForward(ap, z, mask, n, out, &c); err != nil {
				return err
			}
			return AttBackward(ap, &c, z, z[2:], nil)
		}},
		{"att backward bad grad", num.ErrShape, func() error {
			var c AttCache[float64]
			if err := AttForward(ap, z, mask, n, out, &c); err != nil {
				return err
			}
			g := ap.ZerosLike()
			g.Attention.OutputB = nil
			return AttBackward(ap, &c, z, nil, g)
		}},
		{"new params nil rng", ErrConfig, func() error { _, err := NewMulParams[float64](smallMul(false), nil); return err }},
		{"new params bad config", ErrConfig, func() error {
			_, err := NewAttParams[float64](AttConfig{PairChannels: 4}, rand.New(rand.NewPCG(1, 1)))
			return err
		}},
		{"load missing", params.ErrMissing, func() error { _, err := LoadMulParams[float64](params.New(), smallMul(false)); return err }},
		{"load wrong shape", num.ErrShape, func() error {
			s := params.New()
			if err := mp.Save(s, ""); err != nil {
				return err
			}
			_, err := LoadMulParams[float64](s, MulConfig{PairChannels: 6, HiddenChannels: 4})
			return err
		}},
		{"runcase dtype", ErrConfig, func() error { _, err := RunCase(params.New(), "float16", false); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.err)
			}
			t.Log(err)
		})
	}
}

// TestSaveLoad checks that Save and Load round-trip both kinds of
// parameters under AF2's names, and that the mask of a failed forward pass
// leaves the cache unusable.
func TestSaveLoad(t *testing.T) {
	mp := testMulParams[float64](t, smallMul(true), 1)
	ap := testAttParams[float64](t, smallAtt(true), 1)
	s := params.New()
	if err := mp.Save(s, "x/"); err != nil {
		t.Fatal(err)
	}
	if err := ap.Save(s, "x/"); err != nil {
		t.Fatal(err)
	}
	mq, err := LoadMulParams[float64](s.Sub("x/"), mp.Config)
	if err != nil {
		t.Fatal(err)
	}
	aq, err := LoadAttParams[float64](s.Sub("x/"), ap.Config)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range mulArrays(mp) {
		if d, _ := maxDiff(mulArrays(mq)[k], v); d != 0 {
			t.Errorf("%s differs after a round trip", k)
		}
	}
	for k, v := range attArrays(ap) {
		if d, _ := maxDiff(attArrays(aq)[k], v); d != 0 {
			t.Errorf("%s differs after a round trip", k)
		}
	}
	if u := s.Unused(); len(u) != 0 {
		t.Errorf("keys not read back: %v", u)
	}
	if !s.Has("x/triangle_multiplication_incoming/center_layer_norm//scale") || !s.Has("x/triangle_attention_ending_node//feat_2d_weights") {
		t.Errorf("AF2 names missing: %v", s.Keys())
	}

	// A forward pass that fails invalidates the cache.
	z, mask := testPair(3, 6, 1)
	out := make([]float64, len(z))
	var c MulCache[float64]
	if err := MulForward(mp, z, mask, 3, out, &c); err != nil {
		t.Fatal(err)
	}
	z[0] = math.NaN()
	if err := MulForward(mp, z, mask, 3, out, &c); err == nil {
		t.Fatal("NaN accepted")
	}
	if err := MulBackward(mp, &c, out, nil, nil); !errors.Is(err, ErrNoForward) {
		t.Fatalf("backward after a failed forward: %v", err)
	}
}
