package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/params"
)

// caseRunner runs one kind of reference case. cs holds the whole case file;
// the result holds out/… (and grad/… when grad is set).
type caseRunner func(cs *params.Set, dtype string, grad bool) (*params.Set, error)

// caseKind maps a case name (meta "case") to its runner; names ending in "*"
// match by prefix (protein_*, msa_features_*).
func findRunner(name string) (caseRunner, bool) {
	if r, ok := caseRunners()[name]; ok {
		return r, true
	}
	for k, r := range caseRunners() {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(name, p) {
			return r, true
		}
	}
	return nil, false
}

func runModule(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run-module", flag.ContinueOnError)
	dtype := fs.String("dtype", "float64", "computation type: float32 or float64")
	bk := fs.String("backend", "cpu", "compute backend: cpu, or cuda (GPU 0) in foldkit_cuda builds; cuda runs forward passes only")
	grad := fs.Bool("grad", false, "also write grad/in/… and grad/params/… for the case's cotangents")
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("want CASE.npz RESULT.npz")
	}
	if *dtype != "float32" && *dtype != "float64" {
		return fmt.Errorf("-dtype %q: want float32 or float64", *dtype)
	}
	var kern backend.Pair // none: each module's own CPU code
	if *bk != "cpu" {
		k, err := openBackend(*bk)
		if err != nil {
			return fmt.Errorf("-backend %q: %w", *bk, err)
		}
		defer k.Close()
		kern = k
	}
	cs, err := params.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	res, name, err := runCase(cs, *dtype, *grad, kern)
	if err != nil {
		return err
	}
	if err := res.Write(fs.Arg(1)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s %s wrote %d arrays to %s\n", name, *dtype, *bk, res.Len(), fs.Arg(1))
	return nil
}

// runCase reads the case's meta, dispatches to its runner and refuses keys
// the runner did not use.
//
// With a backend in kern (-backend cuda) the case runs through its
// backend runner, which puts the forward pass on that backend.
func runCase(cs *params.Set, dtype string, grad bool, kern backend.Pair) (*params.Set, string, error) {
	metaStr, err := cs.String("meta")
	if err != nil {
		return nil, "", fmt.Errorf("case file has no meta: %w", err)
	}
	var meta struct {
		Case string `json:"case"`
	}
	if err := json.Unmarshal([]byte(metaStr), &meta); err != nil {
		return nil, "", fmt.Errorf("meta is not JSON: %w", err)
	}
	r, ok := findRunner(meta.Case)
	if !ok {
		return nil, meta.Case, fmt.Errorf("unknown module %q (known: %s)", meta.Case, strings.Join(knownCases(), ", "))
	}
	var res *params.Set
	if kern.F32 != nil || kern.F64 != nil {
		br, ok := backendRunners()[meta.Case]
		if !ok {
			return nil, meta.Case, fmt.Errorf("%s has no backend path yet (cases with one: %s)", meta.Case, strings.Join(backendCases(), ", "))
		}
		res, err = br(cs, dtype, grad, kern)
	} else {
		res, err = r(cs, dtype, grad)
	}
	if err != nil {
		return nil, meta.Case, fmt.Errorf("%s: %w", meta.Case, err)
	}
	// Outputs and gradients of the reference run are not inputs.
	// Without -grad the cotangents in/…/cot_* are not needed either.
	var unused []string
	for _, k := range cs.Unused() {
		last := k[strings.LastIndex(k, "/")+1:]
		if !grad && strings.HasPrefix(last, "cot_") {
			continue
		}
		if strings.HasPrefix(k, "params/") || strings.HasPrefix(k, "in/") {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return nil, meta.Case, fmt.Errorf("%s: keys not used by the module: %s", meta.Case, strings.Join(unused, ", "))
	}
	return res, meta.Case, nil
}

func knownCases() []string {
	var ks []string
	for k := range caseRunners() {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func listModules(w io.Writer) error {
	fmt.Fprintln(w, "run-module cases:")
	for _, k := range knownCases() {
		fmt.Fprintln(w, " ", k)
	}
	fmt.Fprintln(w, "run-module cases with a backend path (-backend cuda):")
	for _, k := range backendCases() {
		fmt.Fprintln(w, " ", k)
	}
	fmt.Fprintln(w, "bench modules:")
	for _, k := range knownBenches() {
		fmt.Fprintln(w, " ", k)
	}
	return nil
}
