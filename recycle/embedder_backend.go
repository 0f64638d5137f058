package recycle

import (
	"fmt"
	"unsafe"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// chunkBytes bounds the scratch of the composed path's distogram
// embedding: the [rows·N, c_z] output of prev_pos_linear for a chunk of
// rows, added to the pair update chunk by chunk.
const chunkBytes = 64 << 20

// Embedder is the recycling embedder (supplement Algorithm 32) on a backend
// chosen by the caller, with its parameters uploaded once: the forward pass
// of Forward on backend tensors, so that a model running on the backend
// keeps the recycled first MSA row and pair representation there.
// ForwardTape and Backward (embedder_backend_grad.go) give its gradients on
// the same backend.
//
// The previous pseudo-β positions stay a host slice: they come from the
// structure module, and their distogram is computed on the host (see
// Embedder.Forward).
type Embedder[T num.Float] struct {
	k backend.Kernels[T]
	// p is the CPU module the dispatch path runs; its arrays are the
	// caller's.
	p *Params[T]

	w, b                  backend.Tensor[T] // prev_pos_linear weights [NumBins, c_z], bias [c_z]
	rowScale, rowOffset   backend.Tensor[T] // prev_msa_first_row_norm [c_m]
	pairScale, pairOffset backend.Tensor[T] // prev_pair_norm [c_z]

	// composed makes Forward compose backend kernels even when every
	// tensor is a CPU tensor (for tests of that path on the CPU backend).
	composed bool
	// chunkRows, when positive, is the number of rows i of the pair
	// representation whose distogram embedding is computed at once
	// (tests); 0 chooses it from chunkBytes.
	chunkRows int
}

// NewEmbedder checks p and uploads it to k, returning the recycling
// embedder (supplement Algorithm 32) of p.Config on k. p's arrays are
// referenced by the CPU dispatch path of Forward and must not change while
// the module is in use.
//
// The error wraps ErrConfig for a nil k or p or an invalid p.Config,
// num.ErrShape for an array whose length does not match p.Config, and the
// backend's error if an upload fails.
func NewEmbedder[T num.Float](k backend.Kernels[T], p *Params[T]) (*Embedder[T], error) {
	if k == nil || p == nil {
		return nil, fmt.Errorf("recycle: NewEmbedder: nil backend or parameters: %w", ErrConfig)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	q := *p
	m := &Embedder[T]{k: k, p: &q}
	up := backend.NewArena(k)
	m.w, m.b = up.FromHost(q.PrevPosLinear.W), up.FromHost(q.PrevPosLinear.B)
	m.rowScale, m.rowOffset = up.FromHost(q.PrevMSAFirstRowNorm.Scale), up.FromHost(q.PrevMSAFirstRowNorm.Offset)
	m.pairScale, m.pairOffset = up.FromHost(q.PrevPairNorm.Scale), up.FromHost(q.PrevPairNorm.Offset)
	if up.Err() != nil {
		up.Free()
		return nil, fmt.Errorf("recycle: NewEmbedder: %w", up.Err())
	}
	return m, nil
}

// Close frees the uploaded parameters; m must not be used afterwards.
func (m *Embedder[T]) Close() {
	for _, t := range []*backend.Tensor[T]{&m.w, &m.b, &m.rowScale, &m.rowOffset, &m.pairScale, &m.pairOffset} {
		if *t != nil {
			m.k.Free(*t)
			*t = nil
		}
	}
	m.p = nil
}

// Forward computes the recycling embedder (supplement Algorithm 32) from
// the previous pass's outputs and overwrites msaOut and pairOut with the
// two updates that the caller adds to the new pass's representations, as
// the package's Forward does:
//
//	msaOut  = LN(prevMSAFirstRow)                          [N, c_m]
//	pairOut = LN(prevPair) + one_hot(bin(d_ij))·W + b     [N, N, c_z]
//
// prevMSAFirstRow [N, c_m], prevPair [N, N, c_z], msaOut and pairOut are
// backend tensors; prevPseudoBeta [N, 3] (Å) is a host slice, since the
// positions come from the structure module, which runs on the CPU. n is N
// (at least 1). The outputs must not overlap the inputs.
//
// When every tensor is a CPU tensor, Forward runs the package's Forward on
// the slices (no copies). Otherwise it composes the backend's kernels:
//
//	msaOut  = LN(prevMSAFirstRow)                    (LayerNorm)
//	pairOut = LN(prevPair)                           (LayerNorm)
//	pairOut += one_hot·W + b                          (Linear, Add; a chunk of rows at a time)
//
// The distogram bins are Distogram's, computed on the host; the one-hot
// [N², NumBins] is built on the host and uploaded once per call: N²·NumBins
// values, 60 MiB at N = 1024 in float32 (15 bins), beside which the
// embedding holds one chunk's [rows·N, c_z] output of prev_pos_linear (at
// most 64 MiB). The linear layer on a one-hot row is W[k,:] + b with one
// rounding, and it is added to the normalised pair as the CPU path adds
// it, so on the CPU backend the composed path reproduces Forward bit for
// bit (in float32 on CUDA too, unless the backend's matrix products use
// TF32 or BF16, which round W). Scratch is freed before Forward returns.
//
// The error wraps ErrConfig for a closed module, num.ErrShape for a tensor
// or prevPseudoBeta whose length does not match n and the configuration
// (or n < 1), num.ErrNaN for non-finite positions (and, on the CPU path,
// any non-finite input; the composed path does not read the backend
// tensors back to check them), and the backend's errors.
func (m *Embedder[T]) Forward(prevMSAFirstRow, prevPair backend.Tensor[T], prevPseudoBeta []T, n int, msaOut, pairOut backend.Tensor[T]) error {
	if m.p == nil {
		return fmt.Errorf("recycle: Embedder.Forward on a closed module: %w", ErrConfig)
	}
	if err := m.checkForward("Embedder.Forward", prevMSAFirstRow, prevPair, prevPseudoBeta, n, msaOut, pairOut); err != nil {
		return err
	}
	if h, ok := backend.HostSlices(prevMSAFirstRow, prevPair, msaOut, pairOut); ok && !m.composed {
		return Forward(m.p, h[0], h[1], prevPseudoBeta, h[2], h[3], nil)
	}
	if err := m.forward(prevMSAFirstRow, prevPair, prevPseudoBeta, n, msaOut, pairOut); err != nil {
		return fmt.Errorf("recycle: Embedder.Forward: %w", err)
	}
	return nil
}

// forward is the composed backend path of Forward on checked arguments.
func (m *Embedder[T]) forward(msaRow, pair backend.Tensor[T], pb []T, n int, msaOut, pairOut backend.Tensor[T]) error {
	return m.forwardTape(msaRow, pair, pb, n, msaOut, pairOut, nil)
}

// checkForward checks the arguments of Forward and ForwardTape (fn names
// the method): n ≥ 1, prevPseudoBeta [n, 3] and finite, the first rows
// [n, c_m] and the pair tensors [n, n, c_z].
func (m *Embedder[T]) checkForward(fn string, msaRow, pair backend.Tensor[T], pb []T, n int, msaOut, pairOut backend.Tensor[T]) error {
	cm, cz := m.p.Config.CM, m.p.Config.CZ
	if n < 1 {
		return fmt.Errorf("recycle: %s: N = %d, want ≥ 1: %w", fn, n, num.ErrShape)
	}
	if len(pb) != 3*n {
		return fmt.Errorf("recycle: %s: prevPseudoBeta has %d elements, want [N 3] = [%d 3] (%d): %w", fn, len(pb), n, 3*n, num.ErrShape)
	}
	if err := num.CheckFinite("prevPseudoBeta", pb); err != nil {
		return fmt.Errorf("recycle: %s: %w", fn, err)
	}
	rowShape := fmt.Sprintf("[N c_m] = [%d %d]", n, cm)
	pairShape := fmt.Sprintf("[N N c_z] = [%d %d %d]", n, n, cz)
	return checkTensors(fn, []tensorArg[T]{
		{"prevMSAFirstRow", msaRow, n * cm, rowShape, false},
		{"prevPair", pair, n * n * cz, pairShape, false},
		{"msaOut", msaOut, n * cm, rowShape, false},
		{"pairOut", pairOut, n * n * cz, pairShape, false},
	})
}

// tensorArg is one tensor argument of a method, with its expected length.
type tensorArg[T num.Float] struct {
	what  string
	t     backend.Tensor[T]
	want  int
	shape string
	opt   bool // may be absent
}

// checkTensors checks that every tensor of as is present (unless optional)
// and has its expected length.
func checkTensors[T num.Float](fn string, as []tensorArg[T]) error {
	for _, a := range as {
		if backend.Absent(a.t) {
			if a.opt {
				continue
			}
			return fmt.Errorf("recycle: %s: %s is missing, want %s: %w", fn, a.what, a.shape, num.ErrShape)
		}
		if got := a.t.Len(); got != a.want {
			return fmt.Errorf("recycle: %s: %s has %d elements, want %s (%d): %w", fn, a.what, got, a.shape, a.want, num.ErrShape)
		}
	}
	return nil
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it keeps the layer norms' statistics and
// the uploaded one-hot distogram in t.
func (m *Embedder[T]) forwardTape(msaRow, pair backend.Tensor[T], pb []T, n int, msaOut, pairOut backend.Tensor[T], t *EmbedderTape[T]) error {
	k, cfg := m.k, m.p.Config
	cm, cz, nb, n2 := cfg.CM, cfg.CZ, cfg.NumBins, n*n
	sc := backend.NewArena(k)
	defer sc.Free()
	keep := sc // the tape's tensors, handed to t at the end
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
	}
	var rowMean, rowRstd, pairMean, pairRstd backend.Tensor[T]
	if t != nil {
		rowMean, rowRstd = keep.Alloc(n), keep.Alloc(n)
		pairMean, pairRstd = keep.Alloc(n2), keep.Alloc(n2)
	}
	oneHot := keep.FromHost(oneHotDistogram(cfg, pb, n))
	if keep.Err() != nil {
		return keep.Err()
	}
	eps := T(nn.LayerNormEps)
	if err := k.LayerNorm(msaOut, msaRow, n, cm, m.rowScale, m.rowOffset, eps, rowMean, rowRstd); err != nil {
		return err
	}
	if err := k.LayerNorm(pairOut, pair, n2, cz, m.pairScale, m.pairOffset, eps, pairMean, pairRstd); err != nil {
		return err
	}

	// pairOut += one_hot·W + b, a chunk of rows i at a time.
	rows := m.chunk(n)
	y := sc.Alloc(rows * n * cz)
	if sc.Err() != nil {
		return sc.Err()
	}
	v := backend.NewArena(k)
	for i0 := 0; i0 < n; i0 += rows {
		r := min(rows, n-i0) * n // pairs in this chunk
		yv, ov, hv := v.View(y, 0, r*cz), v.View(pairOut, i0*n*cz, r*cz), v.View(oneHot, i0*n*nb, r*nb)
		if v.Err() != nil {
			return v.Err()
		}
		if err := k.Linear(yv, hv, r, nb, cz, m.w, m.b); err != nil {
			return err
		}
		if err := k.Add(ov, yv); err != nil {
			return err
		}
	}
	if t != nil {
		t.rowMean, t.rowRstd, t.pairMean, t.pairRstd, t.oneHot = rowMean, rowRstd, pairMean, pairRstd, oneHot
		t.own = keep
	}
	return nil
}

// chunk returns the number of rows i of the pair representation whose
// distogram embedding [rows·N, c_z] is computed at once: m.chunkRows when
// set, else as many as fit in chunkBytes (at least one).
func (m *Embedder[T]) chunk(n int) int {
	if m.chunkRows > 0 {
		return min(m.chunkRows, n)
	}
	var z T
	row := n * m.p.Config.CZ * int(unsafe.Sizeof(z))
	return max(1, min(n, chunkBytes/max(row, 1)))
}

// oneHotDistogram returns the one-hot distogram [N², NumBins] of the
// positions pb [N, 3]: row i·N + j holds 1 in column Distogram's bin of
// (i, j) and zeros elsewhere (all zeros for a pair in no bin).
func oneHotDistogram[T num.Float](cfg Config, pb []T, n int) []T {
	nb := cfg.NumBins
	h := make([]T, n*n*nb)
	for ij, b := range Distogram(cfg, pb, n) {
		if b >= 0 {
			h[ij*nb+b] = 1
		}
	}
	return h
}
