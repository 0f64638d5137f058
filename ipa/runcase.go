package ipa

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/rigid"
)

// caseMeta is the part of a reference case's meta record that RunCase reads.
type caseMeta struct {
	Case   string `json:"case"`
	Config struct {
		CS          *int     `json:"c_s"`
		CZ          *int     `json:"c_z"`
		Heads       *int     `json:"heads"`
		Channels    *int     `json:"c_hidden"`
		QueryPoints *int     `json:"query_points"`
		ValuePoints *int     `json:"value_points"`
		Eps         *float64 `json:"eps"`
		Inf         *float64 `json:"inf"`
	} `json:"config"`
}

// config returns the case's configuration, AF2's default for absent fields.
func (m *caseMeta) config() Config {
	c := DefaultConfig()
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.CS, m.Config.CS)
	set(&c.CZ, m.Config.CZ)
	set(&c.Heads, m.Config.Heads)
	set(&c.Channels, m.Config.Channels)
	set(&c.QueryPoints, m.Config.QueryPoints)
	set(&c.ValuePoints, m.Config.ValuePoints)
	if m.Config.Eps != nil {
		c.Eps = *m.Config.Eps
	}
	if m.Config.Inf != nil {
		c.Inf = *m.Config.Inf
	}
	return c
}

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
	switch dtype {
	case "float32":
		return runCase[float32](cs, grad)
	case "float64":
		return runCase[float64](cs, grad)
	}
	return nil, fmt.Errorf("ipa: RunCase: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

func runCase[T num.Float](cs *params.Set, grad bool) (*params.Set, error) {
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("ipa: RunCase: %w", err)
	}
	var m caseMeta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return nil, fmt.Errorf("ipa: RunCase: meta: %v: %w", err, ErrConfig)
	}
	if m.Case != "ipa" {
		return nil, fmt.Errorf("ipa: RunCase: case %q, want \"ipa\": %w", m.Case, ErrConfig)
	}
	cfg := m.config()
	p, err := LoadParams[T](cs.Sub("params/"), cfg)
	if err != nil {
		return nil, err
	}
	shape, err := cs.Shape("in/s")
	if err != nil {
		return nil, fmt.Errorf("ipa: RunCase: %w", err)
	}
	if len(shape) != 2 {
		return nil, fmt.Errorf("ipa: RunCase: in/s has shape %v, want [N %d]: %w", shape, cfg.CS, num.ErrShape)
	}
	n := shape[0]
	in := cs.Sub("in/")
	get := func(name string, shape ...int) ([]T, error) {
		x, err := params.Get[T](cs, "in/"+name, shape...)
		if err != nil {
			return nil, fmt.Errorf("ipa: RunCase: %w", err)
		}
		return x, nil
	}
	s, err := get("s", n, cfg.CS)
	if err != nil {
		return nil, err
	}
	z, err := get("z", n, n, cfg.CZ)
	if err != nil {
		return nil, err
	}
	rot, err := get("rot", n, 3, 3)
	if err != nil {
		return nil, err
	}
	trans, err := get("trans", n, 3)
	if err != nil {
		return nil, err
	}
	mask, err := get("mask", n)
	if err != nil {
		return nil, err
	}
	var cot []T
	if grad {
		if cot, err = get("cot_s_update", n, cfg.CS); err != nil {
			return nil, err
		}
	} else {
		for _, k := range in.Keys() {
			if strings.HasPrefix(k, "cot_") {
				in.MarkUsed(k)
			}
		}
	}
	var unused []string
	for _, k := range cs.Unused() {
		if strings.HasPrefix(k, "params/") || strings.HasPrefix(k, "in/") {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return nil, fmt.Errorf("ipa: RunCase: keys not used by IPA: %s: %w", strings.Join(unused, ", "), ErrConfig)
	}

	frames := make([]rigid.Rigid[T], n)
	for i := range frames {
		copy(frames[i].Rot[:], rot[9*i:])
		copy(frames[i].Trans[:], trans[3*i:])
	}
	out := make([]T, n*cfg.CS)
	var cache Cache[T]
	if err := Forward(p, s, z, frames, mask, out, &cache); err != nil {
		return nil, err
	}
	res := params.New()
	if err := params.Put(res, "out/s_update", []int{n, cfg.CS}, out); err != nil {
		return nil, err
	}
	if !grad {
		return res, nil
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
	for _, x := range []struct {
		name  string
		shape []int
		data  []T
	}{
		{"grad/in/s", []int{n, cfg.CS}, ds},
		{"grad/in/z", []int{n, n, cfg.CZ}, dz},
		{"grad/in/rot", []int{n, 3, 3}, drot},
		{"grad/in/trans", []int{n, 3}, dtrans},
	} {
		if err := params.Put(res, x.name, x.shape, x.data); err != nil {
			return nil, err
		}
	}
	if err := g.Save(res, "grad/params/"); err != nil {
		return nil, err
	}
	return res, nil
}
