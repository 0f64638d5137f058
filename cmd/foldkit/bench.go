package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/benchkit"
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/rigid"
)

// errBackwardModel: the whole model has no backward pass to time.
var errBackwardModel = errors.New("the whole model is benchmarked in inference only (no -backward)")

// benchFactory builds one benchmarked computation of a module at size n
// (residues) and s (sequences) and returns it with its FLOP count per call.
type benchFactory func(n, s int, dtype string, backward bool) (run func() error, flops float64, err error)

func knownBenches() []string {
	var ks []string
	for k := range benchModules() {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func bench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	module := fs.String("module", "", "module to run (foldkit modules lists them)")
	n := fs.Int("n", 256, "residues (for sgemm: the matrix size)")
	s := fs.Int("s", 0, "sequences (MSA modules; 0 = the module's default)")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	backward := fs.Bool("backward", false, "time forward and backward")
	repeats := fs.Int("repeats", 5, "timed repeats after one warm-up")
	bk := fs.String("backend", "cpu", "cpu, or cuda (GPU 0, foldkit_cuda builds): forward passes of the modules with a backend path")
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *module == "" {
		return errors.New("-module is required")
	}
	f, ok := benchModules()[*module]
	if !ok {
		return fmt.Errorf("unknown module %q (known: %v)", *module, knownBenches())
	}
	if *n < 1 || *s < 0 || *repeats < 1 {
		return fmt.Errorf("bad sizes: -n %d -s %d -repeats %d", *n, *s, *repeats)
	}
	if *dtype != "float32" && *dtype != "float64" {
		return fmt.Errorf("-dtype %q: want float32 or float64", *dtype)
	}
	var runF func() error
	var flops float64
	var err error
	name, blas := "cpu", gemm.Name()
	if *bk != "cpu" {
		if *backward {
			return fmt.Errorf("-backend %s times forward passes only", *bk)
		}
		k, err := openBenchBackend(*bk)
		if err != nil {
			return fmt.Errorf("-backend %q: %w", *bk, err)
		}
		defer k.Close()
		run, fl, done, err := backendBench(k, *module, *n, *s, *dtype)
		if err != nil {
			return err
		}
		defer done()
		runF, flops, name = run, fl, *bk
		if k.F32 != nil {
			blas = k.F32.Name()
		}
	} else if runF, flops, err = f(*n, *s, *dtype, *backward); err != nil {
		return err
	}
	res, err := benchkit.Run(benchkit.Result{
		Module: *module, N: *n, S: *s, DType: *dtype, Backend: name, BLAS: blas, Backward: *backward,
	}, *repeats, flops, runF)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// sgemmBench multiplies two random n×n matrices.
func sgemmBench(n, _ int, dtype string, _ bool) (func() error, float64, error) {
	rng := rand.New(rand.NewPCG(1, 1))
	if dtype == "float64" {
		a, b, c := randSlice[float64](rng, n*n), randSlice[float64](rng, n*n), make([]float64, n*n)
		return func() error { gemm.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n); return nil }, gemm.Flops(n, n, n), nil
	}
	a, b, c := randSlice[float32](rng, n*n), randSlice[float32](rng, n*n), make([]float32, n*n)
	return func() error { gemm.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n); return nil }, gemm.Flops(n, n, n), nil
}

func randSlice[T float32 | float64](rng *rand.Rand, n int) []T {
	x := make([]T, n)
	for i := range x {
		x[i] = T(rng.NormFloat64())
	}
	return x
}

// rigidBench composes two batches of n random frames (the -n flag counts
// frames here); a composition costs 36 multiply-adds for the rotation and
// 9 plus 3 adds for the translation: 2·(27+9)+3 ≈ 75 FLOPs.
func rigidBench(n, _ int, dtype string, _ bool) (func() error, float64, error) {
	rng := rand.New(rand.NewPCG(3, 3))
	if dtype == "float64" {
		a, b := randomFrames[float64](rng, n), randomFrames[float64](rng, n)
		dst := make([]rigid.Rigid[float64], n)
		return func() error { return rigid.Compose(dst, a, b) }, 75 * float64(n), nil
	}
	a, b := randomFrames[float32](rng, n), randomFrames[float32](rng, n)
	dst := make([]rigid.Rigid[float32], n)
	return func() error { return rigid.Compose(dst, a, b) }, 75 * float64(n), nil
}

func randomFrames[T float32 | float64](rng *rand.Rand, n int) []rigid.Rigid[T] {
	fs := make([]rigid.Rigid[T], n)
	for i := range fs {
		fs[i] = rigid.RandomRotation[T](rng)
		for k := range fs[i].Trans {
			fs[i].Trans[k] = T(rng.NormFloat64())
		}
	}
	return fs
}

// moduleBench adapts a package's NewBench(module, n, s, dtype, backward) to
// the bench table.
func moduleBench(name string, nb func(module string, n, s int, dtype string, backward bool) (func() error, float64, error)) benchFactory {
	return func(n, s int, dtype string, backward bool) (func() error, float64, error) {
		return nb(name, n, s, dtype, backward)
	}
}

// attentionBench runs the shared streaming attention core at the
// triangle-attention shape: n batch rows of n queries and n keys, 4 heads of
// 32 channels, a pair bias and a key mask. FLOPs: Dims.Flops (4·B·H·Lq·Lk·C)
// forward, plus Dims.BackwardFlops with -backward.
func attentionBench(n, _ int, dtype string, backward bool) (func() error, float64, error) {
	if dtype == "float64" {
		return attentionBenchT[float64](n, backward)
	}
	return attentionBenchT[float32](n, backward)
}

func attentionBenchT[T float32 | float64](n int, backward bool) (func() error, float64, error) {
	const h, c = 4, 32
	rng := rand.New(rand.NewPCG(5, 5))
	d := attn.Dims{Batch: n, Heads: h, Lq: n, Lk: n, C: c, Cv: c, KVHeads: h}
	lay := attn.Layout{Batch: n * h * c, Row: h * c}
	size := n * n * h * c
	mask := make([]T, n*n)
	for i := range mask {
		mask[i] = 1
	}
	p := &attn.Problem[T]{
		Dims: d, Q: randSlice[T](rng, size), QL: lay, K: randSlice[T](rng, size), KL: lay,
		V: randSlice[T](rng, size), VL: lay, Scale: T(1 / math.Sqrt(c)),
		PairBias: randSlice[T](rng, h*n*n), KeyMask: mask, MaskBias: attn.EvoformerMaskBias,
	}
	o := make([]T, size)
	lse := make([]T, n*h*n)
	flops := d.Flops()
	if !backward {
		return func() error { return attn.Forward(p, o, lay, lse) }, flops, nil
	}
	do := randSlice[T](rng, size)
	dq, dk, dv, db := make([]T, size), make([]T, size), make([]T, size), make([]T, h*n*n)
	return func() error {
		if err := attn.Forward(p, o, lay, lse); err != nil {
			return err
		}
		return attn.Backward(p, o, lay, lse, do, dq, dk, dv, db)
	}, flops + d.BackwardFlops(), nil
}
