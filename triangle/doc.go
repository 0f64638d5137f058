// Package triangle implements AlphaFold2's triangle updates of the pair
// representation: the triangle multiplicative updates for outgoing and
// incoming edges (supplement Algorithms 11 and 12; AF2's
// triangle_multiplication_outgoing and triangle_multiplication_incoming) and
// the triangle self-attentions around the starting and the ending node
// (Algorithms 13 and 14; triangle_attention_starting_node and
// triangle_attention_ending_node).
//
// # Layouts
//
// Everything is a row-major slice with explicit dimensions, generic over
// float32 (the working type) and float64 (which reproduces the reference
// cases to about 1e-14):
//
//   - z, the pair representation, is [N, N, c_z] (z[(i·N + j)·c_z + c]);
//   - mask, the pair mask, is [N, N], 1 for a present pair and 0 for padding;
//   - the output, the update of z (AF2 adds the residual outside), is
//     [N, N, c_z].
//
// Parameters are AF2's, under its haiku names and layouts (MulParams,
// AttParams); LoadMulParams and LoadAttParams read them from a params.Set.
//
// # Computation and memory
//
// The multiplicative updates contract over the third residue, u_ij =
// Σ_k a_ik ⊙ b_jk (outgoing) or Σ_k a_kj ⊙ b_ki (incoming). The left and
// right projections are laid out channel-major ([c, N, N]), so that the
// contraction is one N×N×N matrix product per channel through
// internal/gemm (OpenBLAS with -tags openblas); the channels are taken a
// chunk at a time (MulConfig.ChunkChannels). The projections themselves are
// one product per block of pairs for all four of them, and the sigmoid
// gates and the centre layer norm are fused elementwise kernels (AVX2
// assembly for float32 on amd64, chosen at run time from the processor's
// features; the build tag purego leaves only the portable Go loops).
//
// The attentions use internal/attn's gated attention, which streams over
// key tiles with an online softmax. The ending-node form is the
// starting-node computation on the transposed pair tensor, as in AF2, but
// the transposition is a strided view: the pair tensor is copied once
// (into its layer norm) for either form. The rows of the pair tensor (the
// batch of the attention) are processed a chunk at a time
// (AttConfig.ChunkRows).
//
// No N³ tensor is ever formed. At N = 1024 and c_z = c = 128 in float32,
// MulForward holds the normalised input and the contracted edges (512 MiB
// each) and two 128 MiB chunk buffers beside its input and output, and
// AttForward the normalised input and one chunk of rows' projections. The
// backward passes recompute within tiles and chunks instead of storing:
// attention probabilities from the saved log-sum-exp, the projections of
// the multiplication chunk by chunk. Measured peak heaps beyond input and
// output at N = 1024 (the benchmarks of bench_test.go): about 1.3 GiB for
// MulForward and 2.8 GiB for MulForward plus MulBackward; about 1.1 GiB
// for AttForward and 2.3 GiB with AttBackward.
//
// # Gradients
//
// MulBackward and AttBackward return the gradients of a scalar loss with
// respect to z and every parameter; the mask gets none. The gorgonia
// adapters (ApplyMul, ApplyAtt, with MulParamNodes and AttParamNodes) make
// each module one node of a gorgonia graph whose gradient is the module's
// backward pass.
//
// # Masks
//
// As in AF2, the multiplicative updates multiply the projections by the
// mask and leave the output unmasked, and the attentions add 1e9·(mask − 1)
// to the logits of masked keys. A row whose keys are all masked gets finite
// values (in float32 the uniform average over its keys, as AF2's own
// float32 computation), never NaN.
//
// # Backends
//
// Att and Mul are the two modules on a backend chosen by the caller
// (package backend): NewAtt and NewMul upload the parameters once, and
// Forward takes and returns backend tensors, so that a chain of modules on
// CUDA keeps the pair representation on the device. On the CPU backend
// Forward runs AttForward or MulForward on the tensors' slices; on any other
// it composes the backend's kernels (layer norm, projections, transposes,
// one batched product over the channels, the streamed attention core).
// ForwardTape records what Backward needs, and Backward accumulates the
// gradient of the pair representation on the backend and the parameter
// gradients into host AttParams or MulParams, so both modules also train
// on a backend.
package triangle
