package ipa

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/rigid"
)

// RunCase runs the reference case cs (a whole case file: "meta" with case
// "ipa" and the configuration, AF2-named parameters under "params/", inputs
// "in/s" [N, c_s], "in/z" [N, N, c_z], "in/rot" [N, 3, 3], "in/trans" [N, 3],
// "in/mask" [N]) in dtype "float32" or "float64" and returns a new set with
// "out/s_update" [N, c_s]. With grad it also reads the cotangent
// "in/cot_s_update" and returns the gradients of Σ out·cot: "grad/in/s",
// "grad/in/z", "grad/in/rot" (the nine entries unconstrained), "grad/in/trans"
// and "grad/params/<name>" for every parameter.
//
// The error names the key for a missing or mis-shaped array, and RunCase
// fails if any "params/" or "in/" array is left unread (cotangents are
// allowed to stay unread when grad is false).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	return RunCaseOn(cs, dtype, grad, backend.Pair{})
}

// RunCaseOn is RunCase with the forward pass on the backend of k for dtype
// (IPA on that backend); with no backend for dtype in k it is RunCase.
// Gradients are computed on the CPU only: grad with a backend gives an
// error wrapping casekit.ErrGradBackend.
func RunCaseOn(cs *params.Set, dtype string, grad bool, k backend.Pair) (*params.Set, error) {
	c := casekit.New(cs, "ipa: RunCase", ErrConfig)
	type runner func(*casekit.Case, bool) (*params.Set, error)
	run, err := casekit.ByDType[runner](c, dtype,
		func(c *casekit.Case, grad bool) (*params.Set, error) {
			return runCase(c, grad, backend.For[float32](k))
		},
		func(c *casekit.Case, grad bool) (*params.Set, error) {
			return runCase(c, grad, backend.For[float64](k))
		})
	if err != nil {
		return nil, err
	}
	return run(c, grad)
}

func runCase[T num.Float](c *casekit.Case, grad bool, k backend.Kernels[T]) (*params.Set, error) {
	if grad && k != nil {
		return nil, c.Fail(fmt.Errorf("on %s: %w", k.Name(), casekit.ErrGradBackend))
	}
	m, err := c.Meta()
	if err != nil {
		return nil, err
	}
	c.CheckCase(m.Case, "ipa")
	cfg := DefaultConfig()
	cfg.CS, cfg.CZ = m.IntOr("c_s", cfg.CS), m.IntOr("c_z", cfg.CZ)
	cfg.Heads, cfg.Channels = m.IntOr("heads", cfg.Heads), m.IntOr("c_hidden", cfg.Channels)
	cfg.QueryPoints, cfg.ValuePoints = m.IntOr("query_points", cfg.QueryPoints), m.IntOr("value_points", cfg.ValuePoints)
	cfg.Eps, cfg.Inf = m.FloatOr("eps", cfg.Eps), m.FloatOr("inf", cfg.Inf)
	if err := c.Err(); err != nil {
		return nil, err
	}
	p, err := LoadParams[T](c.In.Sub("params/"), cfg)
	if err != nil {
		return nil, err
	}
	shape, err := c.Dims("in/s", casekit.Any, cfg.CS)
	if err != nil {
		return nil, err
	}
	n := shape[0]
	s := casekit.Get[T](c, "in/s", n, cfg.CS)
	z := casekit.Get[T](c, "in/z", n, n, cfg.CZ)
	rot := casekit.Get[T](c, "in/rot", n, 3, 3)
	trans := casekit.Get[T](c, "in/trans", n, 3)
	mask := casekit.Get[T](c, "in/mask", n)
	var cot []T
	if grad {
		cot = casekit.Get[T](c, "in/cot_s_update", n, cfg.CS)
	}
	if err := c.CheckUsed(grad); err != nil {
		return nil, err
	}

	frames := make([]rigid.Rigid[T], n)
	for i := range frames {
		copy(frames[i].Rot[:], rot[9*i:])
		copy(frames[i].Trans[:], trans[3*i:])
	}
	out := make([]T, n*cfg.CS)
	var cache Cache[T]
	if k != nil {
		d, err := NewIPA(k, p)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		res, err := backend.Run(k, [][]T{s, z, backend.FrameData(frames), mask}, []int{len(out)}, func(in, o []backend.Tensor[T]) error {
			return d.Forward(in[0], in[1], in[2], in[3], n, o[0])
		})
		if err != nil {
			return nil, err
		}
		copy(out, res[0])
	} else if err := Forward(p, s, z, frames, mask, out, &cache); err != nil {
		return nil, err
	}
	casekit.Put(c, "out/s_update", []int{n, cfg.CS}, out)
	if !grad {
		return c.Result()
	}
	ds := make([]T, len(s))
	dz := make([]T, len(z))
	dframes := make([]rigid.Rigid[T], n)
	g := p.ZerosLike()
	if err := Backward(p, &cache, cot, ds, dz, dframes, g); err != nil {
		return nil, err
	}
	drot := make([]T, 9*n)
	dtrans := make([]T, 3*n)
	for i, f := range dframes {
		copy(drot[9*i:], f.Rot[:])
		copy(dtrans[3*i:], f.Trans[:])
	}
	casekit.Put(c, "grad/in/s", []int{n, cfg.CS}, ds)
	casekit.Put(c, "grad/in/z", []int{n, n, cfg.CZ}, dz)
	casekit.Put(c, "grad/in/rot", []int{n, 3, 3}, drot)
	casekit.Put(c, "grad/in/trans", []int{n, 3}, dtrans)
	if err := g.Save(c.Out, "grad/params/"); err != nil {
		return nil, err
	}
	return c.Result()
}
