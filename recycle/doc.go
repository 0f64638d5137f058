// Package recycle implements AlphaFold2's recycling: the recycling embedder
// (supplement Algorithm 32), which turns the previous pass's outputs into
// updates of the next pass's representations, and the loop that runs a
// model several times (Algorithm 2), with early stopping and progress
// reporting.
//
// # Layouts
//
// Everything is a row-major slice with explicit dimensions, generic over
// float32 (the working type) and float64 (which reproduces the reference
// cases to about 1e-14). With N residues:
//
//	prevMSAFirstRow  [N, c_m]      the first row of the previous MSA representation
//	prevPair         [N, N, c_z]   the previous pair representation
//	prevPseudoBeta   [N, 3]        the previous pseudo-β positions, Å
//	msaOut           [N, c_m]      added by the caller to the first MSA row
//	pairOut          [N, N, c_z]   added by the caller to the pair representation
//
// Parameters use AF2's names and layouts (prev_pos_linear,
// prev_msa_first_row_norm, prev_pair_norm under
// alphafold/alphafold_iteration/evoformer/).
//
// # The distogram
//
// The previous pseudo-β positions enter as a one-hot distogram with AF2's
// bins, which are not the 3.375–21.375 Å centres quoted elsewhere: 15 lower
// edges linspace(3.25, 20.75, 15) Å, compared in squared distance with
// strict inequalities, lower_k² < d² < upper_k², where upper_k is the next
// lower edge and the last bin's squared upper edge is 1e8 (so it is open).
// Pairs closer than 3.25 Å, the diagonal among them, fall in no bin and get
// only the bias of prev_pos_linear. The distogram is piecewise constant, so
// the positions get no gradient.
//
// # The loop
//
// Run calls a Step (any function that maps the recycled State to the next
// one) up to a given number of times. Each pass receives a clone of the
// previous pass's output, which is how AF2's stop_gradient between cycles
// reads when gradients are computed by explicit backward passes: a pass's
// inputs are constants, and training back-propagates through the last pass
// alone. The loop can stop early when the Cα distance matrix changes by at
// most a tolerance between passes (CAChange, ColabFold's
// recycle_early_stop_tolerance), and reports every pass to a hook.
//
// # Gradients
//
// Backward returns the gradients with respect to the previous first MSA row,
// the previous pair representation and every parameter. The gorgonia adapter
// (Apply) makes the embedder a node of a gorgonia expression graph
// whose symbolic gradient runs Backward; StopGradient is the graph form of
// the loop's stop_gradient.
//
// # Backends
//
// Embedder is the recycling embedder on a backend chosen by the caller
// (package backend): NewEmbedder uploads the parameters once, Forward and
// ForwardTape take the recycled representations as backend tensors (the
// pseudo-β positions, which come from the structure module on the CPU,
// stay a host slice: their distogram is built on the host and uploaded),
// and Backward accumulates the gradients on the backend and into host
// Params. RunCaseOn runs the reference case with the forward pass on a
// backend.
package recycle
