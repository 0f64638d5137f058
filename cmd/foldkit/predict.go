package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
)

// predictOptions are the flags of `foldkit predict`.
type predictOptions struct {
	params, preset, msa, out, dtype string
	backend                         string
	recycles                        int
	tolerance                       float64
	seed                            uint64
	quiet                           bool
}

func predict(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o predictOptions
	fs.StringVar(&o.params, "params", "", "AF2 parameter file (params_model_{1..5}[_ptm].npz, DeepMind's release)")
	fs.StringVar(&o.preset, "preset", "", "model preset (model_1 … model_5[_ptm]); default: from the file name")
	fs.StringVar(&o.msa, "msa", "", "A3M alignment whose first row is the query (default: single-sequence mode)")
	fs.IntVar(&o.recycles, "recycles", 3, "recycling iterations (passes − 1)")
	fs.Float64Var(&o.tolerance, "tolerance", 0, "stop recycling early when the Cα distances change by at most this many Å")
	fs.StringVar(&o.out, "out", "out", "output directory")
	fs.StringVar(&o.dtype, "dtype", "float32", "float32 or float64")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the MSA sampling")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress display")
	fs.StringVar(&o.backend, "backend", "cpu", "where the Evoformer and extra-MSA stacks run: cpu, or cuda (GPU 0) in foldkit_cuda builds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one FASTA file: foldkit predict -params FILE [-msa x.a3m] [-recycles 3] [-out DIR] seq.fasta")
	}
	if o.params == "" {
		return errors.New("-params is required: pass one of DeepMind's released params_model_*.npz files")
	}
	if o.recycles < 0 {
		return fmt.Errorf("-recycles %d: want ≥ 0", o.recycles)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch o.dtype {
	case "float32":
		return predictT[float32](ctx, o, fs.Arg(0), stdout, stderr)
	case "float64":
		return predictT[float64](ctx, o, fs.Arg(0), stdout, stderr)
	}
	return fmt.Errorf("-dtype %q: want float32 or float64", o.dtype)
}

// presetFor returns the preset named by the flag, else the one in the file
// name (params_model_3_ptm.npz → model_3_ptm), else model_1, with the _ptm
// suffix added or removed to match the file's heads.
func presetFor(flagValue, path string, s *params.Set) (alphafold.Config, error) {
	name := flagValue
	if name == "" {
		base := strings.TrimSuffix(filepath.Base(path), ".npz")
		name = strings.TrimPrefix(base, "params_")
		if _, err := alphafold.Preset(name); err != nil {
			name = "model_1"
		}
		hasPAE := len(s.Sub(alphafold.ModelPrefix+"predicted_aligned_error_head/").Keys()) > 0
		name = strings.TrimSuffix(name, "_ptm")
		if hasPAE {
			name += "_ptm"
		}
	}
	return alphafold.Preset(name)
}

func predictT[T float32 | float64](ctx context.Context, o predictOptions, fasta string, stdout, stderr io.Writer) error {
	t0 := time.Now()
	f, err := os.Open(fasta)
	if err != nil {
		return err
	}
	recs, err := protein.ParseFASTA(f)
	f.Close()
	if err != nil {
		return err
	}
	if len(recs) != 1 {
		return fmt.Errorf("%s holds %d sequences; foldkit predicts one monomer at a time", fasta, len(recs))
	}
	seq := strings.ToUpper(recs[0].Sequence)
	var aln *protein.Alignment
	if o.msa != "" {
		af, err := os.Open(o.msa)
		if err != nil {
			return err
		}
		aln, err = protein.ParseA3M(af)
		af.Close()
		if err != nil {
			return err
		}
	}
	set, err := params.Open(o.params)
	if err != nil {
		return err
	}
	cfg, err := presetFor(o.preset, o.params, set)
	if err != nil {
		return err
	}
	model, report, err := alphafold.LoadModel[T](set, cfg)
	if err != nil {
		return err
	}
	for _, n := range report.Notices {
		fmt.Fprintln(stderr, "note:", n)
	}
	fcfg := cfg.FeaturesConfig()
	fcfg.Seed = o.seed
	feats, err := features.Build(seq, aln, fcfg)
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "%s: %d residues, %d MSA clusters, %d extra sequences, %s, %d Evoformer blocks\n",
			cfg.Name, feats.L, feats.S, feats.Se, o.dtype, report.EvoformerBlocks)
	}
	opt := alphafold.PredictOptions{Iterations: o.recycles + 1, Tolerance: o.tolerance}
	if o.backend != "cpu" {
		k, err := openBackend(o.backend)
		if err != nil {
			return fmt.Errorf("-backend %q: %w", o.backend, err)
		}
		defer k.Close()
		opt.Backend = k
	}
	if !o.quiet {
		opt.Progress = func(p alphafold.Progress) { fmt.Fprintln(stderr, p.String()) }
	}
	res, err := model.Predict(ctx, feats, opt)
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(fasta), filepath.Ext(fasta))
	files, err := writePrediction(o.out, name, seq, feats, res, time.Since(t0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mean pLDDT %.1f", mean(res.PLDDT))
	if !math.IsNaN(res.PTM) {
		fmt.Fprintf(stdout, ", pTM %.3f", res.PTM)
	}
	fmt.Fprintf(stdout, "; wrote %s\n", strings.Join(files, ", "))
	return nil
}

func mean[T float32 | float64](x []T) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v)
	}
	return s / float64(max(len(x), 1))
}

func to64[T float32 | float64](x []T) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// scores is the JSON record predict writes beside the structure.
type scores struct {
	Name         string             `json:"name"`
	Sequence     string             `json:"sequence"`
	MeanPLDDT    float64            `json:"mean_plddt"`
	PLDDT        []float64          `json:"plddt"`
	PTM          *float64           `json:"ptm,omitempty"`
	MaxPAE       *float64           `json:"max_pae,omitempty"`
	PAE          [][]float64        `json:"pae,omitempty"`
	Recycles     int                `json:"recycles"`
	Converged    bool               `json:"converged"`
	CAChanges    []*float64         `json:"ca_changes"`
	TimingsS     map[string]float64 `json:"timings_s"`
	MSAClusters  int                `json:"msa_clusters"`
	ExtraMSASeqs int                `json:"extra_msa_sequences"`
}

// writePrediction writes NAME.pdb, NAME.cif (pLDDT in the B factors),
// NAME_scores.json and the PNG plots into dir and returns their paths.
func writePrediction[T float32 | float64](dir, name, seq string, f *features.Features, res *alphafold.Result[T], total time.Duration) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := res.N
	st := &protein.Structure{
		AAType:       f.AAType,
		Positions:    to64(res.FinalAtomPositions),
		Mask:         to64(res.FinalAtomMask),
		ResidueIndex: make([]int, n),
		ChainID:      make([]string, n),
	}
	for i := 0; i < n; i++ {
		st.ResidueIndex[i] = f.ResidueIndex[i] + 1
		st.ChainID[i] = "A"
	}
	plddt := to64(res.PLDDT)
	if err := st.SetPLDDT(plddt); err != nil {
		return nil, err
	}
	var files []string
	write := func(path string, fn func(io.Writer) error) error {
		w, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(w); err != nil {
			w.Close()
			return err
		}
		files = append(files, path)
		return w.Close()
	}
	base := filepath.Join(dir, name)
	if err := write(base+".pdb", func(w io.Writer) error { return protein.WritePDB(w, st) }); err != nil {
		return nil, err
	}
	if err := write(base+".cif", func(w io.Writer) error { return protein.WriteMMCIF(w, st, name) }); err != nil {
		return nil, err
	}
	sc := scores{
		Name: name, Sequence: seq, MeanPLDDT: mean(res.PLDDT), PLDDT: plddt,
		Recycles: res.Passes - 1, Converged: res.Converged,
		MSAClusters: f.S, ExtraMSASeqs: f.Se,
		TimingsS: map[string]float64{
			"total": total.Seconds(), "model": res.Timings.Total.Seconds(),
			"embedding": res.Timings.Embedding.Seconds(), "extra_msa": res.Timings.ExtraMSA.Seconds(),
			"evoformer": res.Timings.Evoformer.Seconds(), "structure_module": res.Timings.StructureModule.Seconds(),
			"heads": res.Timings.Heads.Seconds(),
		},
	}
	for _, c := range res.Changes {
		if math.IsNaN(c) {
			sc.CAChanges = append(sc.CAChanges, nil)
		} else {
			v := c
			sc.CAChanges = append(sc.CAChanges, &v)
		}
	}
	if res.PAE != nil {
		ptm, maxPAE := res.PTM, res.MaxPAE
		sc.PTM, sc.MaxPAE = &ptm, &maxPAE
		pae := to64(res.PAE)
		for i := 0; i < n; i++ {
			sc.PAE = append(sc.PAE, pae[i*n:(i+1)*n])
		}
	}
	if err := write(base+"_scores.json", func(w io.Writer) error {
		e := json.NewEncoder(w)
		e.SetIndent("", " ")
		return e.Encode(sc)
	}); err != nil {
		return nil, err
	}
	residues := make([]int, n)
	for i := range residues {
		residues[i] = st.ResidueIndex[i]
	}
	if err := plotPLDDT(base+"_plddt.png", plddt, residues); err != nil {
		return nil, err
	}
	files = append(files, base+"_plddt.png")
	if res.PAE != nil {
		if err := plotPAE(base+"_pae.png", to64(res.PAE), n); err != nil {
			return nil, err
		}
		files = append(files, base+"_pae.png")
	}
	return files, nil
}
