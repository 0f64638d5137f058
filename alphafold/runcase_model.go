package alphafold

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

// ModelCases returns the reference-case kinds (meta.case) that RunModelCase
// runs.
func ModelCases() []string { return []string{"full_model"} }

// mdlMeta is the part of the full-model case's meta that RunModelCase reads.
type mdlMeta struct {
	Case   string         `json:"case"`
	Config map[string]any `json:"config"`
}

// int returns meta.config[key] as a positive integer, or def when absent.
func (m mdlMeta) int(key string, def int) (int, error) {
	v, ok := m.Config[key]
	if !ok {
		return def, nil
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 1 {
		return 0, fmt.Errorf("alphafold: %s case: meta.config %q = %v, want a positive integer: %w", m.Case, key, v, ErrConfig)
	}
	return int(f), nil
}

// mdlWithWidths returns cfg with c_m, c_e, c_z and c_s set in every part.
func mdlWithWidths(cfg Config, cm, ce, cz, cs int) Config {
	cfg.Embedder.MSAChannels, cfg.Embedder.ExtraMSAChannels, cfg.Embedder.PairChannels = cm, ce, cz
	cfg.Evoformer.MSAChannels, cfg.Evoformer.PairChannels = cm, cz
	cfg.ExtraMSA.MSAChannels, cfg.ExtraMSA.PairChannels = ce, cz
	cfg.Recycle.CM, cfg.Recycle.CZ = cm, cz
	cfg.StructureModule.IPA.CS, cfg.StructureModule.IPA.CZ = cs, cz
	cfg.Heads.CS, cfg.Heads.CZ, cfg.Heads.CM = cs, cz, cm
	return cfg
}

// RunModelCase runs the full-model reference case (meta.case
// "full_model"): it loads the case's parameters, stored under the full
// names of a released file (params/alphafold/alphafold_iteration/…),
// through LoadModel exactly as it loads DeepMind's files (stack lengths
// from the arrays, the predicted aligned error head when present), builds
// the features from in/…, runs Predict in dtype "float32" or "float64" and
// returns out/<name> after meta.config.num_recycle_iterations_out passes
// (2) and out_recycle1/<name> after
// num_recycle_iterations_out_recycle1 passes (1), for final_atom_positions,
// final_atom_mask, plddt, lddt_logits, distogram_logits, masked_msa_logits,
// experimentally_resolved_logits, single, pair, msa_first_row, sm_frames,
// sm_positions and sm_angles (with a PAE head also pae_logits,
// predicted_aligned_error and ptm). Widths other than AF2's are taken from
// meta.config (c_m, c_e, c_z, c_s).
//
// The case stores no gradients; grad must be false. The error names a
// missing or mis-shaped key, a parameter file that does not match the
// model (*ParamsError), an atom37 table that differs from AF2's residue
// constants, or any params/ or in/ key the case did not use.
func RunModelCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	str, err := cs.String("meta")
	if err != nil {
		return nil, fmt.Errorf("alphafold: %w", err)
	}
	var m mdlMeta
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		return nil, fmt.Errorf("alphafold: case meta: %v: %w", err, ErrConfig)
	}
	if m.Case != "full_model" {
		return nil, fmt.Errorf("alphafold: RunModelCase: case %q, want one of %s: %w", m.Case, strings.Join(ModelCases(), ", "), ErrConfig)
	}
	if grad {
		return nil, fmt.Errorf("alphafold: the full-model case stores no gradients; run it without -grad: %w", ErrConfig)
	}
	switch dtype {
	case "float32":
		return runModelCase[float32](cs, m)
	case "float64":
		return runModelCase[float64](cs, m)
	}
	return nil, fmt.Errorf("alphafold: dtype %q, want float32 or float64: %w", dtype, ErrConfig)
}

func runModelCase[T num.Float](cs *params.Set, m mdlMeta) (*params.Set, error) {
	cfg := DefaultConfig()
	cfg.Name = ""
	w := map[string]int{}
	for _, k := range []struct {
		key string
		def int
	}{{"c_m", cfg.Embedder.MSAChannels}, {"c_e", cfg.Embedder.ExtraMSAChannels}, {"c_z", cfg.Embedder.PairChannels}, {"c_s", cfg.StructureModule.IPA.CS}} {
		v, err := m.int(k.key, k.def)
		if err != nil {
			return nil, err
		}
		w[k.key] = v
	}
	cfg = mdlWithWidths(cfg, w["c_m"], w["c_e"], w["c_z"], w["c_s"])
	prm := cs.Sub("params/")
	for _, k := range prm.Keys() {
		if strings.HasPrefix(k, ModelPrefix+PredictedAlignedErrorHeadName+"/") {
			cfg.Heads.PredictedAlignedError = true
		}
	}
	passes, err := m.int("num_recycle_iterations_out", 2)
	if err != nil {
		return nil, err
	}
	passes1, err := m.int("num_recycle_iterations_out_recycle1", 1)
	if err != nil {
		return nil, err
	}
	model, rep, err := LoadModel[T](prm, cfg)
	if err != nil {
		return nil, err
	}
	for _, st := range []struct {
		key  string
		have int
	}{{"evoformer_blocks", rep.EvoformerBlocks}, {"extra_msa_blocks", rep.ExtraMSABlocks}} {
		if want, err := m.int(st.key, st.have); err != nil {
			return nil, err
		} else if want != st.have {
			return nil, fmt.Errorf("alphafold: full-model case: meta.config %s = %d but the parameters have %d layers: %w", st.key, want, st.have, ErrConfig)
		}
	}
	f, err := mdlCaseFeatures(cs)
	if err != nil {
		return nil, err
	}
	if u := cs.Unused(); len(u) > 0 {
		var bad []string
		for _, k := range u {
			if strings.HasPrefix(k, "params/") || strings.HasPrefix(k, "in/") {
				bad = append(bad, k)
			}
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("alphafold: full-model case: keys not used: %s: %w", strings.Join(bad, ", "), ErrConfig)
		}
	}
	res := params.New()
	for _, run := range []struct {
		prefix string
		passes int
	}{{"out_recycle1/", passes1}, {"out/", passes}} {
		r, err := model.Predict(context.Background(), f, PredictOptions{Iterations: run.passes})
		if err != nil {
			return nil, err
		}
		if r.Passes != run.passes {
			return nil, fmt.Errorf("alphafold: full-model case ran %d passes, want %d: %w", r.Passes, run.passes, ErrConfig)
		}
		if err := mdlPutResult(res, run.prefix, r, model.Config); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// mdlCaseFeatures reads the case's in/ arrays into Features and checks its
// atom37 tables against AF2's residue constants.
func mdlCaseFeatures(cs *params.Set) (*features.Features, error) {
	wrap := func(e error) error { return fmt.Errorf("alphafold: full-model case: %w", e) }
	aatype, err := params.Ints(cs, "in/aatype")
	if err != nil {
		return nil, wrap(err)
	}
	n := len(aatype)
	if err := smCheckAAType("full-model case", aatype); err != nil {
		return nil, err
	}
	dim := func(key string, axis int) (int, error) {
		sh, err := cs.Shape(key)
		if err != nil {
			return 0, wrap(err)
		}
		if len(sh) <= axis {
			return 0, wrap(fmt.Errorf("%q has shape %v: %w", key, sh, num.ErrShape))
		}
		return sh[axis], nil
	}
	s, err := dim("in/msa_feat", 0)
	if err != nil {
		return nil, err
	}
	se, err := dim("in/extra_msa", 0)
	if err != nil {
		return nil, err
	}
	f := &features.Features{L: n, S: s, Se: se, AAType: aatype}
	if f.ResidueIndex, err = params.Ints(cs, "in/residue_index", n); err != nil {
		return nil, wrap(err)
	}
	if f.ExtraMSA, err = params.Ints(cs, "in/extra_msa", se, n); err != nil {
		return nil, wrap(err)
	}
	for _, x := range []struct {
		key   string
		dst   *[]float64
		shape []int
	}{
		{"in/seq_mask", &f.SeqMask, []int{n}},
		{"in/target_feat", &f.TargetFeat, []int{n, features.TargetFeatChannels}},
		{"in/msa_feat", &f.MSAFeat, []int{s, n, features.MSAFeatChannels}},
		{"in/msa_mask", &f.MSAMask, []int{s, n}},
		{"in/extra_has_deletion", &f.ExtraHasDeletion, []int{se, n}},
		{"in/extra_deletion_value", &f.ExtraDeletionValue, []int{se, n}},
		{"in/extra_msa_mask", &f.ExtraMSAMask, []int{se, n}},
	} {
		if *x.dst, err = params.Get[float64](cs, x.key, x.shape...); err != nil {
			return nil, wrap(err)
		}
	}
	// The atom37 tables are AF2's residue constants for aatype; the model
	// derives them itself and refuses a case that disagrees.
	to14, err := params.Ints(cs, "in/residx_atom37_to_atom14", n, residue.NumAtomTypes)
	if err != nil {
		return nil, wrap(err)
	}
	exists, err := params.Get[float64](cs, "in/atom37_atom_exists", n, residue.NumAtomTypes)
	if err != nil {
		return nil, wrap(err)
	}
	m37, a37to14 := residue.Atom37Mask(), residue.Atom37ToAtom14()
	for i, a := range aatype {
		for k := range residue.NumAtomTypes {
			e := exists[i*residue.NumAtomTypes+k]
			if e != m37[a][k] || (e != 0 && to14[i*residue.NumAtomTypes+k] != a37to14[a][k]) {
				return nil, fmt.Errorf("alphafold: full-model case: atom37 tables of residue %d (type %d), atom %d differ from AF2's residue constants: %w", i, a, k, ErrConfig)
			}
		}
	}
	return f, nil
}

// mdlOut is one output array of a prediction.
type mdlOut[T num.Float] struct {
	name  string
	shape []int
	data  []T
}

// mdlPutResult stores a prediction under prefix in the reference cases'
// names and layouts, as float64.
func mdlPutResult[T num.Float](res *params.Set, prefix string, r *Result[T], cfg Config) error {
	n, s, hc := r.N, r.S, cfg.Heads
	layers := r.StructureModule.Layers
	cz, cm, cs := cfg.Embedder.PairChannels, cfg.Embedder.MSAChannels, cfg.StructureModule.IPA.CS
	outs := []mdlOut[T]{
		{"final_atom_positions", []int{n, residue.NumAtomTypes, 3}, r.FinalAtomPositions},
		{"final_atom_mask", []int{n, residue.NumAtomTypes}, r.FinalAtomMask},
		{"plddt", []int{n}, r.PLDDT},
		{"lddt_logits", []int{n, hc.PLDDTBins}, r.LDDTLogits},
		{"distogram_logits", []int{n, n, hc.DistogramBins}, r.DistogramLogits},
		{"masked_msa_logits", []int{s, n, hc.MSAClasses}, r.MaskedMSALogits},
		{"experimentally_resolved_logits", []int{n, residue.NumAtomTypes}, r.ExperimentallyResolvedLogits},
		{"single", []int{n, cs}, r.Single},
		{"pair", []int{n, n, cz}, r.Pair},
		{"msa_first_row", []int{n, cm}, r.MSAFirstRow},
		{"sm_frames", []int{layers, n, 7}, r.StructureModule.Frames},
		{"sm_positions", []int{layers, n, residue.NumAtom14, 3}, r.StructureModule.Positions},
		{"sm_angles", []int{layers, n, residue.NumTorsions, 2}, r.StructureModule.Angles},
	}
	if r.PAELogits != nil {
		outs = append(outs,
			mdlOut[T]{"pae_logits", []int{n, n, hc.PAEBins}, r.PAELogits},
			mdlOut[T]{"predicted_aligned_error", []int{n, n}, r.PAE},
			mdlOut[T]{"ptm", []int{}, []T{T(r.PTM)}},
		)
	}
	for _, o := range outs {
		x := make([]float64, len(o.data))
		for i, v := range o.data {
			x[i] = float64(v)
		}
		if err := params.Put(res, prefix+o.name, o.shape, x); err != nil {
			return fmt.Errorf("alphafold: %w", err)
		}
	}
	return nil
}
