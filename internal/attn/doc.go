// Package attn is foldkit's one attention core and, on top of it, AF2's
// gated multi-head attention module, which triangle attention (AF2
// supplement Algorithms 13 and 14), MSA row attention with pair bias
// (Algorithm 7) and MSA column attention (Algorithm 8) all call.
//
// # The core
//
// A Problem is a batch of multi-head attention problems,
//
//	logits[b,h,q,k] = Scale·(q·k) + MaskBias·(KeyMask[b,k] − 1) + PairBias[h,q,k]
//	o[b,q,h,:]      = Σ_k softmax_k(logits[b,h,q,:])·v[b,k,h,:],
//
// with the terms added in AF2's order. Forward streams over tiles of keys
// with an online softmax (flash-attention style): each worker holds one
// TileQ×TileK tile of logits, a TileQ×Cv accumulator and running row maxima
// and sums, and never an Lq×Lk matrix. It saves the log-sum-exp of every
// row, from which Backward recomputes the probabilities tile by tile. The
// products on tiles go through gemm.Tile, an AVX2/FMA micro-kernel for
// float32 (about 5× gonum's sgemm on a 64×128×32 tile), which reads the
// tensors with their own row strides and transposes one operand tile into
// the worker's scratch where a product needs it; elsewhere (float64, other
// processors) they go through gemm.Gemm. Work is spread over
// gemm.TileWorkers[T]() goroutines (GOMAXPROCS, or one for float64 with
// OpenBLAS, which threads each product itself) with per-worker scratch;
// nothing is global.
//
// Tensors are flat slices addressed through a Layout, so that callers pass
// strided views instead of transposing. For an [S, N, Heads·C] MSA tensor,
// row attention over residues (batch S, length N) uses Layout{Batch: N·H·C,
// Row: H·C} and column attention over sequences (batch N, length S) uses
// Layout{Batch: H·C, Row: N·H·C}; the triangle attentions on an [N, N, H·C]
// pair tensor use the same two layouts for the starting and ending node.
// KVHeads = 1 shares one key and value head among all query heads, as
// AF2's global column attention (Algorithm 19) does.
//
// With MaskBias = 1e9 (EvoformerMaskBias) a query whose keys are all masked
// gets logits ≈ −1e9 + x: in float32 the constant swallows x and the row is
// the uniform average of the values, finite, as in AF2; Backward detects
// such rows (their saved log-sum-exp has no digits left) and renormalises
// them exactly.
//
// # The gated module
//
// GatedParams holds AF2's `attention//query_w, key_w, value_w, gating_w,
// gating_b, output_w, output_b` (no query, key or value biases). GatedForward
// projects one input x to queries (scaled by c^-1/2), keys, values and
// sigmoid gates in a single product, runs the core, gates its output and
// projects it back; GatedBackward returns the gradients of x, the pair bias
// and every weight, and needs only the O(Batch·L·Heads·C) values that
// GatedForward kept in a GatedCache. The layer norms, the pair-bias
// projection (feat_2d_weights), the masks and the residual update belong to
// the calling modules.
//
// Every function is generic over float32 (the working type, with its own
// fast exponential) and float64. Bad sizes are errors wrapping num.ErrShape
// and non-finite inputs errors wrapping num.ErrNaN; nothing panics on user
// input.
package attn
