package main

import (
	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/ipa"
	"github.com/foldkit/foldkit/msaattn"
	"github.com/foldkit/foldkit/rigid"
)

// caseRunners lists the reference-case kinds run-module knows, by meta
// "case"; a name ending in "*" matches every case with that prefix.
var caseRunners = map[string]caseRunner{
	"msa_features_*":              features.RunCase,
	"protein_*":                   alphafold.RunProteinCase,
	"rigid":                       rigid.RunCase,
	"ipa":                         ipa.RunCase,
	"msa_row_attention":           msaattn.RunCase,
	"msa_column_attention":        msaattn.RunCase,
	"msa_column_global_attention": msaattn.RunCase,
}

// benchModules lists the modules bench knows, by the name of their reference case.
var benchModules = map[string]benchFactory{
	"sgemm":                       sgemmBench,
	"attention":                   attentionBench,
	"rigid":                       rigidBench,
	"ipa":                         moduleBench("ipa", ipa.NewBench),
	"msa_row_attention":           moduleBench("msa_row_attention", msaattn.NewBench),
	"msa_column_attention":        moduleBench("msa_column_attention", msaattn.NewBench),
	"msa_column_global_attention": moduleBench("msa_column_global_attention", msaattn.NewBench),
}
