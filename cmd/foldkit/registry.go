package main

import (
	"github.com/foldkit/foldkit/alphafold/features"
)

// caseRunners lists the reference-case kinds run-module knows, by meta
// "case"; a name ending in "*" matches every case with that prefix.
var caseRunners = map[string]caseRunner{
	"msa_features_*": features.RunCase,
}

// benchModules lists the modules bench knows, by the name of their reference case.
var benchModules = map[string]benchFactory{
	"sgemm": sgemmBench,
}
