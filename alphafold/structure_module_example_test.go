package alphafold_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/alphafold"
	"github.com/foldkit/foldkit/params"
	"github.com/foldkit/foldkit/residue"
)

// A freshly initialised structure module leaves every backbone frame at the
// identity (AF2's zero-initialised affine update), so each residue's atoms
// sit at their literature positions around the origin.
func ExampleNewStructureModuleParams() {
	cfg := alphafold.DefaultStructureModuleConfig()
	p, err := alphafold.NewStructureModuleParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const n = 3
	in := &alphafold.StructureModuleInput[float32]{
		Single:  make([]float32, n*cfg.IPA.CS),
		Pair:    make([]float32, n*n*cfg.IPA.CZ),
		AAType:  []int{residue.Ala, residue.Gly, residue.Trp},
		SeqMask: []float32{1, 1, 1},
	}
	out, err := p.Forward(in, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("iterations:", out.Layers, "residues:", out.N)
	fmt.Println("final frame of residue 0:", out.FinalFrames()[:7])
	ala := out.FinalPositions()[:3*4] // N, CA, C, O of alanine in Å
	fmt.Printf("alanine CA: %.3f\n", ala[3:6])
	// Output:
	// iterations: 8 residues: 3
	// final frame of residue 0: [1 0 0 0 0 0 0]
	// alanine CA: [0.000 0.000 0.000]
}

// Parameters saved under AF2's names load back unchanged: the same call
// reads a real AF2 parameter file narrowed to alphafold/alphafold_iteration/.
func ExampleLoadStructureModuleParams() {
	cfg := alphafold.DefaultStructureModuleConfig()
	p, _ := alphafold.NewStructureModuleParams[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	s := params.New()
	if err := p.Save(s, ""); err != nil {
		fmt.Println(err)
		return
	}
	q, err := alphafold.LoadStructureModuleParams[float32](s, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(s.Keys()), "arrays, for example", alphafold.StructureModuleParamNames(cfg)[0])
	fmt.Println("same initial projection:", q.InitialProjection.W[5] == p.InitialProjection.W[5])
	// Output:
	// 45 arrays, for example structure_module/single_layer_norm//scale
	// same initial projection: true
}

// Fresh heads have zero output layers: every pLDDT bin is equally likely,
// so the pLDDT of every residue is the mean bin centre, 50.
func ExampleNewHeadsParams() {
	cfg := alphafold.DefaultHeadsConfig()
	h, err := alphafold.NewHeadsParams[float64](cfg, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		fmt.Println(err)
		return
	}
	const n = 2
	single := make([]float64, n*cfg.CS)
	for i := range single {
		single[i] = float64(i%7) - 3
	}
	logits := make([]float64, n*cfg.PLDDTBins)
	if err := h.PLDDT.Forward(single, n, logits, nil); err != nil {
		fmt.Println(err)
		return
	}
	plddt, _ := alphafold.PLDDT(logits, n, cfg.PLDDTBins)
	fmt.Printf("pLDDT: %.1f\n", plddt)
	fmt.Println("distogram edges:", alphafold.DistogramBreaks(cfg)[0], "…", alphafold.DistogramBreaks(cfg)[cfg.DistogramBins-2])
	// Output:
	// pLDDT: [50.0 50.0]
	// distogram edges: 2.3125 … 21.6875
}

// Atom14ToAtom37 places the atom14 slots of each residue at their atom37
// indices; glycine has four heavy atoms, N, CA, C and O.
func ExampleAtom14ToAtom37() {
	pos14 := make([]float64, residue.NumAtom14*3)
	for i := range pos14 {
		pos14[i] = float64(i + 1)
	}
	pos37, err := alphafold.Atom14ToAtom37(pos14, []int{residue.Gly})
	if err != nil {
		fmt.Println(err)
		return
	}
	names := residue.AtomTypes()
	for a := range residue.NumAtomTypes {
		if p := pos37[3*a : 3*a+3]; p[0] != 0 {
			fmt.Println(names[a], p)
		}
	}
	// Output:
	// N [1 2 3]
	// CA [4 5 6]
	// C [7 8 9]
	// O [10 11 12]
}
