package alphafold

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// EvoformerCases returns the reference-case kinds (meta.case) that
// RunEvoformerCase runs.
func EvoformerCases() []string {
	return []string{"outer_product_mean", "msa_transition", "pair_transition", "evoformer_block"}
}

// evoMeta is the part of a reference case's meta that RunEvoformerCase reads.
type evoMeta struct {
	Case   string         `json:"case"`
	Config map[string]any `json:"config"`
}

// int returns meta.config[key] as a positive integer.
func (m evoMeta) int(key string) (int, error) {
	v, ok := m.Config[key]
	if !ok {
		return 0, fmt.Errorf("alphafold: %s case: meta.config has no %q: %w", m.Case, key, params.ErrMissing)
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 1 {
		return 0, fmt.Errorf("alphafold: %s case: meta.config %q = %v, want a positive integer: %w", m.Case, key, v, ErrConfig)
	}
	return int(f), nil
}

// float returns meta.config[key] as a number, or def when it is absent.
func (m evoMeta) float(key string, def float64) (float64, error) {
	v, ok := m.Config[key]
	if !ok {
		return def, nil
	}
	f, ok := v.(float64)
	if !ok {
		return 0, fmt.Errorf("alphafold: %s case: meta.config %q = %v, want a number: %w", m.Case, key, v, ErrConfig)
	}
	return f, nil
}

// RunEvoformerCase runs one reference case of an Evoformer part (the kinds
// EvoformerCases lists: outer product mean, MSA and pair transitions, one
// Evoformer block) in dtype "float32" or "float64" and returns its results:
// out/<name> for every output and, with grad, grad/in/<name> and
// grad/params/<AF2 name>, the gradients of Σ out·cot over the outputs that
// have a cotangent in/cot_<name>.
//
// cs is a whole case file as params.Open reads it: its meta (JSON with
// "case" and "config"), parameters under params/ (AF2 names relative to
// meta.af2_prefix) and inputs under in/. The configuration (widths, heads)
// comes from meta.config, so reduced-width cases run as they are. The error
// names a missing or mis-shaped key, an unknown case, or any params/ or in/
// key the case did not use (the in/cot_ keys are used only with grad).
func RunEvoformerCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	var m evoMeta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return nil, fmt.Errorf("alphafold: case meta: %v: %w", err, ErrConfig)
	}
	var res *params.Set
	switch dtype {
	case "float32":
		res, err = runEvoCase[float32](cs, m, grad)
	case "float64":
		res, err = runEvoCase[float64](cs, m, grad)
	default:
		return nil, fmt.Errorf("alphafold: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
	}
	if err != nil {
		return nil, err
	}
	var unused []string
	for _, k := range cs.Unused() {
		if !strings.HasPrefix(k, "params/") && !strings.HasPrefix(k, "in/") {
			continue
		}
		if !grad && strings.HasPrefix(k, "in/cot_") {
			continue
		}
		unused = append(unused, k)
	}
	if len(unused) > 0 {
		return nil, fmt.Errorf("alphafold: %s case: keys not used: %s: %w", m.Case, strings.Join(unused, ", "), ErrConfig)
	}
	return res, nil
}

// runEvoCase dispatches on the case kind.
func runEvoCase[T num.Float](cs *params.Set, m evoMeta, grad bool) (*params.Set, error) {
	r := &evoRun[T]{cs: cs, prm: cs.Sub("params/"), in: cs.Sub("in/"), res: params.New(), grad: grad, meta: m}
	var err error
	switch m.Case {
	case "outer_product_mean":
		err = r.outerProductMean()
	case "msa_transition":
		err = r.transition(MSATransitionName, "c_m", "msa", "msa_mask", "msa_update")
	case "pair_transition":
		err = r.transition(PairTransitionName, "c_z", "z", "pair_mask", "z_update")
	case "evoformer_block":
		err = r.evoformerBlock()
	default:
		err = fmt.Errorf("alphafold: case %q is not an Evoformer part (want one of %s): %w",
			m.Case, strings.Join(EvoformerCases(), ", "), ErrConfig)
	}
	if err != nil {
		return nil, err
	}
	return r.res, nil
}

// evoRun holds one case run's sets.
type evoRun[T num.Float] struct {
	cs, prm, in, res *params.Set
	grad             bool
	meta             evoMeta
}

// input reads in/name and returns it with its shape, checking the rank.
func (r *evoRun[T]) input(name string, rank int) ([]T, []int, error) {
	shape, err := r.in.Shape(name)
	if err != nil {
		return nil, nil, fmt.Errorf("alphafold: %w", err)
	}
	if len(shape) != rank {
		return nil, nil, fmt.Errorf("alphafold: in/%s has shape %v, want rank %d: %w", name, shape, rank, num.ErrShape)
	}
	x, err := params.Get[T](r.in, name, shape...)
	if err != nil {
		return nil, nil, fmt.Errorf("alphafold: %w", err)
	}
	return x, shape, nil
}

// inputShaped reads in/name with exactly the given shape.
func (r *evoRun[T]) inputShaped(name string, shape ...int) ([]T, error) {
	x, err := params.Get[T](r.in, name, shape...)
	if err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	return x, nil
}

// put stores out/<name> (or any full key) in the result.
func (r *evoRun[T]) put(key string, shape []int, x []T) error {
	if err := params.Put(r.res, key, shape, x); err != nil {
		return fmt.Errorf("alphafold: %w", err)
	}
	return nil
}

// cot reads in/cot_<name> with the given shape when gradients are wanted.
func (r *evoRun[T]) cot(name string, shape ...int) ([]T, error) {
	return r.inputShaped("cot_"+name, shape...)
}

// outerProductMean runs outer_product_mean.npz.
func (r *evoRun[T]) outerProductMean() error {
	m := r.meta
	cm, err := m.int("c_m")
	if err != nil {
		return err
	}
	c, err := m.int("c_hidden")
	if err != nil {
		return err
	}
	cz, err := m.int("c_z")
	if err != nil {
		return err
	}
	eps, err := m.float("eps", 1e-3)
	if err != nil {
		return err
	}
	cfg := OuterProductMeanConfig{CM: cm, C: c, CZ: cz, Eps: eps}
	p, err := LoadOuterProductMeanParams[T](r.prm, cfg)
	if err != nil {
		return err
	}
	msa, shape, err := r.input("msa", 3)
	if err != nil {
		return err
	}
	s, n := shape[0], shape[1]
	mask, err := r.inputShaped("msa_mask", s, n)
	if err != nil {
		return err
	}
	out := make([]T, n*n*cz)
	var cache *OuterProductMeanCache[T]
	if r.grad {
		cache = new(OuterProductMeanCache[T])
	}
	if err := p.Forward(msa, mask, s, n, out, cache); err != nil {
		return err
	}
	if err := r.put("out/z_update", []int{n, n, cz}, out); err != nil {
		return err
	}
	if !r.grad {
		return nil
	}
	cot, err := r.cot("z_update", n, n, cz)
	if err != nil {
		return err
	}
	dmsa := make([]T, len(msa))
	g := p.ZerosLike()
	if err := p.Backward(cache, cot, dmsa, g); err != nil {
		return err
	}
	if err := r.put("grad/in/msa", shape, dmsa); err != nil {
		return err
	}
	return g.Save(r.res, "grad/params/")
}

// transition runs msa_transition.npz or pair_transition.npz: the masked
// output <out> and AF2's unmasked <out>_nomask, and gradients of the sum of
// both cotangent products.
func (r *evoRun[T]) transition(name, widthKey, xName, maskName, outName string) error {
	m := r.meta
	c, err := m.int(widthKey)
	if err != nil {
		return err
	}
	f, err := m.int("n")
	if err != nil {
		return err
	}
	cfg := TransitionConfig{C: c, Factor: f}
	p, err := LoadTransitionParams[T](r.prm, name, cfg)
	if err != nil {
		return err
	}
	x, shape, err := r.input(xName, 3)
	if err != nil {
		return err
	}
	if shape[2] != c {
		return fmt.Errorf("alphafold: in/%s has shape %v, want last axis %d: %w", xName, shape, c, num.ErrShape)
	}
	rows := shape[0] * shape[1]
	mask, err := r.inputShaped(maskName, shape[0], shape[1])
	if err != nil {
		return err
	}
	var cm, cu *TransitionCache[T]
	if r.grad {
		cm, cu = new(TransitionCache[T]), new(TransitionCache[T])
	}
	masked, nomask := make([]T, rows*c), make([]T, rows*c)
	if err := p.Forward(x, rows, mask, masked, cm); err != nil {
		return err
	}
	if err := p.Forward(x, rows, nil, nomask, cu); err != nil {
		return err
	}
	if err := r.put("out/"+outName, shape, masked); err != nil {
		return err
	}
	if err := r.put("out/"+outName+"_nomask", shape, nomask); err != nil {
		return err
	}
	if !r.grad {
		return nil
	}
	cotM, err := r.cot(outName, shape...)
	if err != nil {
		return err
	}
	cotU, err := r.cot(outName+"_nomask", shape...)
	if err != nil {
		return err
	}
	dx := make([]T, len(x))
	g := p.ZerosLike()
	if err := p.Backward(cm, cotM, dx, g); err != nil {
		return err
	}
	if err := p.Backward(cu, cotU, dx, g); err != nil {
		return err
	}
	if err := r.put("grad/in/"+xName, shape, dx); err != nil {
		return err
	}
	return g.Save(r.res, "grad/params/", name)
}

// evoformerBlock runs evoformer_block.npz: one block with the widths of
// meta.config (OpenFold's names: c_m, c_z, c_hidden_msa_att, no_heads_msa,
// c_hidden_pair_att, no_heads_pair, c_hidden_mul, c_hidden_opm,
// transition_n), parameters under params/evoformer_iteration/.
func (r *evoRun[T]) evoformerBlock() error {
	m := r.meta
	for _, k := range []string{"opm_first", "no_column_attention", "fuse_projection_weights"} {
		if v, ok := m.Config[k]; ok && v != false {
			return fmt.Errorf("alphafold: evoformer_block case: meta.config %s = %v is not AF2's monomer block: %w", k, v, ErrConfig)
		}
	}
	keys := []string{"c_m", "c_z", "no_heads_msa", "c_hidden_msa_att", "no_heads_pair", "c_hidden_pair_att", "c_hidden_mul", "c_hidden_opm", "transition_n"}
	v := make([]int, len(keys))
	for i, k := range keys {
		var err error
		if v[i], err = m.int(k); err != nil {
			return err
		}
	}
	cfg := EvoformerConfig{
		MSAChannels: v[0], PairChannels: v[1],
		MSAHeads: v[2], MSAHeadChannels: v[3],
		PairHeads: v[4], PairHeadChannels: v[5],
		TriMulChannels: v[6], OuterChannels: v[7], TransitionFactor: v[8],
	}
	p, err := LoadEvoformerBlockParams[T](r.prm.Sub(EvoformerStackName+"/"), cfg)
	if err != nil {
		return err
	}
	msa, shape, err := r.input("msa", 3)
	if err != nil {
		return err
	}
	s, n := shape[0], shape[1]
	pair, err := r.inputShaped("pair", n, n, cfg.PairChannels)
	if err != nil {
		return err
	}
	msaMask, err := r.inputShaped("msa_mask", s, n)
	if err != nil {
		return err
	}
	pairMask, err := r.inputShaped("pair_mask", n, n)
	if err != nil {
		return err
	}
	var cache *EvoformerBlockCache[T]
	if r.grad {
		cache = new(EvoformerBlockCache[T])
	}
	if err := p.Forward(msa, pair, msaMask, pairMask, s, n, nil, cache); err != nil {
		return err
	}
	pairShape := []int{n, n, cfg.PairChannels}
	if err := r.put("out/msa", shape, msa); err != nil {
		return err
	}
	if err := r.put("out/pair", pairShape, pair); err != nil {
		return err
	}
	if !r.grad {
		return nil
	}
	dmsa, err := r.cot("msa", shape...)
	if err != nil {
		return err
	}
	dpair, err := r.cot("pair", pairShape...)
	if err != nil {
		return err
	}
	g := p.ZerosLike()
	if err := p.Backward(cache, dmsa, dpair, g); err != nil {
		return err
	}
	if err := r.put("grad/in/msa", shape, dmsa); err != nil {
		return err
	}
	if err := r.put("grad/in/pair", pairShape, dpair); err != nil {
		return err
	}
	return g.Save(r.res, "grad/params/"+EvoformerStackName+"/")
}
