package msaattn

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// onesLen is the length of the vector of ones GlobalColumn uploads once:
// Σ_s mask_s of every column is the product maskᵀ·1, over chunks of at
// most onesLen sequences.
const onesLen = 1024

// GlobalColumn is MSA column-wise global attention (supplement
// Algorithm 19), the column attention of AF2's extra-MSA stack, on a
// backend chosen by the caller: the forward pass of GlobalColumnAttention
// with its parameters uploaded once, so that a chain of modules on the
// CUDA backend keeps the extra MSA and its update on the device.
// ForwardTape and Backward (global_backend_grad.go) give its gradients on
// the same backend.
//
// On the CPU backend, Forward on host tensors runs
// GlobalColumnAttention.Forward itself, on a copy of the parameters taken
// by NewGlobalColumn, and gives its result bit for bit. On any other
// backend it composes the backend's kernels in GlobalColumnAttention's
// order of operations; the results agree with the CPU forward to
// round-off.
type GlobalColumn[T num.Float] struct {
	k    backend.Kernels[T]
	cfg  GlobalColumnConfig
	host *GlobalColumnAttention[T] // the uploaded parameters as a CPU module (CPU backend), else nil
	// params holds every uploaded tensor, ones included, for Close.
	params                     []backend.Tensor[T]
	queryNormScale, queryNorm0 backend.Tensor[T] // query_norm//scale, //offset [c_e]
	att                        gatedWeights[T]   // key and value weights [c_e, c]: one shared head
	ones                       backend.Tensor[T] // [onesLen] ones, for the number of present sequences

	composed bool // force the composed path on host tensors (tests)
	scratch  int  // scratch elements per chunk; 0 means maxScratch
}

// NewGlobalColumn validates m and uploads its parameters to k, returning
// global column attention (Algorithm 19) on that backend. The parameters
// are copied: later changes to m do not affect the result. The caller
// must Close it. Errors wrap num.ErrShape or num.ErrNaN for parameters
// that do not match m.Config or are not finite.
func NewGlobalColumn[T num.Float](k backend.Kernels[T], m *GlobalColumnAttention[T]) (*GlobalColumn[T], error) {
	const mod = "global column attention"
	if err := checkNew(mod, k, m == nil || m.Params == nil); err != nil {
		return nil, err
	}
	if err := m.Config.Validate(); err != nil {
		return nil, err
	}
	cfg := m.Config
	ts := m.Params.tensors(cfg)
	if err := checkTensors(mod, GlobalColumnPrefix, ts); err != nil {
		return nil, err
	}
	up, err := uploadParams(k, mod, ts)
	if err != nil {
		return nil, err
	}
	ones := make([]T, onesLen)
	for i := range ones {
		ones[i] = 1
	}
	o, err := k.FromHost(ones)
	if err != nil {
		freeAll(k, up)
		return nil, fmt.Errorf("msaattn: %s: uploading ones: %w", mod, err)
	}
	w := byName(ts, up)
	g := &GlobalColumn[T]{
		k: k, cfg: cfg, params: append(up, o),
		queryNormScale: w["query_norm//scale"], queryNorm0: w["query_norm//offset"],
		att: gatedFrom(w), ones: o,
	}
	hp := new(GlobalColumnParams[T])
	if hostParams(hp.tensors(cfg), up) {
		g.host = &GlobalColumnAttention[T]{Config: cfg, Params: hp}
	}
	return g, nil
}

// Close frees the uploaded parameters; m must not be used afterwards
// (Forward then returns an error). Close of a closed GlobalColumn does
// nothing.
func (m *GlobalColumn[T]) Close() {
	if m == nil || m.k == nil {
		return
	}
	freeAll(m.k, m.params)
	*m = GlobalColumn[T]{}
}

// Forward writes into out [S, N, c_e] the update of the extra-MSA
// representation msa [S, N, c_e] with mask [S, N] (Algorithm 19; no
// residual added): GlobalColumnAttention.Forward's result. Every tensor
// must belong to m's backend, and out must not overlap the inputs. Errors
// wrap num.ErrShape for a length that does not match s and n, and
// num.ErrNaN for non-finite inputs (as Row.Forward).
//
// The composed path streams over chunks of sequences twice, as the CPU
// forward does. Pass 1 layer-normalises a chunk, projects its keys and
// values (one head of c channels shared by the H query heads) and adds the
// chunk's mask-weighted sum of LayerNorm(m) to every column's: a batched
// product of the mask column [1, S] with the column's rows [S, c_e], one
// per column; the number of present sequences is maskᵀ·1. The mean query
// q̄ = Σ_s m_s·x_s / (Σ_s m_s + GlobalMaskEps) (AF2's mask_mean) is one
// DivRows, q = c^-1/2·q̄·query_w one product, and the attention core runs
// with one query per column, Batch = N, Lk = S, KVHeads = 1, under the key
// mask maskᵀ [N, S]. Pass 2 gates every sequence's row with the column's
// attention output, o ⊙ sigmoid(x·gating_w + gating_b), and projects it.
// Besides the keys and values [S, N, 2c] the scratch of a chunk stays
// within about 2²⁵ elements (128 MiB in float32).
func (m *GlobalColumn[T]) Forward(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	const mod = "global column attention"
	if m == nil || m.k == nil {
		return fmt.Errorf("msaattn: %s: Forward on a closed or nil GlobalColumn", mod)
	}
	if err := m.checkArgs(msa, mask, s, n, out); err != nil {
		return err
	}
	if m.host != nil && !m.composed {
		if h, ok := backend.HostSlices(msa, mask, out); ok {
			u, err := m.host.Forward(h[0], h[1], s, n, nil)
			if err != nil {
				return err
			}
			copy(h[2], u)
			return nil
		}
	}
	if err := m.forward(msa, mask, s, n, out); err != nil {
		return fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	return nil
}

// checkArgs checks the sizes and the tensors of Forward and ForwardTape.
func (m *GlobalColumn[T]) checkArgs(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	const mod = "global column attention"
	if err := checkSizes(mod, s, n); err != nil {
		return err
	}
	ce := m.cfg.MSAChannels
	return checkLens(mod,
		tensorArg[T]{"msa", msa, []int{s, n, ce}},
		tensorArg[T]{"mask", mask, []int{s, n}},
		tensorArg[T]{"out", out, []int{s, n, ce}})
}

// forward is the composed path of Forward.
func (m *GlobalColumn[T]) forward(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	return m.forwardTape(msa, mask, s, n, out, nil)
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape the keys and values, the mean queries
// q̄, the counts of present sequences, the queries, the key mask, the
// attention output and its log-sum-exp and the layer norm's statistics
// stay in t; the kernels and their order are the same, so out is the
// same bit for bit.
func (m *GlobalColumn[T]) forwardTape(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T], t *GlobalColumnTape[T]) error {
	k, cfg := m.k, m.cfg
	ce, h, c := cfg.MSAChannels, cfg.Heads, cfg.HeadChannels
	hc, rows := h*c, s*n
	// Sequences per chunk: LayerNorm(m), the gate and the broadcast
	// attention output of each of the sequence's N positions; at most
	// onesLen, the length of the ones that count present sequences.
	sc := min(onesLen, chunkOf(m.scratch, s, n*(ce+2*hc)))
	chunked := sc < s

	sp := backend.NewArena(k)
	defer sp.Free()
	keep := sp // the tape's tensors, handed to t at the end
	var mean, rstd, lse backend.Tensor[T]
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
		mean, rstd, lse = keep.Alloc(rows), keep.Alloc(rows), keep.Alloc(n*h)
	}
	keys, values := keep.Alloc(rows*c), keep.Alloc(rows*c)
	qbar, count := keep.Alloc(n*ce), keep.Alloc(n)
	q, o := keep.Alloc(n*hc), keep.Alloc(n*hc)
	maskT := keep.Alloc(n * s)
	if keep.Err() != nil {
		return keep.Err()
	}
	x := sp.Alloc(sc * n * ce)
	g := sp.Alloc(sc * n * hc)
	ot := sp.Alloc(sc * n * hc)
	if sp.Err() != nil {
		return sp.Err()
	}
	vw := backend.NewArena(k) // views of the tape's tensors

	// Pass 1: layer norm, keys and values, masked sums of LayerNorm(m) and
	// of the mask per column.
	for s0 := 0; s0 < s; s0 += sc {
		ns := min(sc, s-s0)
		r0, nr := s0*n, ns*n
		mc, err1 := k.View(msa, r0*ce, nr*ce)
		maskc, err2 := k.View(mask, r0, nr)
		kc, err3 := k.View(keys, r0*c, nr*c)
		vc, err4 := k.View(values, r0*c, nr*c)
		onesc, err5 := k.View(m.ones, 0, ns)
		if err := firstErr(err1, err2, err3, err4, err5); err != nil {
			return err
		}
		xv := head(k, x, nr*ce)
		var ms, rs backend.Tensor[T]
		if t != nil {
			ms, rs = vw.View(mean, r0, nr), vw.View(rstd, r0, nr)
			if vw.Err() != nil {
				return vw.Err()
			}
		}
		if err := k.LayerNorm(xv, mc, nr, ce, m.queryNormScale, m.queryNorm0, nn.LayerNormEps, ms, rs); err != nil {
			return err
		}
		if err := k.Linear(kc, xv, nr, ce, c, m.att.key, nil); err != nil {
			return err
		}
		if err := k.Linear(vc, xv, nr, ce, c, m.att.value, nil); err != nil {
			return err
		}
		beta := T(1)
		if s0 == 0 {
			beta = 0
		}
		// Column j: q̄_j += Σ_s mask[s, j]·x[s, j, :], the mask column
		// (stride N) as a 1×ns matrix times the column's ns rows (row
		// stride N·c_e); one product per column, N in a batch.
		if err := k.GemmStridedBatched(true, false, 1, ce, ns, 1, maskc, n, 1, xv, n*ce, ce, beta, qbar, ce, ce, n); err != nil {
			return err
		}
		// count_j += Σ_s mask[s, j] = (maskᵀ·1)_j.
		if err := k.Gemm(true, false, n, 1, ns, 1, maskc, n, onesc, 1, beta, count, 1); err != nil {
			return err
		}
	}
	if err := k.DivRows(qbar, qbar, count, T(GlobalMaskEps), n, ce); err != nil {
		return err
	}
	// Queries, scaled by c^-1/2 as AF2 does.
	if err := k.Gemm(false, false, n, hc, ce, T(1/math.Sqrt(float64(c))), qbar, ce, m.att.query, hc, 0, q, hc); err != nil {
		return err
	}
	if err := k.Transpose(maskT, mask, 1, s, n, 1); err != nil {
		return err
	}
	a := m.attention(s, n, q, keys, values, maskT)
	if err := k.Attention(a, o, attn.Layout{Batch: hc, Row: hc}, lse); err != nil {
		return err
	}

	// Pass 2: every sequence's gate times its column's output o [N, H·c],
	// broadcast over the chunk's sequences once, then the output
	// projection.
	if err := backend.Fill(k, ot, o); err != nil {
		return err
	}
	for s0 := 0; s0 < s; s0 += sc {
		ns := min(sc, s-s0)
		r0, nr := s0*n, ns*n
		outc, err := k.View(out, r0*ce, nr*ce)
		if err != nil {
			return err
		}
		xv, gv := head(k, x, nr*ce), head(k, g, nr*hc)
		if chunked { // x holds the last chunk: recompute the layer norm
			mc, err := k.View(msa, r0*ce, nr*ce)
			if err != nil {
				return err
			}
			if err := k.LayerNorm(xv, mc, nr, ce, m.queryNormScale, m.queryNorm0, nn.LayerNormEps, nil, nil); err != nil {
				return err
			}
		}
		if err := k.Linear(gv, xv, nr, ce, hc, m.att.gating, m.att.gatingB); err != nil {
			return err
		}
		if err := k.Gate(gv, gv, head(k, ot, nr*hc)); err != nil {
			return err
		}
		if err := k.Linear(outc, gv, nr, hc, ce, m.att.output, m.att.outputB); err != nil {
			return err
		}
	}
	if t != nil {
		t.mean, t.rstd, t.keys, t.values, t.qbar, t.count = mean, rstd, keys, values, qbar, count
		t.q, t.o, t.lse, t.maskT = q, o, lse, maskT
		t.own = keep
	}
	return nil
}

// attention returns the attention core of global column attention: one
// query per column (q [N, H·c]), the S keys and values [S, N, c] of one
// head shared by the H query heads, read with strides, and the key mask
// maskᵀ [N, S].
func (m *GlobalColumn[T]) attention(s, n int, q, keys, values, maskT backend.Tensor[T]) *backend.Attention[T] {
	h, c := m.cfg.Heads, m.cfg.HeadChannels
	kvL := attn.Layout{Batch: c, Row: n * c}
	return &backend.Attention[T]{
		Dims: attn.Dims{Batch: n, Heads: h, Lq: 1, Lk: s, C: c, Cv: c, KVHeads: 1},
		Q:    q, QL: attn.Layout{Batch: h * c, Row: h * c},
		K: keys, KL: kvL, V: values, VL: kvL,
		Scale: 1, KeyMask: maskT, MaskBias: maskBias,
	}
}
