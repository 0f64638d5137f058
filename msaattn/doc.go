// Package msaattn implements the three attentions of AlphaFold2 (AF2) over
// the multiple sequence alignment (MSA) representation:
//
//   - RowAttention: MSA row-wise gated self-attention with pair bias
//     (supplement Algorithm 7, haiku module msa_row_attention_with_pair_bias);
//   - ColumnAttention: MSA column-wise gated self-attention (Algorithm 8,
//     msa_column_attention);
//   - GlobalColumnAttention: MSA column-wise global attention (Algorithm 19,
//     msa_column_global_attention), the cheap variant the extra-MSA stack uses
//     on thousands of sequences.
//
// # Layouts
//
// Tensors are plain row-major slices with explicit dimensions. With S
// sequences, N residues and c_m (or c_e) MSA channels:
//
//	msa       [S, N, c_m]   the MSA representation m
//	msaMask   [S, N]        1 for a present position, 0 for padding
//	z         [N, N, c_z]   the pair representation (row attention only)
//	update    [S, N, c_m]   the module's output
//
// Every module returns its update without the residual, as AF2's modules do;
// the Evoformer adds it to m. Parameters are stored in AF2's layouts under
// AF2's names (see the Params types), so a released parameter file narrowed
// with params.Set.Sub to
// "alphafold/alphafold_iteration/evoformer/evoformer_iteration/" (one layer
// of the stack) or ".../evoformer/extra_msa_stack/" loads directly.
//
// Masks enter the attention logits as the additive bias 1e9·(mask − 1), as in
// AF2. A query whose keys are all masked (a padding row in row attention, a
// padding column in column attention) therefore attends uniformly to its
// keys and its output stays finite.
//
// # Memory
//
// Row and column attention run on the streaming attention core of
// internal/attn (attn.GatedForward): the logits are formed one key tile at a
// time with an online softmax, so no [S, H, N, N] or [N, H, S, S] tensor
// exists; column attention reads the MSA with strides (batch stride c_m,
// row stride N·c_m) instead of transposing it. Row attention holds the pair
// bias [H, N, N] but forms the layer-normed pair representation a chunk at a
// time. Global column attention also uses the core (one query per column,
// one shared key/value head) and streams over the MSA in chunks: besides its
// inputs and outputs it holds O(S·N·c) values (the keys and values, the
// layer-norm statistics), even at the extra-MSA size S = 5120.
//
// # Gradients
//
// Each Forward fills an optional cache, and Backward returns the gradients
// of every input but the mask and of every parameter (a Params-shaped
// gradient). ApplyRow, ApplyColumn and ApplyGlobalColumn make each module a
// node of a gorgonia expression graph whose symbolic gradient runs
// Backward, with the parameters as graph nodes (RowParamNodes, ...) so that
// gorgonia's solvers can train them.
//
// # Reference cases and benchmarks
//
// RunCase runs the reference cases msa_row_attention, msa_column_attention
// and msa_column_global_attention (the `foldkit run-module` command), and
// NewBench builds the runs of `foldkit bench`.
//
// # Backends
//
// Row, Column and GlobalColumn are the three modules on a backend chosen
// by the caller (package backend): NewRow, NewColumn and NewGlobalColumn
// upload the parameters once, and Forward takes and returns backend tensors,
// running the CPU Forward on the CPU backend and composing the backend's
// kernels elsewhere. ForwardTape records what Backward needs, and Backward
// accumulates the input gradients on the backend and the parameter
// gradients into host Params, so the three modules also train on a
// backend. RunCaseOn runs the reference cases with the forward pass on a
// backend (run-module -backend cuda).
package msaattn
