// Package alphafold assembles AlphaFold2 (AF2) from its parts: the
// Evoformer and its reusable modules, the extra-MSA stack, the structure
// module, the output heads, the input features and the model that runs
// them with recycling.
//
// It builds on the module packages below it: msaattn (MSA row, column and
// global column attention), triangle (triangle multiplicative updates and
// triangle attention), ipa (invariant point attention), recycle (the
// recycling embedder and loop), rigid (frames) and residue (AF2's residue
// constants). The parts that only the model needs, such as the outer product
// mean and the transitions, live here and are exported for reuse.
//
// # Layouts
//
// Every tensor is a plain row-major slice with explicit dimensions, generic
// over float32 (the working type) and float64 (which reproduces the
// reference cases to about 1e-14). With S sequences, N residues and AF2's
// widths c_m = 256 (c_e = 64 in the extra-MSA stack), c_z = 128 and
// c_s = 384:
//
//	msa       [S, N, c_m]   the MSA representation
//	pair      [N, N, c_z]   the pair representation
//	single    [N, c_s]      the single representation
//	msaMask   [S, N]        1 for a present position, 0 for padding
//	pairMask  [N, N]
//
// Parameters use AF2's haiku names and layouts (Linear weights [in, out],
// layer norms with scale and offset), so that a released parameter file,
// narrowed with params.Set.Sub to the right prefix, loads directly; stacked
// layers carry AF2's leading layer axis. The loaders document the names
// they read.
//
// # Conventions
//
// Modules return their update without the residual, as AF2's modules do;
// blocks and stacks apply the residual updates in AF2's order and update
// their representations in place. Dropout follows AF2's rates and shared
// dimensions and is applied only when a random source is passed (training);
// inference passes none. Every module evaluates in chunks so that memory
// stays a few copies of the largest representation; no N×N×N tensor is ever
// formed. Forward passes optionally fill a cache; Backward passes return
// (or accumulate) the gradients of every input and parameter, and gorgonia
// adapters make the parts nodes of a gorgonia graph whose gradients run
// those Backward passes.
//
// # Structure module, geometry and the model
//
// The structure module (Algorithm 20) works with translations in nanometres
// inside and reports frames and atom positions in ångström (×10), as AF2
// does; rotations are detached from the gradient between iterations.
// Torsion frames and atom positions follow Algorithms 24–25 with AF2's
// residue constants; Atom14ToAtom37 gives AF2's final_atom_positions. The
// heads are pLDDT (Algorithm 29), distogram, masked MSA, experimentally
// resolved and predicted aligned error / pTM. Geometry from real structures
// (backbone frames, Algorithm 21; torsion angles with the alternative χ of
// symmetric side chains; pseudo-β) reproduces AF2's data pipeline.
//
// Model runs the whole monomer model (Algorithm 2) on features built by
// package alphafold/features; LoadModel reads DeepMind's released
// params_model_{1..5}[_ptm].npz files by their own names, refusing a file
// with missing, extra or mis-shaped arrays, and loads model_1 and model_2
// without their template stack (with a notice).
//
// # Backends
//
// Transition, OuterProductMean, EvoformerBlock and EvoformerBlocks run the
// Evoformer on a backend chosen by the caller (package backend), built
// from the backend modules of packages triangle and msaattn: the MSA and
// pair representations stay on the backend from the first block to the
// last and reach the host only when the caller copies them (ToHost). On the
// CPU backend they run the CPU code on the tensors' slices. Without
// dropout, Transition, OuterProductMean and EvoformerBlock also train on
// the backend: ForwardTape records what Backward needs, and Backward
// accumulates the input gradients on the backend and the parameter
// gradients into the host parameters. RunEvoformerCaseOn runs the Evoformer
// reference cases with the forward pass on a backend.
//
// The algorithm numbers in the documentation are those of the AF2
// supplement (Jumper et al., Nature 2021, Supplementary Information).
package alphafold
