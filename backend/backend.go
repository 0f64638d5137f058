package backend

import (
	"errors"

	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/num"
)

// Tensor is a flat buffer of elements owned by one backend: a Host slice
// for the CPU backend, device memory (a *cuda.Buffer, see DeviceBuffer) for
// the CUDA backend. Shapes are
// passed explicitly to each kernel, as in package nn.
//
// A nil Tensor stands for an absent optional argument (a bias, a gradient
// that is not wanted), as a nil slice does in package nn.
//
// The interface is sealed: its implementations are this package's Host and,
// in foldkit_cuda builds, its device tensor.
type Tensor[T num.Float] interface {
	// Len returns the number of elements.
	Len() int
	// elem ties the tensor to its element type and seals the interface.
	elem() T
}

// Host is a Tensor in host memory: the CPU backend's tensors are Host
// values, so CPU code passes its slices without copying (Host(x)) and reads
// results in place (AsHost). A nil Host slice is an absent tensor.
type Host[T num.Float] []T

// Len returns len(h).
func (h Host[T]) Len() int { return len(h) }

func (Host[T]) elem() (z T) { return z }

// AsHost returns the slice of a Host tensor, or nil and false for a tensor
// of another backend.
func AsHost[T num.Float](t Tensor[T]) ([]T, bool) {
	h, ok := t.(Host[T])
	return h, ok
}

// ErrForeign is returned (wrapped) when a kernel is given a tensor that
// belongs to another backend or device.
var ErrForeign = errors.New("tensor of another backend")

// ErrUnsupported is returned (wrapped) for a problem a backend cannot run,
// such as an attention head wider than the CUDA kernels' limit.
var ErrUnsupported = errors.New("not supported by this backend")

// Kernels is the compute seam of foldkit: the kernels every module is built
// from, on one backend. The caller chooses the backend when it builds a
// module or model (CPU, or CUDA in a foldkit_cuda build); nothing is chosen
// by globals. Tensors stay on the backend between calls: a chain of kernels
// on the CUDA backend keeps its activations on the device, and data reach
// the host only through ToHost.
//
// Every method checks its arguments' lengths and returns an error wrapping
// num.ErrShape (or ErrForeign) instead of panicking. Methods whose CPU
// kernel checks values (Attention, AttentionBackward) return errors wrapping
// num.ErrNaN for non-finite inputs; the others propagate NaN as the CPU
// kernels of package nn do. Backward methods accumulate (+=) into their
// gradient outputs; a nil gradient output is skipped. Work may run
// asynchronously: ToHost and Sync wait for it, and an error from it may be
// reported by a later call.
//
// Each method's semantics are those of the CPU kernel it names; the
// conformance suite (package conformance) checks an implementation against
// those kernels with stated tolerances.
type Kernels[T num.Float] interface {
	// Name describes the backend, for example "cpu (gonum)" or
	// "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, cuBLAS 130000)".
	Name() string

	// Alloc returns a new tensor of n elements set to zero.
	Alloc(n int) (Tensor[T], error)
	// FromHost returns a new tensor holding a copy of x.
	FromHost(x []T) (Tensor[T], error)
	// ToHost copies x into dst (len(dst) == x.Len()), waiting for the work
	// that writes x.
	ToHost(dst []T, x Tensor[T]) error
	// Upload copies src (len(src) == dst.Len()) into dst.
	Upload(dst Tensor[T], src []T) error
	// Copy copies src into dst (same length) on the backend.
	Copy(dst, src Tensor[T]) error
	// View returns the n elements of x from off on, sharing x's storage.
	View(x Tensor[T], off, n int) (Tensor[T], error)
	// Zero sets every element of x to zero.
	Zero(x Tensor[T]) error
	// Free releases x's storage (to a cache, on CUDA). x and its views must
	// not be used afterwards. Free of a view or of nil does nothing.
	Free(x Tensor[T])
	// Sync waits for all queued work and returns its first error.
	Sync() error
	// Close releases the backend's resources (the CUDA device); its tensors
	// must not be used afterwards.
	Close() error

	// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
	// as gemm.Gemm: op(A) is m×k, op(B) is k×n, lda, ldb and ldc are row
	// strides.
	Gemm(tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda int, b Tensor[T], ldb int, beta T, c Tensor[T], ldc int) error
	// GemmStridedBatched computes C_i = alpha·op(A_i)·op(B_i) + beta·C_i for
	// i < batch, X_i starting strideX elements after X_{i−1}. The input
	// strides may be 0 (one matrix for all); the output's may not make the
	// C_i overlap.
	GemmStridedBatched(tA, tB bool, m, n, k int, alpha T, a Tensor[T], lda, strideA int, b Tensor[T], ldb, strideB int, beta T, c Tensor[T], ldc, strideC int, batch int) error
	// Linear is nn.Linear: y [rows, out] = x [rows, in]·w [in, out] + b [out]
	// (b may be nil).
	Linear(y, x Tensor[T], rows, in, out int, w, b Tensor[T]) error
	// LinearBackward is nn.LinearBackward: dx += dy·wᵀ, dw += xᵀ·dy,
	// db += Σ_rows dy.
	LinearBackward(dx, dw, db, x, w, dy Tensor[T], rows, in, out int) error

	// LayerNorm is nn.LayerNorm over the c channels of each of rows rows;
	// mean and rstd [rows] receive the statistics when not nil. y may be x.
	LayerNorm(y, x Tensor[T], rows, c int, scale, offset Tensor[T], eps T, mean, rstd Tensor[T]) error
	// LayerNormBackward is nn.LayerNormBackward (mean, rstd nil: recomputed
	// with eps = nn.LayerNormEps).
	LayerNormBackward(dx, dscale, doffset, x, scale, mean, rstd, dy Tensor[T], rows, c int) error
	// Softmax is nn.SoftmaxRows, in place over x [rows, n].
	Softmax(x Tensor[T], rows, n int) error
	// SoftmaxBackward is nn.SoftmaxRowsBackward: dx += y·(dy − Σ y·dy).
	SoftmaxBackward(dx, y, dy Tensor[T], rows, n int) error

	// Sigmoid is nn.Sigmoid (y may be x); SigmoidBackward is
	// nn.SigmoidBackward, from the output y.
	Sigmoid(y, x Tensor[T]) error
	SigmoidBackward(dx, y, dy Tensor[T]) error
	// ReLU is nn.ReLU (y may be x); ReLUBackward is nn.ReLUBackward, from
	// the input x.
	ReLU(y, x Tensor[T]) error
	ReLUBackward(dx, x, dy Tensor[T]) error
	// Mul is nn.Mul (y = a·b); MulAdd is nn.MulAdd (y += a·b).
	Mul(y, a, b Tensor[T]) error
	MulAdd(y, a, b Tensor[T]) error
	// Add sets y += x, the residual update of every AF2 block.
	Add(y, x Tensor[T]) error
	// Gate sets y = sigmoid(g)·x, AF2's sigmoid gating (supplement
	// Algorithms 7, 11, 13), rounding as nn.Sigmoid followed by nn.Mul.
	// y may be x or g.
	Gate(y, g, x Tensor[T]) error
	// GateBackward accumulates dx += dy·sigmoid(g) and
	// dg += dy·x·s·(1 − s) with s = sigmoid(g); dg or dx may be nil.
	GateBackward(dg, dx, g, x, dy Tensor[T]) error

	// Transpose sets dst[b, j, i, :] = src[b, i, j, :] for b < batch,
	// i < rows and j < cols, moving blocks of block contiguous elements:
	// src is [batch, rows, cols, block] and dst [batch, cols, rows, block].
	// It maps AF2's channel-last tensors to the channel-major operands of
	// batched matrix products and back (the triangle multiplications, the
	// outer product mean) and moves per-position biases to their
	// [Heads, Lq, Lk] layout. dst must not overlap src.
	Transpose(dst, src Tensor[T], batch, rows, cols, block int) error
	// ScaleRows sets y[r, :] = x[r, :]·s[r] for rows rows of c elements:
	// the masking of AF2's projections by a per-position mask. y may be x.
	ScaleRows(y, x, s Tensor[T], rows, c int) error
	// DivRows sets y[r, :] = x[r, :]/(s[r] + eps) for rows rows of c
	// elements: the normalisation of the outer product mean (Algorithm 10)
	// and of global attention's mean query (Algorithm 19). y may be x.
	DivRows(y, x, s Tensor[T], eps T, rows, c int) error

	// Attention is attn.Forward: o [Batch, Lq, Heads, Cv] by oL
	// (overwritten) and, when lse is not nil, lse [Batch, Heads, Lq]. No
	// Lq×Lk matrix is stored.
	Attention(p *Attention[T], o Tensor[T], oL attn.Layout, lse Tensor[T]) error
	// AttentionBackward is attn.Backward: given o, lse from Attention and
	// do (layout oL), it accumulates dq, dk, dv (layouts of p) and
	// dPairBias [Heads, Lq, Lk], each skipped when nil.
	AttentionBackward(p *Attention[T], o Tensor[T], oL attn.Layout, lse, do, dq, dk, dv, dPairBias Tensor[T]) error

	// RigidCompose sets dst[i] = a[i]∘b[i] for n frames [n, 12] (rotation
	// row-major, then translation: the memory layout of rigid.Rigid[T]).
	// dst may be a or b.
	RigidCompose(dst, a, b Tensor[T], n int) error
	// RigidInvert sets dst[i] = src[i]⁻¹ (rigid.Rigid.Invert).
	RigidInvert(dst, src Tensor[T], n int) error
	// RigidMap maps the m points [n, m, 3] of each of n frames (see
	// FrameMap). dst may be p.
	RigidMap(mode FrameMap, dst, frames, p Tensor[T], n, m int) error
	// RigidMapBackward accumulates the gradients of RigidMap given dy:
	// dFrames [n, 12] (summed over each frame's points) and dp [n, m, 3].
	RigidMapBackward(mode FrameMap, dFrames, dp, frames, p, dy Tensor[T], n, m int) error
	// RigidComposeBackward accumulates da, db from the gradient g of a∘b
	// (rigid.ComposeVJP).
	RigidComposeBackward(da, db, a, b, g Tensor[T], n int) error
	// RigidInvertBackward accumulates dsrc from the gradient g of src⁻¹
	// (rigid.InvertVJP).
	RigidInvertBackward(dsrc, src, g Tensor[T], n int) error
	// QuatToRot sets rot [n, 9] from quaternions q [n, 4] (rigid.QuatToRot).
	QuatToRot(rot, q Tensor[T], n int) error
	// QuatToRotBackward accumulates dq += rigid.QuatToRotVJP(q, dRot).
	QuatToRotBackward(dq, q, dRot Tensor[T], n int) error
	// ComposeQUpdate is Algorithm 23's backbone update
	// (rigid.ComposeQUpdate): q [n, 4], t [n, 3] and u [n, 6] in, qOut and
	// tOut (which may be q and t) out.
	ComposeQUpdate(qOut, tOut, q, t, u Tensor[T], n int) error
	// ComposeQUpdateBackward accumulates the gradients of q, t and u
	// (rigid.ComposeQUpdateVJP) given dqNew [n, 4] (nil: zero) and dFrame
	// [n, 12], the gradient of the new frame.
	ComposeQUpdateBackward(dq, dt, du, q, t, u, dqNew, dFrame Tensor[T], n int) error
}

// Attention is one batched multi-head attention problem on a backend: the
// fields of attn.Problem with tensors in place of slices (the CPU kernel's
// tile sizes are its defaults).
type Attention[T num.Float] struct {
	attn.Dims
	Q  Tensor[T] // [Batch, Lq, Heads, C] by QL
	QL attn.Layout
	K  Tensor[T] // [Batch, Lk, KVHeads, C] by KL
	KL attn.Layout
	V  Tensor[T] // [Batch, Lk, KVHeads, Cv] by VL
	VL attn.Layout

	// Scale multiplies q·k (1 when Q is already scaled).
	Scale T
	// PairBias [Heads, Lq, Lk] is added to the logits of every batch
	// element; nil means none.
	PairBias Tensor[T]
	// KeyMask [Batch, Lk] of 0/1 adds MaskBias·(mask − 1) to the logits;
	// nil means every key is present.
	KeyMask Tensor[T]
	// MaskBias is attn.EvoformerMaskBias (1e9) in AF2.
	MaskBias T
}

// FrameMap selects how RigidMap maps points by frames.
type FrameMap int

// The modes of RigidMap, as package rigid's batch functions.
const (
	Apply          FrameMap = iota // R·p + t (rigid.Apply)
	ApplyVec                       // R·p (rigid.ApplyVec)
	InvertApply                    // Rᵀ·(p − t) (rigid.InvertApply)
	InvertApplyVec                 // Rᵀ·p (Rigid.InvertApplyVec)
)

// String returns the mode's name.
func (m FrameMap) String() string {
	switch m {
	case Apply:
		return "Apply"
	case ApplyVec:
		return "ApplyVec"
	case InvertApply:
		return "InvertApply"
	case InvertApplyVec:
		return "InvertApplyVec"
	}
	return "FrameMap(?)"
}
