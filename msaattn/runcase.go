package msaattn

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// Case names (meta.case of a reference case) that RunCase runs; NewBench
// takes the same names.
const (
	CaseRow          = "msa_row_attention"
	CaseColumn       = "msa_column_attention"
	CaseGlobalColumn = "msa_column_global_attention"
)

// caseMeta is the part of a case's JSON meta that RunCase reads.
type caseMeta struct {
	Case   string         `json:"case"`
	Config map[string]any `json:"config"`
}

// RunCase runs the module a reference case names (meta.case is one of
// CaseRow, CaseColumn, CaseGlobalColumn) on the case's parameters
// (params/<module>/...) and inputs (in/msa, in/msa_mask and, for row
// attention, in/z) in dtype "float32" or "float64", and returns a new set
// with out/msa_update. With grad it also returns the gradients of
// Σ out/msa_update ⊙ in/cot_msa_update: grad/in/msa (and grad/in/z) and
// grad/params/<module>/<name> for every parameter, under the case's names.
//
// The module's sizes come from meta.config (c_m, c_z, c_e, heads, c_hidden)
// and from the shape of in/msa. RunCase fails on a missing or mis-shaped
// key, on a configuration it cannot honour (a mask bias other than 1e9 or a
// mask-mean epsilon other than 1e-10), and on any params/ or in/ key it did
// not use (in/cot_* is only used with grad).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("msaattn: %w", err)
	}
	var meta caseMeta
	if err := json.Unmarshal([]byte(str), &meta); err != nil {
		return nil, fmt.Errorf("msaattn: case meta: %w", err)
	}
	var out *params.Set
	switch dtype {
	case "float32":
		out, err = runCase[float32](cs, meta, grad)
	case "float64":
		out, err = runCase[float64](cs, meta, grad)
	default:
		return nil, fmt.Errorf("msaattn: dtype %q, want float32 or float64", dtype)
	}
	if err != nil {
		return nil, err
	}
	var unused []string
	for _, k := range cs.Unused() {
		if strings.HasPrefix(k, "params/") || (strings.HasPrefix(k, "in/") && (grad || !strings.HasPrefix(k, "in/cot_"))) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return nil, fmt.Errorf("msaattn: case %s: keys not used by the module: %s", meta.Case, strings.Join(unused, ", "))
	}
	return out, nil
}

// configInt returns meta.config[key] as a positive integer.
func (m caseMeta) configInt(key string) (int, error) {
	v, ok := m.Config[key]
	if !ok {
		return 0, fmt.Errorf("msaattn: case %s: meta.config has no %q", m.Case, key)
	}
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) || f < 1 {
		return 0, fmt.Errorf("msaattn: case %s: meta.config.%s = %v, want a positive integer", m.Case, key, v)
	}
	return int(f), nil
}

// configWant fails unless meta.config[key], when present, equals want.
func (m caseMeta) configWant(key string, want float64) error {
	if v, ok := m.Config[key]; ok && v != want {
		return fmt.Errorf("msaattn: case %s: meta.config.%s = %v, but the module uses %v", m.Case, key, v, want)
	}
	return nil
}

// configInts reads several integer keys of meta.config.
func (m caseMeta) configInts(keys ...string) ([]int, error) {
	vals := make([]int, len(keys))
	for i, k := range keys {
		v, err := m.configInt(k)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	return vals, nil
}

func runCase[T num.Float](cs *params.Set, meta caseMeta, grad bool) (*params.Set, error) {
	if err := meta.configWant("inf", maskBias); err != nil {
		return nil, err
	}
	sh, err := cs.Shape("in/msa")
	if err != nil {
		return nil, fmt.Errorf("msaattn: %w", err)
	}
	if len(sh) != 3 {
		return nil, fmt.Errorf("msaattn: case %s: in/msa has shape %v, want [S N c]: %w", meta.Case, sh, num.ErrShape)
	}
	s, n, c := sh[0], sh[1], sh[2]
	get := func(name string, shape ...int) ([]T, error) {
		x, err := params.Get[T](cs, name, shape...)
		if err != nil {
			return nil, fmt.Errorf("msaattn: case %s: %w", meta.Case, err)
		}
		return x, nil
	}
	msa, err := get("in/msa", s, n, c)
	if err != nil {
		return nil, err
	}
	mask, err := get("in/msa_mask", s, n)
	if err != nil {
		return nil, err
	}
	var cot []T
	if grad {
		if cot, err = get("in/cot_msa_update", s, n, c); err != nil {
			return nil, err
		}
	}

	res := params.New()
	var putErr error
	put := func(name string, shape []int, x []T) {
		if putErr == nil {
			putErr = params.Put(res, name, shape, x)
		}
	}
	msaShape := []int{s, n, c}

	switch meta.Case {
	case CaseRow:
		v, err := meta.configInts("c_m", "c_z", "heads", "c_hidden")
		if err != nil {
			return nil, err
		}
		cfg := RowConfig{MSAChannels: v[0], PairChannels: v[1], Heads: v[2], HeadChannels: v[3]}
		if c != cfg.MSAChannels {
			return nil, fmt.Errorf("msaattn: case %s: in/msa has %d channels, meta.config.c_m = %d: %w", meta.Case, c, cfg.MSAChannels, num.ErrShape)
		}
		p, err := LoadRowParams[T](cs.Sub("params/"+RowPrefix), cfg)
		if err != nil {
			return nil, err
		}
		z, err := get("in/z", n, n, cfg.PairChannels)
		if err != nil {
			return nil, err
		}
		m := &RowAttention[T]{Config: cfg, Params: p}
		var cache RowCache[T]
		y, err := m.Forward(msa, z, mask, s, n, &cache)
		if err != nil {
			return nil, err
		}
		put("out/msa_update", msaShape, y)
		if grad {
			g, err := m.Backward(&cache, cot)
			if err != nil {
				return nil, err
			}
			put("grad/in/msa", msaShape, g.MSA)
			put("grad/in/z", []int{n, n, cfg.PairChannels}, g.Z)
			if err := g.Params.Save(res, "grad/params/"); err != nil {
				return nil, err
			}
		}

	case CaseColumn:
		v, err := meta.configInts("c_m", "heads", "c_hidden")
		if err != nil {
			return nil, err
		}
		cfg := ColumnConfig{MSAChannels: v[0], Heads: v[1], HeadChannels: v[2]}
		if c != cfg.MSAChannels {
			return nil, fmt.Errorf("msaattn: case %s: in/msa has %d channels, meta.config.c_m = %d: %w", meta.Case, c, cfg.MSAChannels, num.ErrShape)
		}
		p, err := LoadColumnParams[T](cs.Sub("params/"+ColumnPrefix), cfg)
		if err != nil {
			return nil, err
		}
		m := &ColumnAttention[T]{Config: cfg, Params: p}
		var cache ColumnCache[T]
		y, err := m.Forward(msa, mask, s, n, &cache)
		if err != nil {
			return nil, err
		}
		put("out/msa_update", msaShape, y)
		if grad {
			g, err := m.Backward(&cache, cot)
			if err != nil {
				return nil, err
			}
			put("grad/in/msa", msaShape, g.MSA)
			if err := g.Params.Save(res, "grad/params/"); err != nil {
				return nil, err
			}
		}

	case CaseGlobalColumn:
		if err := meta.configWant("mask_mean_eps", GlobalMaskEps); err != nil {
			return nil, err
		}
		v, err := meta.configInts("c_e", "heads", "c_hidden")
		if err != nil {
			return nil, err
		}
		cfg := GlobalColumnConfig{MSAChannels: v[0], Heads: v[1], HeadChannels: v[2]}
		if c != cfg.MSAChannels {
			return nil, fmt.Errorf("msaattn: case %s: in/msa has %d channels, meta.config.c_e = %d: %w", meta.Case, c, cfg.MSAChannels, num.ErrShape)
		}
		p, err := LoadGlobalColumnParams[T](cs.Sub("params/"+GlobalColumnPrefix), cfg)
		if err != nil {
			return nil, err
		}
		m := &GlobalColumnAttention[T]{Config: cfg, Params: p}
		var cache GlobalColumnCache[T]
		y, err := m.Forward(msa, mask, s, n, &cache)
		if err != nil {
			return nil, err
		}
		put("out/msa_update", msaShape, y)
		if grad {
			g, err := m.Backward(&cache, cot)
			if err != nil {
				return nil, err
			}
			put("grad/in/msa", msaShape, g.MSA)
			if err := g.Params.Save(res, "grad/params/"); err != nil {
				return nil, err
			}
		}

	default:
		return nil, fmt.Errorf("msaattn: case %q is not an MSA attention case (want %s, %s or %s)", meta.Case, CaseRow, CaseColumn, CaseGlobalColumn)
	}
	if putErr != nil {
		return nil, fmt.Errorf("msaattn: case %s: %w", meta.Case, putErr)
	}
	return res, nil
}
