package alphafold

import (
	"context"
	"strings"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

// ModelCases returns the reference-case kinds (meta.case) that RunModelCase
// runs.
func ModelCases() []string { return []string{"full_model"} }

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
	c := casekit.New(cs, "alphafold: full-model case", ErrConfig)
	m, err := c.Meta()
	if err != nil {
		return nil, err
	}
	if err := c.CheckCase(m.Case, ModelCases()...); err != nil {
		return nil, err
	}
	if grad {
		return nil, c.ConfigErrorf("the case stores no gradients; run it without -grad")
	}
	run, err := casekit.ByDType(c, dtype, runModelCase[float32], runModelCase[float64])
	if err != nil {
		return nil, err
	}
	return run(c, m)
}

func runModelCase[T num.Float](c *casekit.Case, m *casekit.Meta) (*params.Set, error) {
	cfg := DefaultConfig()
	cfg.Name = ""
	cfg = mdlWithWidths(cfg, m.IntOr("c_m", cfg.Embedder.MSAChannels), m.IntOr("c_e", cfg.Embedder.ExtraMSAChannels),
		m.IntOr("c_z", cfg.Embedder.PairChannels), m.IntOr("c_s", cfg.StructureModule.IPA.CS))
	passes := m.IntOr("num_recycle_iterations_out", 2)
	passes1 := m.IntOr("num_recycle_iterations_out_recycle1", 1)
	if err := c.Err(); err != nil {
		return nil, err
	}
	prm := c.In.Sub("params/")
	for _, k := range prm.Keys() {
		if strings.HasPrefix(k, ModelPrefix+PredictedAlignedErrorHeadName+"/") {
			cfg.Heads.PredictedAlignedError = true
		}
	}
	model, rep, err := LoadModel[T](prm, cfg)
	if err != nil {
		return nil, err
	}
	for _, st := range []struct {
		key  string
		have int
	}{{"evoformer_blocks", rep.EvoformerBlocks}, {"extra_msa_blocks", rep.ExtraMSABlocks}} {
		if want := m.IntOr(st.key, st.have); want != st.have {
			c.ConfigErrorf("meta.config %s = %d but the parameters have %d layers", st.key, want, st.have)
		}
	}
	f := mdlCaseFeatures(c)
	// The case has no cotangents, so none may stay unread either.
	if err := c.CheckUsed(true); err != nil {
		return nil, err
	}
	for _, run := range []struct {
		prefix string
		passes int
	}{{"out_recycle1/", passes1}, {"out/", passes}} {
		r, err := model.Predict(context.Background(), f, PredictOptions{Iterations: run.passes})
		if err != nil {
			return nil, err
		}
		if r.Passes != run.passes {
			return nil, c.ConfigErrorf("ran %d passes, want %d", r.Passes, run.passes)
		}
		mdlPutResult(c, run.prefix, r, model.Config)
	}
	return c.Result()
}

// mdlCaseFeatures reads the case's in/ arrays into Features and checks its
// atom37 tables against AF2's residue constants; it returns nil after an
// error, which c records.
func mdlCaseFeatures(c *casekit.Case) *features.Features {
	aatype := c.Ints("in/aatype")
	if c.Err() != nil {
		return nil
	}
	n := len(aatype)
	if err := smCheckAAType("full-model case", aatype); err != nil {
		c.Fail(err)
		return nil
	}
	msaShape, _ := c.Dims("in/msa_feat", casekit.Any, n, features.MSAFeatChannels)
	extraShape, _ := c.Dims("in/extra_msa", casekit.Any, n)
	if c.Err() != nil {
		return nil
	}
	s, se := msaShape[0], extraShape[0]
	f := &features.Features{L: n, S: s, Se: se, AAType: aatype,
		ResidueIndex:       c.Ints("in/residue_index", n),
		ExtraMSA:           c.Ints("in/extra_msa", se, n),
		SeqMask:            casekit.Get[float64](c, "in/seq_mask", n),
		TargetFeat:         casekit.Get[float64](c, "in/target_feat", n, features.TargetFeatChannels),
		MSAFeat:            casekit.Get[float64](c, "in/msa_feat", s, n, features.MSAFeatChannels),
		MSAMask:            casekit.Get[float64](c, "in/msa_mask", s, n),
		ExtraHasDeletion:   casekit.Get[float64](c, "in/extra_has_deletion", se, n),
		ExtraDeletionValue: casekit.Get[float64](c, "in/extra_deletion_value", se, n),
		ExtraMSAMask:       casekit.Get[float64](c, "in/extra_msa_mask", se, n),
	}
	// The atom37 tables are AF2's residue constants for aatype; the model
	// derives them itself and refuses a case that disagrees.
	to14 := c.Ints("in/residx_atom37_to_atom14", n, residue.NumAtomTypes)
	exists := casekit.Get[float64](c, "in/atom37_atom_exists", n, residue.NumAtomTypes)
	if c.Err() != nil {
		return nil
	}
	m37, a37to14 := residue.Atom37Mask(), residue.Atom37ToAtom14()
	for i, a := range aatype {
		for k := range residue.NumAtomTypes {
			e := exists[i*residue.NumAtomTypes+k]
			if e != m37[a][k] || (e != 0 && to14[i*residue.NumAtomTypes+k] != a37to14[a][k]) {
				c.ConfigErrorf("atom37 tables of residue %d (type %d), atom %d differ from AF2's residue constants", i, a, k)
				return nil
			}
		}
	}
	return f
}

// mdlOut is one output array of a prediction.
type mdlOut[T num.Float] struct {
	name  string
	shape []int
	data  []T
}

// mdlPutResult stores a prediction in c.Out under prefix in the reference
// cases' names and layouts, as float64.
func mdlPutResult[T num.Float](c *casekit.Case, prefix string, r *Result[T], cfg Config) {
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
		casekit.Put(c, prefix+o.name, o.shape, x)
	}
}
