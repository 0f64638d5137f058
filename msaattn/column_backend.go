package msaattn

import (
	"fmt"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// Column is MSA column-wise gated self-attention (supplement Algorithm 8)
// on a backend chosen by the caller: the forward pass of ColumnAttention
// with its parameters uploaded once, so that a chain of modules on the
// CUDA backend keeps the MSA and its update on the device. ForwardTape and
// Backward (column_backend_grad.go) give its gradients on the same
// backend.
//
// On the CPU backend, Forward on host tensors runs ColumnAttention.Forward
// itself, on a copy of the parameters taken by NewColumn, and gives its
// result bit for bit. On any other backend it composes the backend's
// kernels in ColumnAttention's order of operations; the results agree
// with the CPU forward to round-off.
type Column[T num.Float] struct {
	k    backend.Kernels[T]
	cfg  ColumnConfig
	host *ColumnAttention[T] // the uploaded parameters as a CPU module (CPU backend), else nil
	// params holds every uploaded tensor, for Close.
	params                     []backend.Tensor[T]
	queryNormScale, queryNorm0 backend.Tensor[T] // query_norm//scale, //offset [c_m]
	att                        gatedWeights[T]

	composed bool // force the composed path on host tensors (tests)
	scratch  int  // scratch elements per chunk; 0 means maxScratch
}

// NewColumn validates m and uploads its parameters to k, returning column
// attention (Algorithm 8) on that backend. The parameters are copied:
// later changes to m do not affect the result. The caller must Close it.
// Errors wrap num.ErrShape or num.ErrNaN for parameters that do not match
// m.Config or are not finite.
func NewColumn[T num.Float](k backend.Kernels[T], m *ColumnAttention[T]) (*Column[T], error) {
	const mod = "column attention"
	if err := checkNew(mod, k, m == nil || m.Params == nil); err != nil {
		return nil, err
	}
	if err := m.Config.Validate(); err != nil {
		return nil, err
	}
	cfg := m.Config
	ts := m.Params.tensors(cfg)
	if err := checkTensors(mod, ColumnPrefix, ts); err != nil {
		return nil, err
	}
	up, err := uploadParams(k, mod, ts)
	if err != nil {
		return nil, err
	}
	w := byName(ts, up)
	col := &Column[T]{
		k: k, cfg: cfg, params: up,
		queryNormScale: w["query_norm//scale"], queryNorm0: w["query_norm//offset"],
		att: gatedFrom(w),
	}
	hp := new(ColumnParams[T])
	if hostParams(hp.tensors(cfg), up) {
		col.host = &ColumnAttention[T]{Config: cfg, Params: hp}
	}
	return col, nil
}

// Close frees the uploaded parameters; m must not be used afterwards
// (Forward then returns an error). Close of a closed Column does nothing.
func (m *Column[T]) Close() {
	if m == nil || m.k == nil {
		return
	}
	freeAll(m.k, m.params)
	*m = Column[T]{}
}

// Forward writes into out [S, N, c_m] the update of the MSA representation
// msa [S, N, c_m] with mask [S, N] (Algorithm 8; no residual added):
// ColumnAttention.Forward's result. Every tensor must belong to m's
// backend, and out must not overlap the inputs. Errors wrap num.ErrShape
// for a length that does not match s and n, and num.ErrNaN for non-finite
// inputs (as Row.Forward).
//
// The composed path layer-normalises the whole MSA once, then attends
// along the sequence axis of a chunk of residue columns at a time: the
// projections of the chunk's columns of every sequence come from one
// batched product, and the attention core reads them with strides
// (attn.Layout{Batch: H·c, Row: columns·H·c}) under the key mask maskᵀ
// [N, S], so that the MSA is never transposed and no S×S tensor per column
// or head exists. Besides the layer-normed MSA, the scratch of a chunk
// stays within about 2²⁵ elements (128 MiB in float32).
func (m *Column[T]) Forward(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	const mod = "column attention"
	if m == nil || m.k == nil {
		return fmt.Errorf("msaattn: %s: Forward on a closed or nil Column", mod)
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
func (m *Column[T]) checkArgs(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	const mod = "column attention"
	if err := checkSizes(mod, s, n); err != nil {
		return err
	}
	cm := m.cfg.MSAChannels
	return checkLens(mod,
		tensorArg[T]{"msa", msa, []int{s, n, cm}},
		tensorArg[T]{"mask", mask, []int{s, n}},
		tensorArg[T]{"out", out, []int{s, n, cm}})
}

// forward is the composed path of Forward.
func (m *Column[T]) forward(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	return m.forwardTape(msa, mask, s, n, out, nil)
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it also keeps in t the layer norm's
// statistics, the key mask maskᵀ, and each chunk's attention output
// before gating, transposed to [w, S, H·c] in place of its columns in
// [N, S, H·c] (a copy that changes nothing else), with its log-sum-exp;
// the kernels that make out are the same, so out is the same bit for bit.
func (m *Column[T]) forwardTape(msa, mask backend.Tensor[T], s, n int, out backend.Tensor[T], t *ColumnTape[T]) error {
	k, cfg := m.k, m.cfg
	cm, h, c := cfg.MSAChannels, cfg.Heads, cfg.HeadChannels
	hc, rows := h*c, s*n
	// Residue columns per chunk: q, k, v, the gate, the attention output
	// and the broadcast gating bias of each of the column's S positions.
	nc := chunkOf(m.scratch, n, 6*s*hc)

	sp := backend.NewArena(k)
	defer sp.Free()
	keep := sp // the tape's tensors, handed to t at the end
	var mean, rstd, oT, lse backend.Tensor[T]
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
		mean, rstd, oT, lse = keep.Alloc(rows), keep.Alloc(rows), keep.Alloc(rows*hc), keep.Alloc(n*h*s)
	}
	maskT := keep.Alloc(n * s)
	if keep.Err() != nil {
		return keep.Err()
	}
	x := sp.Alloc(rows * cm)
	pr := newProjections(sp, s*nc, hc, true)
	gb := sp.Alloc(s * nc * hc)
	if sp.Err() != nil {
		return sp.Err()
	}
	vw := backend.NewArena(k) // views of the tape's tensors
	if err := k.LayerNorm(x, msa, rows, cm, m.queryNormScale, m.queryNorm0, nn.LayerNormEps, mean, rstd); err != nil {
		return err
	}
	// The key mask of column n's attention is row n of maskᵀ [N, S].
	if err := k.Transpose(maskT, mask, 1, s, n, 1); err != nil {
		return err
	}
	if err := backend.Fill(k, out, m.att.outputB); err != nil {
		return err
	}
	if err := backend.Fill(k, gb, m.att.gatingB); err != nil {
		return err
	}
	for n0 := 0; n0 < n; n0 += nc {
		w := min(nc, n-n0)
		// Columns n0..n0+w of every sequence: S blocks of w rows, block
		// stride N·c_m, in x and in out. The projections are [S, w, H·c].
		xc, err1 := k.View(x, n0*cm, (rows-n0)*cm)
		outc, err2 := k.View(out, n0*cm, (rows-n0)*cm)
		maskc, err3 := k.View(maskT, n0*s, w*s)
		if err := firstErr(err1, err2, err3); err != nil {
			return err
		}
		p := pr.head(k, s*w*hc)
		if err := m.att.project(k, p, head(k, gb, s*w*hc), xc, s, w, cm, n*cm, cm, h, c); err != nil {
			return err
		}
		lay := attn.Layout{Batch: hc, Row: w * hc}
		a := selfAttention(w, s, h, c, p, lay, nil, maskc)
		var ls, ot backend.Tensor[T]
		if t != nil {
			ls, ot = vw.View(lse, n0*h*s, w*h*s), vw.View(oT, n0*s*hc, w*s*hc)
			if vw.Err() != nil {
				return vw.Err()
			}
		}
		if err := m.att.attend(k, a, p, lay, ls, outc, s, w, cm, n*cm, cm, hc); err != nil {
			return err
		}
		if t != nil {
			if err := k.Transpose(ot, p.o, 1, s, w, hc); err != nil {
				return err
			}
		}
	}
	if t != nil {
		t.mean, t.rstd, t.maskT, t.o, t.lse = mean, rstd, maskT, oT, lse
		t.own = keep
	}
	return nil
}
