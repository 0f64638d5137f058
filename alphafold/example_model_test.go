package alphafold_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/alphafold/features"
	"github.com/foldkit/foldkit/params"
)

// The released models' configurations.
func ExamplePreset() {
	cfg, err := alphafold.Preset("model_1_ptm")
	if err != nil {
		panic(err)
	}
	fmt.Println("blocks:", cfg.EvoformerBlocks, cfg.ExtraMSABlocks)
	fmt.Println("templates in the file:", cfg.Templates, "PAE head:", cfg.Heads.PredictedAlignedError)
	fmt.Println("passes:", cfg.Iterations, "extra sequences:", cfg.MaxExtraMSA)
	// Output:
	// blocks: 48 4
	// templates in the file: true PAE head: true
	// passes: 4 extra sequences: 5120
}

// A freshly initialised model (AF2's initialisers zero the final layers,
// so every pLDDT logit is 0 and the pLDDT is the middle of its range)
// predicts a single sequence with recycling; the progress callback sees
// every pass.
func ExampleNewModel() {
	cfg, err := alphafold.ModelBenchConfig("reduced") // AF2's widths, 2 + 1 blocks
	if err != nil {
		panic(err)
	}
	cfg.Iterations = 3
	m, err := alphafold.NewModel[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	f, err := alphafoldFeatures("MKTAYIAKQRQISFVKSHFSRQ", cfg)
	if err != nil {
		panic(err)
	}
	res, err := m.Predict(context.Background(), f, alphafold.PredictOptions{
		Progress: func(p alphafold.Progress) {
			fmt.Printf("pass %d of %d: mean pLDDT %.1f\n", p.Pass+1, p.Passes, p.MeanPLDDT)
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("atom37 positions:", len(res.FinalAtomPositions)/(37*3), "residues")
	// Output:
	// pass 1 of 3: mean pLDDT 50.0
	// pass 2 of 3: mean pLDDT 50.0
	// pass 3 of 3: mean pLDDT 50.0
	// atom37 positions: 22 residues
}

// A model saved under AF2's names loads back through the same loader as a
// released parameter file (params.Open("params_model_3.npz")); the stack
// lengths come from the arrays.
func ExampleLoadModel() {
	cfg, _ := alphafold.ModelBenchConfig("reduced")
	m, err := alphafold.NewModel[float32](cfg, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		panic(err)
	}
	file := params.New()
	if err := m.Save(file); err != nil {
		panic(err)
	}
	loaded, rep, err := alphafold.LoadModel[float32](file, alphafold.DefaultConfig())
	if err != nil {
		panic(err)
	}
	fmt.Println(file.Len(), "arrays;", rep.EvoformerBlocks, "Evoformer and", rep.ExtraMSABlocks, "extra-MSA blocks")
	fmt.Println(len(loaded.Evoformer.Blocks), len(rep.Notices))
	// Output:
	// 265 arrays; 2 Evoformer and 1 extra-MSA blocks
	// 2 0
}

// alphafoldFeatures builds single-sequence features with the preset's data
// configuration.
func alphafoldFeatures(seq string, cfg alphafold.Config) (*features.Features, error) {
	return features.Build(seq, nil, cfg.FeaturesConfig())
}
