package recycle

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// CaseName is the meta.case of the reference cases RunCase runs.
const CaseName = "recycling_embedder"

// caseMeta is the part of a reference case's meta that RunCase reads.
type caseMeta struct {
	Case   string         `json:"case"`
	Config map[string]any `json:"config"`
}

// RunCase runs a recycling_embedder reference case (cs as params.Open reads
// the file: meta, params/ with AF2 names relative to
// alphafold/alphafold_iteration/evoformer/, in/) in dtype "float32" or
// "float64" and returns out/msa_first_row_update and out/pair_update and,
// with grad, the gradients of Σ out·cot over both outputs:
// grad/in/prev_msa_first_row, grad/in/prev_pair, grad/in/prev_pseudo_beta
// (zero: the distogram is piecewise constant) and grad/params/<AF2 name>.
//
// The sizes and bins come from meta.config (c_m, c_z, min_bin, max_bin,
// no_bins, upper_last; AF2's values where a bin key is absent). The error
// names a missing or mis-shaped key, another case kind, or any params/ or
// in/ key the case did not use (in/cot_ keys are used only with grad).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("recycle: %w", err)
	}
	var m caseMeta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return nil, fmt.Errorf("recycle: case meta: %v: %w", err, ErrConfig)
	}
	if m.Case != CaseName {
		return nil, fmt.Errorf("recycle: case %q, want %q: %w", m.Case, CaseName, ErrConfig)
	}
	cfg, err := m.config()
	if err != nil {
		return nil, err
	}
	var res *params.Set
	switch dtype {
	case "float32":
		res, err = runCase[float32](cs, cfg, grad)
	case "float64":
		res, err = runCase[float64](cs, cfg, grad)
	default:
		return nil, fmt.Errorf("recycle: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
	}
	if err != nil {
		return nil, err
	}
	var unused []string
	for _, k := range cs.Unused() {
		if (strings.HasPrefix(k, "params/") || strings.HasPrefix(k, "in/")) && (grad || !strings.HasPrefix(k, "in/cot_")) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return nil, fmt.Errorf("recycle: keys not used: %s: %w", strings.Join(unused, ", "), ErrConfig)
	}
	return res, nil
}

// config builds the Config from meta.config.
func (m caseMeta) config() (Config, error) {
	cfg := DefaultConfig()
	for _, f := range []struct {
		key string
		dst *int
	}{{"c_m", &cfg.CM}, {"c_z", &cfg.CZ}, {"no_bins", &cfg.NumBins}} {
		v, ok := m.Config[f.key]
		if !ok {
			if f.key == "no_bins" {
				continue
			}
			return cfg, fmt.Errorf("recycle: meta.config has no %q: %w", f.key, params.ErrMissing)
		}
		x, ok := v.(float64)
		if !ok || x != math.Trunc(x) {
			return cfg, fmt.Errorf("recycle: meta.config %q = %v, want an integer: %w", f.key, v, ErrConfig)
		}
		*f.dst = int(x)
	}
	for _, f := range []struct {
		key string
		dst *float64
	}{{"min_bin", &cfg.MinBin}, {"max_bin", &cfg.MaxBin}, {"upper_last", &cfg.UpperLast}} {
		if v, ok := m.Config[f.key]; ok {
			x, ok := v.(float64)
			if !ok {
				return cfg, fmt.Errorf("recycle: meta.config %q = %v, want a number: %w", f.key, v, ErrConfig)
			}
			*f.dst = x
		}
	}
	return cfg, cfg.Validate()
}

// runCase runs the case in T.
func runCase[T num.Float](cs *params.Set, cfg Config, grad bool) (*params.Set, error) {
	p, err := LoadParams[T](cs.Sub("params/"), cfg)
	if err != nil {
		return nil, err
	}
	in := cs.Sub("in/")
	shape, err := in.Shape("prev_pseudo_beta")
	if err != nil {
		return nil, fmt.Errorf("recycle: %w", err)
	}
	if len(shape) != 2 || shape[1] != 3 {
		return nil, fmt.Errorf("recycle: in/prev_pseudo_beta has shape %v, want [N 3]: %w", shape, num.ErrShape)
	}
	n, cm, cz := shape[0], cfg.CM, cfg.CZ
	get := func(name string, shape ...int) ([]T, error) {
		x, err := params.Get[T](in, name, shape...)
		if err != nil {
			return nil, fmt.Errorf("recycle: %w", err)
		}
		return x, nil
	}
	pb, err := get("prev_pseudo_beta", n, 3)
	if err != nil {
		return nil, err
	}
	row, err := get("prev_msa_first_row", n, cm)
	if err != nil {
		return nil, err
	}
	pair, err := get("prev_pair", n, n, cz)
	if err != nil {
		return nil, err
	}
	msaOut, pairOut := make([]T, n*cm), make([]T, n*n*cz)
	var cache *Cache[T]
	if grad {
		cache = new(Cache[T])
	}
	if err := Forward(p, row, pair, pb, msaOut, pairOut, cache); err != nil {
		return nil, err
	}
	res := params.New()
	put := func(key string, shape []int, x []T) error {
		if err := params.Put(res, key, shape, x); err != nil {
			return fmt.Errorf("recycle: %w", err)
		}
		return nil
	}
	if err := put("out/msa_first_row_update", []int{n, cm}, msaOut); err != nil {
		return nil, err
	}
	if err := put("out/pair_update", []int{n, n, cz}, pairOut); err != nil {
		return nil, err
	}
	if !grad {
		return res, nil
	}
	cotRow, err := get("cot_msa_first_row_update", n, cm)
	if err != nil {
		return nil, err
	}
	cotPair, err := get("cot_pair_update", n, n, cz)
	if err != nil {
		return nil, err
	}
	dRow, dPair := make([]T, n*cm), make([]T, n*n*cz)
	g := p.ZerosLike()
	if err := Backward(p, cache, cotRow, cotPair, dRow, dPair, g); err != nil {
		return nil, err
	}
	if err := put("grad/in/prev_msa_first_row", []int{n, cm}, dRow); err != nil {
		return nil, err
	}
	if err := put("grad/in/prev_pair", []int{n, n, cz}, dPair); err != nil {
		return nil, err
	}
	if err := put("grad/in/prev_pseudo_beta", []int{n, 3}, make([]T, n*3)); err != nil {
		return nil, err
	}
	if err := g.Save(res, "grad/params/"); err != nil {
		return nil, err
	}
	return res, nil
}
