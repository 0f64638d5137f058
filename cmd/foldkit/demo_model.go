package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/protein"
)

// demoModelConfig is the built-in model: AF2's model_1_ptm widths with the
// depth of the reference full-model case (2 Evoformer blocks, 1 extra-MSA
// block), 3 recycles, and random parameters drawn with AF2's initialisers
// from a fixed seed.
func demoModelConfig() (alphafold.Config, error) {
	cfg, err := alphafold.Preset("model_1_ptm")
	if err != nil {
		return cfg, err
	}
	cfg.EvoformerBlocks, cfg.ExtraMSABlocks = 2, 1
	cfg.Iterations = 4
	return cfg, nil
}

// demoBuiltinParams returns the built-in parameter file as npz bytes, under
// the full names of a released AF2 file.
func demoBuiltinParams(cfg alphafold.Config) ([]byte, error) {
	m, err := alphafold.NewModel[float32](cfg, rand.New(rand.NewPCG(2021, 7)))
	if err != nil {
		return nil, err
	}
	// AF2 initialises final layers to zero, which would make every output
	// trivial; give every parameter a small random perturbation so that the
	// demo exercises all paths.
	s := params.New()
	if err := m.Save(s); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, k := range s.Keys() {
		a, _ := s.Array(k)
		if x, ok := a.Data.([]float32); ok {
			for i := range x {
				x[i] += float32(0.02 * rng.NormFloat64())
			}
		}
	}
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// demoModel runs the whole model on the built-in alignment and parameters,
// writes the outputs predict writes, reads the PDB and mmCIF back, and
// checks that permuting MSA rows 1..S−1 leaves the prediction unchanged.
func demoModel(outDir string, progress func(string)) (string, error) {
	cfg, err := demoModelConfig()
	if err != nil {
		return "", err
	}
	raw, err := demoBuiltinParams(cfg)
	if err != nil {
		return "", err
	}
	set, err := params.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return "", err
	}
	model, report, err := alphafold.LoadModel[float32](set, cfg)
	if err != nil {
		return "", fmt.Errorf("loading the built-in parameters: %w", err)
	}
	aln, err := protein.ParseA3M(strings.NewReader(demoA3M))
	if err != nil {
		return "", err
	}
	fcfg := cfg.FeaturesConfig()
	fcfg.Sample = false // file order: the permutation check below needs no sampling
	f, err := features.Build(aln.Sequences[0], aln, fcfg)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	res, err := model.Predict(context.Background(), f, alphafold.PredictOptions{
		Progress: func(p alphafold.Progress) { progress(p.String()) },
	})
	if err != nil {
		return "", err
	}
	for i, v := range res.FinalAtomPositions {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return "", fmt.Errorf("atom coordinate %d is %v", i, v)
		}
	}
	files, err := writePrediction(outDir, "demo", aln.Sequences[0], f, res, time.Since(t0))
	if err != nil {
		return "", err
	}
	// Read both structure files back with foldkit's readers.
	for _, ext := range []string{".pdb", ".cif"} {
		path := filepath.Join(outDir, "demo"+ext)
		r, err := os.Open(path)
		if err != nil {
			return "", err
		}
		var st *protein.Structure
		if ext == ".pdb" {
			st, err = protein.ReadPDB(r, "A")
		} else {
			st, err = protein.ReadMMCIF(r, "A")
		}
		r.Close()
		if err != nil {
			return "", fmt.Errorf("reading back %s: %w", path, err)
		}
		if st.Len() != res.N {
			return "", fmt.Errorf("%s has %d residues, want %d", path, st.Len(), res.N)
		}
		for i, v := range st.Positions {
			// Three decimals in the files: 5e-4 Å, plus float32 rounding.
			if d := math.Abs(v - float64(res.FinalAtomPositions[i])); st.Mask[i/3] == 1 && d > 6e-4 {
				return "", fmt.Errorf("%s: coordinate %d differs by %.2g Å", path, i, d)
			}
		}
	}
	// Permuting MSA rows 1..S−1 (clustering off) must not change the prediction.
	perm, err := permutedRows(f)
	if err != nil {
		return "", err
	}
	res2, err := model.Predict(context.Background(), perm, alphafold.PredictOptions{})
	if err != nil {
		return "", err
	}
	worst := 0.0
	for i := range res.FinalAtomPositions {
		worst = math.Max(worst, math.Abs(float64(res.FinalAtomPositions[i]-res2.FinalAtomPositions[i])))
	}
	// float32 round-off through 4 passes of the model: sums in a different
	// order differ by ~1e-6 relative; 1e-2 Å leaves room for its growth.
	if worst > 1e-2 {
		return "", fmt.Errorf("permuting MSA rows moved atoms by %.3g Å", worst)
	}
	notices := ""
	if len(report.Notices) > 0 {
		notices = "; " + strings.Join(report.Notices, "; ")
	}
	return fmt.Sprintf("%d residues, %d passes, mean pLDDT %.1f, pTM %.3f; wrote %d files to %s, read PDB and mmCIF back; MSA row permutation moves atoms by %.1e Å%s",
		res.N, res.Passes, mean(res.PLDDT), res.PTM, len(files), outDir, worst, notices), nil
}

// permutedRows returns a copy of f with MSA rows 1..S−1 reversed.
func permutedRows(f *features.Features) (*features.Features, error) {
	g := *f
	s, l := f.S, f.L
	if s < 3 {
		return nil, fmt.Errorf("demo alignment has %d rows, want ≥ 3", s)
	}
	order := []int{0}
	for r := s - 1; r >= 1; r-- {
		order = append(order, r)
	}
	rowsF := func(x []float64, w int) []float64 {
		y := make([]float64, 0, len(x))
		for _, r := range order {
			y = append(y, x[r*l*w:(r+1)*l*w]...)
		}
		return y
	}
	rowsI := func(x []int) []int {
		y := make([]int, 0, len(x))
		for _, r := range order {
			y = append(y, x[r*l:(r+1)*l]...)
		}
		return y
	}
	g.MSA, g.TrueMSA = rowsI(f.MSA), rowsI(f.TrueMSA)
	g.BertMask, g.DeletionMatrix, g.MSAMask = rowsF(f.BertMask, 1), rowsF(f.DeletionMatrix, 1), rowsF(f.MSAMask, 1)
	g.ClusterProfile, g.ClusterDeletionMean = rowsF(f.ClusterProfile, features.NumMSAClasses), rowsF(f.ClusterDeletionMean, 1)
	g.MSAFeat = rowsF(f.MSAFeat, features.MSAFeatChannels)
	return &g, nil
}
