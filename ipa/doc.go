// Package ipa implements AlphaFold2's invariant point attention (IPA,
// supplement Algorithm 22), the attention of the structure module that reads
// the single representation, the pair representation and one rigid frame per
// residue, and whose output does not change when every frame is moved by the
// same rigid motion.
//
// # Layouts
//
// Everything is a row-major slice with explicit dimensions, generic over
// float32 (the working type) and float64 (which reproduces the reference cases
// to about 1e-14):
//
//   - s, the single representation, is [N, c_s];
//   - z, the pair representation, is [N, N, c_z] (z[(i·N + j)·c_z + c]);
//   - frames is []rigid.Rigid[T] of length N: residue i's local coordinates
//     map to global ones as x = Rot·x_local + Trans;
//   - mask is [N], 1 for a present residue and 0 for padding;
//   - the output, the update of s (AF2 adds the residual outside), is [N, c_s].
//
// Parameters are AF2's (haiku names under
// structure_module/fold_iteration/invariant_point_attention/) in AF2's
// layouts; Params documents the channel order of each.
//
// # Computation
//
// Forward computes, for every head h and residue pair (i, j), the logit
//
//	l_ij^h = w_L·( q_i^h·k_j^h/√C + b_ij^h − (γ_h·w_C/2)·Σ_p |T_i∘q_ip^h − T_j∘k_jp^h|² )
//	         − inf·(1 − m_i·m_j)
//
// with w_L = √(1/3), w_C = √(2/(9·P_q)), γ_h = softplus(trainable_point_weights_h),
// b_ij^h the pair bias z_ij·attention_2d + bias, and inf = 1e5 (Config.Inf);
// then a_ij^h = softmax_j(l_ij^h), and the four outputs per head: scalar
// Σ_j a_ij v_j, points T_i⁻¹∘Σ_j a_ij T_j∘v_jp, their norms √(ε + |·|²)
// with ε = 1e-8, and the pair summary Σ_j a_ij z_ij, concatenated and
// projected back to c_s.
//
// The point distances are expanded as |q|² + |k|² − 2q·k so that every
// O(N²) term is a matrix product through internal/gemm: one product per head
// over the scalar channels and point coordinates together, then a row-wise
// softmax. Two rearrangements change only the round-off: global points are
// taken relative to the mean translation of the present residues (a
// constant that cancels exactly), so that the expansion loses no precision
// to a large common translation and float32 results stay invariant under big
// rigid motions; and the mask term is added less its row maximum (a per-row
// constant that the softmax ignores), so that a row whose own mask is 0 is
// not rounded to the float32 resolution of 1e5. The loops over query rows run
// on up to GOMAXPROCS goroutines (on one with OpenBLAS, which threads each
// product itself).
//
// # Memory
//
// The largest temporary is the attention array [N, H, N] (48 MiB at
// N = 1024 in float32), which the cache keeps for the backward pass; the pair
// bias, the softmax and the pair output (and their gradients) are computed
// one query row at a time, reading each z_i once, so nothing else of O(N²)
// size beyond z and dz is held (Forward allocates about 72 MiB at N = 1024).
// IPA does not use the shared streaming attention core of internal/attn: its
// pair output Σ_j a_ij z_ij needs the attention weights explicitly, so the
// [N, H, N] weights are formed anyway, and the streaming core would only
// compute them a second time.
//
// # Gradients
//
// Backward returns the gradients of a scalar loss with respect to s, z, each
// frame's rotation (the nine matrix entries taken as unconstrained) and
// translation, and every parameter; the mask gets none.
//
// # Backends
//
// IPA is the module on a backend chosen by the caller (package backend):
// NewIPA uploads the parameters once; Forward takes the single and pair
// representations, the frames ([N, 12], rigid.Rigid's layout) and the mask
// as backend tensors, running Forward on the CPU backend and composing the
// backend's kernels elsewhere (the point terms of the logits as products,
// the point norms through a layer norm's statistics). ForwardTape and
// Backward train it there, with the same gradients as Backward.
//
// # Other entry points
//
// Apply and ParamNodes put IPA into a gorgonia expression graph as one op
// whose gradient is Backward. RunCase runs a reference case (foldkit
// run-module), NewBench a benchmark (foldkit bench -module ipa).
package ipa
