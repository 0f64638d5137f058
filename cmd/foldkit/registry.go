package main

import (
	"sort"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/recycle"
	"github.com/foldkit/foldkit/rigid"
	"github.com/foldkit/foldkit/triangle"
)

// caseRunners returns the reference-case kinds run-module knows, by meta
// "case"; a name ending in "*" matches every case with that prefix.
func caseRunners() map[string]caseRunner {
	m := map[string]caseRunner{
		"msa_features_*":              features.RunCase,
		"protein_*":                   alphafold.RunProteinCase,
		"rigid":                       rigid.RunCase,
		"ipa":                         ipa.RunCase,
		"tri_mul_outgoing":            triangle.RunCase,
		"tri_mul_incoming":            triangle.RunCase,
		"tri_att_starting":            triangle.RunCase,
		"tri_att_ending":              triangle.RunCase,
		"msa_row_attention":           msaattn.RunCase,
		"msa_column_attention":        msaattn.RunCase,
		"msa_column_global_attention": msaattn.RunCase,
		recycle.CaseName:              recycle.RunCase,
		"structure_module":            alphafold.RunStructureModuleCase,
		"full_model":                  alphafold.RunModelCase,
	}
	for _, c := range alphafold.EvoformerCases() {
		m[c] = alphafold.RunEvoformerCase
	}
	return m
}

// backendRunner runs one kind of reference case with its forward pass on
// the backend of k for the dtype.
type backendRunner func(cs *params.Set, dtype string, grad bool, k backend.Pair) (*params.Set, error)

// backendRunners returns the reference-case kinds whose modules run on a
// backend (run-module -backend cuda), by meta "case".
func backendRunners() map[string]backendRunner {
	m := map[string]backendRunner{"ipa": ipa.RunCaseOn, recycle.CaseName: recycle.RunCaseOn}
	for _, c := range triangle.Cases() {
		m[c] = triangle.RunCaseOn
	}
	for _, c := range []string{msaattn.CaseRow, msaattn.CaseColumn, msaattn.CaseGlobalColumn} {
		m[c] = msaattn.RunCaseOn
	}
	for _, c := range alphafold.EvoformerCases() {
		m[c] = alphafold.RunEvoformerCaseOn
	}
	return m
}

// backendCases lists backendRunners' kinds, sorted.
func backendCases() []string {
	var ks []string
	for k := range backendRunners() {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// benchModules returns the modules bench knows, by the name of their
// reference case (and sgemm, attention, rigid, recycle_loop, model_reduced,
// model_full).
func benchModules() map[string]benchFactory {
	m := map[string]benchFactory{
		"sgemm":            sgemmBench,
		"attention":        attentionBench,
		"rigid":            rigidBench,
		"ipa":              moduleBench("ipa", ipa.NewBench),
		"structure_module": alphafold.NewStructureModuleBench,
		"model_reduced":    modelBench("reduced"),
		"model_full":       modelBench("full"),
	}
	for _, c := range []string{"tri_mul_outgoing", "tri_mul_incoming", "tri_att_starting", "tri_att_ending"} {
		m[c] = moduleBench(c, triangle.NewBench)
	}
	for _, c := range []string{"msa_row_attention", "msa_column_attention", "msa_column_global_attention"} {
		m[c] = moduleBench(c, msaattn.NewBench)
	}
	for _, c := range alphafold.EvoformerBenchModules() {
		m[c] = moduleBench(c, alphafold.NewEvoformerBench)
	}
	for _, c := range recycle.BenchModules() {
		m[c] = moduleBench(c, recycle.NewBench)
	}
	return m
}

// modelBench runs one pass of the whole model (config "reduced" or "full")
// at n residues with s MSA sequences (default 128) and 4·s extra sequences.
func modelBench(config string) benchFactory {
	return func(n, s int, dtype string, backward bool) (func() error, float64, error) {
		if backward {
			return nil, 0, errBackwardModel
		}
		if s == 0 {
			s = 128
		}
		return alphafold.NewModelBench(config, n, s, 4*s, dtype)
	}
}
