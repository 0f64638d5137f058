// Command foldkit runs foldkit's modules and models from the command line.
//
// Usage:
//
//	foldkit demo
//	foldkit predict -params FILE [-msa x.a3m] [-recycles 3] [-backend cpu|cuda] [-out DIR] seq.fasta
//	foldkit run-module [-dtype float32|float64] [-backend cpu|cuda] [-grad] CASE.npz RESULT.npz
//	foldkit bench -module NAME -n N [-s S] [-dtype float32|float64] [-backward] [-backend cpu|cuda] [-repeats R]
//	foldkit modules
//
// run-module is the interchange command of foldkit's design: it reads a
// reference-case file (AF2-named parameters under params/, inputs under in/,
// a JSON meta naming the case), runs the module and writes out/… (and, with
// -grad, grad/in/… and grad/params/…) under the same names, so results can be
// compared with any Python implementation. With -backend cuda (foldkit_cuda
// builds) the forward pass of the cases whose modules have a backend path
// (the triangle and MSA attentions, transitions, outer product mean and
// Evoformer block) runs on GPU 0; gradients are computed on the CPU only.
//
// bench runs one module on random inputs with AlphaFold2's default
// configuration and prints one JSON line (module, sizes, dtype, backend, BLAS,
// median ms, GFLOP/s, bytes allocated, peak heap), so foldkit and another
// implementation can be compared on the same machine in one run.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `foldkit: AlphaFold2 building blocks in Go

Commands:
  demo        run the built-in demonstration and print what it checked
  run-module  run one module on a reference-case file: foldkit run-module [-dtype float32|float64] [-backend cpu|cuda] [-grad] CASE.npz RESULT.npz
  predict     predict a structure: foldkit predict -params FILE [-msa x.a3m] [-recycles 3] [-backend cpu|cuda] [-out DIR] seq.fasta
  bench       benchmark one module: foldkit bench -module NAME -n N [-s S] [-dtype float32] [-backward] [-backend cpu|cuda] [-repeats R]
  modules     list the modules run-module and bench know
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = demo(args[1:], stdout)
	case "run-module":
		err = runModule(args[1:], stdout)
	case "bench":
		err = bench(args[1:], stdout)
	case "predict":
		err = predict(args[1:], stdout, stderr)
	case "modules":
		err = listModules(stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "foldkit: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "foldkit %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
