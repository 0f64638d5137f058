package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
	"github.com/foldkit/foldkit/rigid"
)

// demoA3M is a small built-in alignment (a query and four hits with
// insertions, gaps and a duplicate).
const demoA3M = `#24	1
>query demo protein
MKTAYIAKQRQISFVKSHFSRQLE
>hit1
MKTAYIAKQRqqQISFVKSHFSRQLD
>hit2
MKT-YIAKQRQISFVKAHFSRQ--
>hit3 duplicate of hit2 once insertions are removed
MKT-YIAKQRQISFVKAHFsssSRQ--
>hit4
mMRTAYLAKQRQLSFVKSHFSRALE
`

// demoStep is one check the demo runs and reports.
type demoStep struct {
	name string
	run  func() (string, error)
}

func demo(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(w)
	out := fs.String("out", "", "directory for the demo prediction's files (default: a temporary directory, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		tmp, err := os.MkdirTemp("", "foldkit-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fmt.Fprintf(w, "foldkit demo (BLAS: %s)\n\n", gemm.Name())
	failed := 0
	for i, s := range demoSteps(dir, w) {
		t0 := time.Now()
		msg, err := s.run()
		d := time.Since(t0).Round(time.Millisecond)
		if err != nil {
			failed++
			fmt.Fprintf(w, "%2d. %-44s FAILED: %v\n", i+1, s.name, err)
			continue
		}
		fmt.Fprintf(w, "%2d. %-44s ok (%v)\n    %s\n", i+1, s.name, d, msg)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The demo model has random parameters, so its structure means nothing. Real predictions")
	fmt.Fprintln(w, "need DeepMind's released parameters (params_model_{1..5}[_ptm].npz, from the AlphaFold")
	fmt.Fprintln(w, "repository's download script); pass one to predict:")
	fmt.Fprintln(w, "    go run -tags openblas ./cmd/foldkit predict -params params_model_1_ptm.npz -msa query.a3m -out out query.fasta")
	if failed > 0 {
		return fmt.Errorf("%d demo checks failed", failed)
	}
	return nil
}

func demoSteps(dir string, w io.Writer) []demoStep {
	progress := func(line string) { fmt.Fprintf(w, "      %s\n", line) }
	return []demoStep{
		{"parse an A3M alignment", demoA3MParse},
		{"AF2 MSA features from the alignment", demoFeatures},
		{"rigid frames: group laws and Haar rotations", demoRigid},
		{"parameter file round trip by AF2 names", demoParams},
		{"sgemm 512³ through the selected BLAS", demoSgemm},
		{"whole model (AF2 widths, 2+1 blocks, 3 recycles)", func() (string, error) { return demoModel(dir, progress) }},
	}
}

func demoA3MParse() (string, error) {
	aln, err := protein.ParseA3M(strings.NewReader(demoA3M))
	if err != nil {
		return "", err
	}
	dels := 0
	for _, row := range aln.Deletions {
		for _, d := range row {
			dels += d
		}
	}
	if len(aln.Sequences) != 5 || dels != 6 {
		return "", fmt.Errorf("parsed %d rows with %d insertions, want 5 and 6", len(aln.Sequences), dels)
	}
	return fmt.Sprintf("%d rows of %d columns, %d insertions counted as deletions", len(aln.Sequences), len(aln.Sequences[0]), dels), nil
}

func demoFeatures() (string, error) {
	aln, err := protein.ParseA3M(strings.NewReader(demoA3M))
	if err != nil {
		return "", err
	}
	cfg := features.DefaultConfig()
	cfg.MaxMSAClusters, cfg.MaxExtraMSA, cfg.Seed = 3, 8, 1
	f, err := features.Build(aln.Sequences[0], aln, cfg)
	if err != nil {
		return "", err
	}
	// Every cluster profile row is a distribution over 23 classes.
	for i := 0; i < f.S*f.L; i++ {
		sum := 0.0
		for _, p := range f.ClusterProfile[i*23 : (i+1)*23] {
			sum += p
		}
		if sum < 1-1e-5 || sum > 1+1e-12 {
			return "", fmt.Errorf("cluster profile row %d sums to %v", i, sum)
		}
	}
	return fmt.Sprintf("L=%d, 5 rows → %d unique, %d cluster centres + %d extra; msa_feat %d channels, profiles sum to 1",
		f.L, f.S+f.Se, f.S, f.Se, features.MSAFeatChannels), nil
}

func demoParams() (string, error) {
	s := params.New()
	rng := rand.New(rand.NewPCG(7, 7))
	const key = "alphafold/alphafold_iteration/evoformer/evoformer_iteration/pair_transition/transition1//weights"
	w := randSlice[float32](rng, 2*8*32)
	if err := params.Put(s, key, []int{2, 8, 32}, w); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		return "", err
	}
	r, err := params.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return "", err
	}
	layer, err := r.Sub("alphafold/alphafold_iteration/evoformer/evoformer_iteration/").Layer(1)
	if err != nil {
		return "", err
	}
	got, err := params.Get[float32](layer, "pair_transition/transition1//weights", 8, 32)
	if err != nil {
		return "", err
	}
	for i := range got {
		if got[i] != w[8*32+i] {
			return "", fmt.Errorf("layer 1 element %d differs", i)
		}
	}
	_, err = params.Get[float32](layer, "pair_transition/transition1//weights", 32, 8)
	return fmt.Sprintf("%d-byte npz; layer 1 of the stack read back exactly; a wrong shape is refused: %q", buf.Len(), err), nil
}

func demoSgemm() (string, error) {
	run, flops, err := sgemmBench(512, 0, "float32", false)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	const reps = 3
	for i := 0; i < reps; i++ {
		run()
	}
	s := time.Since(t0).Seconds()
	return fmt.Sprintf("%.1f GFLOP/s (%s; build with -tags openblas for OpenBLAS)", reps*flops/s/1e9, gemm.Name()), nil
}

func demoRigid() (string, error) {
	rng := rand.New(rand.NewPCG(11, 11))
	const n = 1000
	a, b, c := randomFrames[float64](rng, n), randomFrames[float64](rng, n), randomFrames[float64](rng, n)
	worstAssoc, worstInv, worstQuat := 0.0, 0.0, 0.0
	for i := 0; i < n; i++ {
		l := a[i].Compose(b[i]).Compose(c[i])
		r := a[i].Compose(b[i].Compose(c[i]))
		id := a[i].Compose(a[i].Invert())
		q := rigid.RotToQuat(a[i].Rot)
		back := rigid.QuatToRot(q)
		for k := 0; k < 9; k++ {
			worstAssoc = math.Max(worstAssoc, math.Abs(l.Rot[k]-r.Rot[k]))
			want := 0.0
			if k%4 == 0 {
				want = 1
			}
			worstInv = math.Max(worstInv, math.Abs(id.Rot[k]-want))
			worstQuat = math.Max(worstQuat, math.Abs(back[k]-a[i].Rot[k]))
		}
	}
	// float64 products of unit-norm rotations: errors of a few ulp.
	if worstAssoc > 1e-12 || worstInv > 1e-12 || worstQuat > 1e-12 {
		return "", fmt.Errorf("errors %.2g %.2g %.2g exceed 1e-12", worstAssoc, worstInv, worstQuat)
	}
	return fmt.Sprintf("%d random frames: associativity %.1e, T∘T⁻¹−I %.1e, rot→quat→rot %.1e (float64)", n, worstAssoc, worstInv, worstQuat), nil
}
