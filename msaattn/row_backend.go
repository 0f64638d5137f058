package msaattn

import (
	"fmt"
	"math"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/attn"
	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
)

// Row is MSA row-wise gated self-attention with pair bias (supplement
// Algorithm 7) on a backend chosen by the caller: the forward pass of
// RowAttention with its parameters uploaded once, so that a chain of
// modules on the CUDA backend keeps the MSA, the pair representation and
// the update on the device. ForwardTape and Backward (row_backend_grad.go)
// give its gradients on the same backend.
//
// On the CPU backend, Forward on host tensors runs RowAttention.Forward
// itself, on a copy of the parameters taken by NewRow, and gives its
// result bit for bit. On any other backend it composes the backend's
// kernels (layer norms, matrix products, the streamed attention core,
// sigmoid gating) in RowAttention's order of operations; the results agree
// with the CPU forward to round-off.
type Row[T num.Float] struct {
	k   backend.Kernels[T]
	cfg RowConfig
	// host is the uploaded parameters as a CPU module, when the backend's
	// tensors are host slices (the CPU backend), for the dispatch to
	// RowAttention.Forward; nil otherwise.
	host *RowAttention[T]
	// params holds every uploaded tensor, for Close.
	params                     []backend.Tensor[T]
	queryNormScale, queryNorm0 backend.Tensor[T] // query_norm//scale, //offset [c_m]
	pairNormScale, pairNorm0   backend.Tensor[T] // feat_2d_norm//scale, //offset [c_z]
	pairW                      backend.Tensor[T] // feat_2d_weights [c_z, H]
	att                        gatedWeights[T]

	// composed forces the composed path on host tensors (tests).
	composed bool
	// scratch bounds the elements of one chunk's scratch tensors; 0 means
	// maxScratch (tests set it small to run many chunks).
	scratch int
}

// NewRow validates m and uploads its parameters to k, returning row
// attention (Algorithm 7) on that backend. The parameters are copied:
// later changes to m do not affect the result. The caller must Close it.
// Errors wrap num.ErrShape or num.ErrNaN for parameters that do not match
// m.Config or are not finite.
func NewRow[T num.Float](k backend.Kernels[T], m *RowAttention[T]) (*Row[T], error) {
	const mod = "row attention"
	if err := checkNew(mod, k, m == nil || m.Params == nil); err != nil {
		return nil, err
	}
	if err := m.Config.Validate(); err != nil {
		return nil, err
	}
	cfg := m.Config
	ts := m.Params.tensors(cfg)
	if err := checkTensors(mod, RowPrefix, ts); err != nil {
		return nil, err
	}
	up, err := uploadParams(k, mod, ts)
	if err != nil {
		return nil, err
	}
	w := byName(ts, up)
	r := &Row[T]{
		k: k, cfg: cfg, params: up,
		queryNormScale: w["query_norm//scale"], queryNorm0: w["query_norm//offset"],
		pairNormScale: w["feat_2d_norm//scale"], pairNorm0: w["feat_2d_norm//offset"],
		pairW: w["/feat_2d_weights"],
		att:   gatedFrom(w),
	}
	hp := new(RowParams[T])
	if hostParams(hp.tensors(cfg), up) {
		r.host = &RowAttention[T]{Config: cfg, Params: hp}
	}
	return r, nil
}

// Close frees the uploaded parameters; r must not be used afterwards
// (Forward then returns an error). Close of a closed Row does nothing.
func (r *Row[T]) Close() {
	if r == nil || r.k == nil {
		return
	}
	freeAll(r.k, r.params)
	*r = Row[T]{}
}

// Forward writes into out [S, N, c_m] the update of the MSA representation
// msa [S, N, c_m] given the pair representation z [N, N, c_z] and the MSA
// mask [S, N] (Algorithm 7; no residual added): RowAttention.Forward's
// result. Every tensor must belong to r's backend, and out must not
// overlap the inputs. Errors wrap num.ErrShape for a length that does not
// match s and n, and num.ErrNaN for non-finite inputs (found by the
// attention core's input checks on the composed path, which the CUDA
// backend can turn off). Work may still be queued when Forward returns:
// an error from it is reported by a later call (see backend.Kernels).
//
// The composed path forms the pair bias [H, N, N] from LayerNorm(z) a
// chunk of residue pairs at a time (LayerNorm(z)·feat_2d_weights
// [N², H], then a transpose), and runs the attention a chunk of sequences
// at a time, so that besides the pair bias a chunk's scratch stays within
// about 2²⁵ elements (128 MiB in float32) and no N×N tensor per sequence
// or head exists.
func (r *Row[T]) Forward(msa, z, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	const mod = "row attention"
	if r == nil || r.k == nil {
		return fmt.Errorf("msaattn: %s: Forward on a closed or nil Row", mod)
	}
	if err := r.checkArgs(msa, z, mask, s, n, out); err != nil {
		return err
	}
	if r.host != nil && !r.composed {
		if h, ok := backend.HostSlices(msa, z, mask, out); ok {
			u, err := r.host.Forward(h[0], h[1], h[2], s, n, nil)
			if err != nil {
				return err
			}
			copy(h[3], u)
			return nil
		}
	}
	if err := r.forward(msa, z, mask, s, n, out); err != nil {
		return fmt.Errorf("msaattn: %s: %w", mod, err)
	}
	return nil
}

// checkArgs checks the sizes and the tensors of Forward and ForwardTape.
func (r *Row[T]) checkArgs(msa, z, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	const mod = "row attention"
	if err := checkSizes(mod, s, n); err != nil {
		return err
	}
	cm, cz := r.cfg.MSAChannels, r.cfg.PairChannels
	return checkLens(mod,
		tensorArg[T]{"msa", msa, []int{s, n, cm}},
		tensorArg[T]{"z", z, []int{n, n, cz}},
		tensorArg[T]{"mask", mask, []int{s, n}},
		tensorArg[T]{"out", out, []int{s, n, cm}})
}

// forward is the composed path of Forward.
func (r *Row[T]) forward(msa, z, mask backend.Tensor[T], s, n int, out backend.Tensor[T]) error {
	return r.forwardTape(msa, z, mask, s, n, out, nil)
}

// forwardTape is the composed path of Forward (t nil) and ForwardTape on
// checked arguments. With a tape it also keeps in t the pair bias, the
// statistics of both layer norms and the attention output before gating
// with its log-sum-exp (the attention writes them there instead of into
// a chunk's scratch); the kernels and their order are the same, so out is
// the same bit for bit.
func (r *Row[T]) forwardTape(msa, z, mask backend.Tensor[T], s, n int, out backend.Tensor[T], t *RowTape[T]) error {
	k, cfg := r.k, r.cfg
	cm, cz, h, c := cfg.MSAChannels, cfg.PairChannels, cfg.Heads, cfg.HeadChannels
	hc, pairs := h*c, n*n
	// Sequences per chunk: the layer-normed MSA, q, k, v, the gate and the
	// attention output of each; residue pairs per chunk of the pair bias:
	// LayerNorm(z) and the bias before and after its transpose.
	sc := chunkOf(r.scratch, s, n*(cm+5*hc))
	pc := chunkOf(r.scratch, pairs, cz+2*h)

	sp := backend.NewArena(k)
	defer sp.Free()
	keep := sp // the tape's tensors, handed to t at the end
	var mean, rstd, zmean, zrstd, o, lse backend.Tensor[T]
	if t != nil {
		keep = backend.NewArena(k)
		defer func() {
			if t.own != keep {
				keep.Free()
			}
		}()
		mean, rstd, zmean, zrstd = keep.Alloc(s*n), keep.Alloc(s*n), keep.Alloc(pairs), keep.Alloc(pairs)
		o, lse = keep.Alloc(s*n*hc), keep.Alloc(s*h*n)
	}
	bias := keep.Alloc(h * pairs)
	if keep.Err() != nil {
		return keep.Err()
	}
	zx, zb := sp.Alloc(pc*cz), sp.Alloc(pc*h)
	var zt backend.Tensor[T]
	if pc < pairs {
		zt = sp.Alloc(pc * h)
	}
	x := sp.Alloc(sc * n * cm)
	pr := newProjections(sp, sc*n, hc, t == nil)
	gb := sp.Alloc(sc * n * hc)
	if sp.Err() != nil {
		return sp.Err()
	}
	vw := backend.NewArena(k) // views of the tape's tensors

	// The pair bias b [H, N, N] = (LayerNorm(z)·feat_2d_weights)ᵀ.
	for p0 := 0; p0 < pairs; p0 += pc {
		np := min(pc, pairs-p0)
		zc, err := k.View(z, p0*cz, np*cz)
		if err != nil {
			return err
		}
		zxv, zbv := head(k, zx, np*cz), head(k, zb, np*h)
		var zm, zs backend.Tensor[T]
		if t != nil {
			zm, zs = vw.View(zmean, p0, np), vw.View(zrstd, p0, np)
			if vw.Err() != nil {
				return vw.Err()
			}
		}
		if err := k.LayerNorm(zxv, zc, np, cz, r.pairNormScale, r.pairNorm0, nn.LayerNormEps, zm, zs); err != nil {
			return err
		}
		if err := k.Linear(zbv, zxv, np, cz, h, r.pairW, nil); err != nil {
			return err
		}
		if np == pairs {
			if err := k.Transpose(bias, zbv, 1, pairs, h, 1); err != nil {
				return err
			}
			continue
		}
		ztv := head(k, zt, np*h)
		if err := k.Transpose(ztv, zbv, 1, np, h, 1); err != nil {
			return err
		}
		for hh := range h {
			dst, err1 := k.View(bias, hh*pairs+p0, np)
			src, err2 := k.View(ztv, hh*np, np)
			if err := firstErr(err1, err2); err != nil {
				return err
			}
			if err := k.Copy(dst, src); err != nil {
				return err
			}
		}
	}

	// The update starts as output_b in every row; each chunk adds its
	// gated attention times output_w, as attn.GatedForward does.
	if err := backend.Fill(k, out, r.att.outputB); err != nil {
		return err
	}
	if err := backend.Fill(k, gb, r.att.gatingB); err != nil {
		return err
	}
	for s0 := 0; s0 < s; s0 += sc {
		ns := min(sc, s-s0)
		r0, nr := s0*n, ns*n
		mc, err1 := k.View(msa, r0*cm, nr*cm)
		maskc, err2 := k.View(mask, r0, nr)
		outc, err3 := k.View(out, r0*cm, nr*cm)
		if err := firstErr(err1, err2, err3); err != nil {
			return err
		}
		xv := head(k, x, nr*cm)
		var ms, rs, ls backend.Tensor[T]
		p := pr.head(k, nr*hc)
		if t != nil {
			ms, rs, ls = vw.View(mean, r0, nr), vw.View(rstd, r0, nr), vw.View(lse, s0*h*n, ns*h*n)
			p.o = vw.View(o, r0*hc, nr*hc)
			if vw.Err() != nil {
				return vw.Err()
			}
		}
		if err := k.LayerNorm(xv, mc, nr, cm, r.queryNormScale, r.queryNorm0, nn.LayerNormEps, ms, rs); err != nil {
			return err
		}
		// Rows of the chunk are contiguous: one block of nr rows.
		if err := r.att.project(k, p, head(k, gb, nr*hc), xv, 1, nr, cm, 0, cm, h, c); err != nil {
			return err
		}
		lay := attn.Layout{Batch: n * hc, Row: hc}
		a := selfAttention(ns, n, h, c, p, lay, bias, maskc)
		if err := r.att.attend(k, a, p, lay, ls, outc, 1, nr, cm, 0, cm, hc); err != nil {
			return err
		}
	}
	if t != nil {
		t.mean, t.rstd, t.zmean, t.zrstd, t.bias, t.o, t.lse = mean, rstd, zmean, zrstd, bias, o, lse
		t.own = keep
	}
	return nil
}

// maxScratch bounds the elements of the scratch tensors one chunk of a
// composed Forward holds: 2²⁵ elements are 128 MiB in float32 and 256 MiB
// in float64. Tensors whose size the module fixes (the pair bias, the keys
// and values of global attention) are held whole, as on the CPU.
const maxScratch = 1 << 25

// chunkOf returns how many of total items (sequences, columns or residue
// pairs), each needing unit scratch elements, one chunk takes within limit
// elements (maxScratch when limit is 0): at least 1, at most total.
func chunkOf(limit, total, unit int) int {
	if limit <= 0 {
		limit = maxScratch
	}
	return max(1, min(total, limit/max(unit, 1)))
}

// gatedWeights are the arrays of attn.GatedParams on a backend, under
// AF2's names attention//query_w, ... (global column attention's key and
// value weights have no head axis but the same names).
type gatedWeights[T num.Float] struct {
	query, key, value, gating backend.Tensor[T] // [c_in, H, c] ([c_in, c] for global keys and values)
	gatingB                   backend.Tensor[T] // [H, c]
	output                    backend.Tensor[T] // [H, c, c_out]
	outputB                   backend.Tensor[T] // [c_out]
}

// gatedFrom picks the gated-attention tensors out of the uploaded
// parameters w.
func gatedFrom[T num.Float](w map[string]backend.Tensor[T]) gatedWeights[T] {
	return gatedWeights[T]{
		query: w["attention//query_w"], key: w["attention//key_w"], value: w["attention//value_w"],
		gating: w["attention//gating_w"], gatingB: w["attention//gating_b"],
		output: w["attention//output_w"], outputB: w["attention//output_b"],
	}
}

// projections are the per-row tensors of AF2's gated attention, each
// [rows, H·c]: the queries (scaled by c^-1/2), keys, values, the gate
// (pre-activation, then sigmoid·o) and the attention output o.
type projections[T num.Float] struct{ q, k, v, g, o backend.Tensor[T] }

// newProjections allocates the tensors for rows rows of width hc: all
// five, or without o when withO is false (a tape holds the attention
// output instead).
func newProjections[T num.Float](a *backend.Arena[T], rows, hc int, withO bool) projections[T] {
	p := projections[T]{q: a.Alloc(rows * hc), k: a.Alloc(rows * hc), v: a.Alloc(rows * hc), g: a.Alloc(rows * hc)}
	if withO {
		p.o = a.Alloc(rows * hc)
	}
	return p
}

// head returns the first n elements of each tensor of p (o stays nil
// when it is).
func (p projections[T]) head(k backend.Kernels[T], n int) projections[T] {
	h := projections[T]{q: head(k, p.q, n), k: head(k, p.k, n), v: head(k, p.v, n), g: head(k, p.g, n)}
	if p.o != nil {
		h.o = head(k, p.o, n)
	}
	return h
}

// selfAttention returns the attention of AF2's gated self-attention on
// the projections p (layout lay) of batch batch elements of l rows: the
// queries already scaled, the pair bias [H, l, l] (nil: none) and the key
// mask [batch, l] under AF2's bias 1e9·(mask − 1).
func selfAttention[T num.Float](batch, l, h, c int, p projections[T], lay attn.Layout, bias, mask backend.Tensor[T]) *backend.Attention[T] {
	return &backend.Attention[T]{
		Dims: attn.Dims{Batch: batch, Heads: h, Lq: l, Lk: l, C: c, Cv: c, KVHeads: h},
		Q:    p.q, QL: lay, K: p.k, KL: lay, V: p.v, VL: lay,
		Scale: 1, PairBias: bias, KeyMask: mask, MaskBias: maskBias,
	}
}

// project sets the projections p [blocks·m, H·c] of blocks blocks of m
// rows of x [.., c_in] (block i at i·blockStride, row stride ld): as
// attn.GatedForward, q = x·query_w·c^-1/2, k = x·key_w, v = x·value_w
// and g = gating_b + x·gating_w (the pre-activation of the gate). gb
// holds gating_b repeated for every row. The blocks let column attention
// project a chunk of residue columns of every sequence in one product.
func (w *gatedWeights[T]) project(k backend.Kernels[T], p projections[T], gb, x backend.Tensor[T], blocks, m, ld, blockStride, cin, h, c int) error {
	hc := h * c
	scale := T(1 / math.Sqrt(float64(c))) // AF2 scales q after the projection
	if err := gemmBlocks(k, blocks, m, hc, cin, scale, x, ld, blockStride, w.query, 0, p.q, hc, m*hc); err != nil {
		return err
	}
	if err := gemmBlocks(k, blocks, m, hc, cin, 1, x, ld, blockStride, w.key, 0, p.k, hc, m*hc); err != nil {
		return err
	}
	if err := gemmBlocks(k, blocks, m, hc, cin, 1, x, ld, blockStride, w.value, 0, p.v, hc, m*hc); err != nil {
		return err
	}
	if err := k.Copy(p.g, gb); err != nil {
		return err
	}
	return gemmBlocks(k, blocks, m, hc, cin, 1, x, ld, blockStride, w.gating, 1, p.g, hc, m*hc)
}

// attend runs the attention a (queries, keys and values from p, output
// into p.o by layout oL, its log-sum-exp into lse when lse is not nil),
// gates it, o⊙sigmoid(g), and adds (o⊙sigmoid(g))·output_w to blocks
// blocks of m rows of out (block i at i·blockStride, row stride ld), which
// the caller has set to output_b. p.o keeps the attention output.
func (w *gatedWeights[T]) attend(k backend.Kernels[T], a *backend.Attention[T], p projections[T], oL attn.Layout, lse, out backend.Tensor[T], blocks, m, ld, blockStride, cout, hc int) error {
	if err := k.Attention(a, p.o, oL, lse); err != nil {
		return err
	}
	if err := k.Gate(p.g, p.g, p.o); err != nil {
		return err
	}
	return gemmBlocks(k, blocks, m, cout, hc, 1, p.g, hc, m*hc, w.output, 1, out, ld, blockStride)
}

// gemmBlocks computes C_i = alpha·A_i·B + beta·C_i for i < blocks, with
// A_i [m, kk] at i·sa (row stride lda), C_i [m, n] at i·sc (row stride
// ldc) and one B [kk, n] for all: a batched product with a zero stride for
// B, or one product of blocks·m rows when the blocks follow one another.
// a and c are tensors (or views) that start at the first block.
func gemmBlocks[T num.Float](k backend.Kernels[T], blocks, m, n, kk int, alpha T, a backend.Tensor[T], lda, sa int, b backend.Tensor[T], beta T, c backend.Tensor[T], ldc, sc int) error {
	if blocks == 1 || (sa == m*lda && sc == m*ldc) {
		return k.Gemm(false, false, blocks*m, n, kk, alpha, a, lda, b, n, beta, c, ldc)
	}
	return k.GemmStridedBatched(false, false, m, n, kk, alpha, a, lda, sa, b, n, 0, beta, c, ldc, sc, blocks)
}

func freeAll[T num.Float](k backend.Kernels[T], ts []backend.Tensor[T]) {
	for _, t := range ts {
		k.Free(t)
	}
}

// head returns the first n elements of x: x itself when it has n, else a
// view. A failed view returns nil, which the next kernel reports as a
// missing tensor (num.ErrShape); callers size their scratch so that it
// does not fail.
func head[T num.Float](k backend.Kernels[T], x backend.Tensor[T], n int) backend.Tensor[T] {
	if x != nil && x.Len() == n {
		return x
	}
	v, err := k.View(x, 0, n)
	if err != nil {
		return nil
	}
	return v
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkNew reports a nil backend or module for the constructor of module.
func checkNew[T num.Float](module string, k backend.Kernels[T], nilModule bool) error {
	if k == nil {
		return fmt.Errorf("msaattn: %s: nil backend", module)
	}
	if nilModule {
		return fmt.Errorf("msaattn: %s: nil module or Params", module)
	}
	return nil
}

// uploadParams copies the arrays of ts to k, in order, freeing what it
// uploaded if one fails.
func uploadParams[T num.Float](k backend.Kernels[T], module string, ts []param[T]) ([]backend.Tensor[T], error) {
	up := make([]backend.Tensor[T], 0, len(ts))
	for _, t := range ts {
		d, err := k.FromHost(*t.data)
		if err != nil {
			freeAll(k, up)
			return nil, fmt.Errorf("msaattn: %s: uploading %s: %w", module, t.name, err)
		}
		up = append(up, d)
	}
	return up, nil
}

// byName maps the AF2 names of ts to the uploaded tensors up.
func byName[T num.Float](ts []param[T], up []backend.Tensor[T]) map[string]backend.Tensor[T] {
	w := make(map[string]backend.Tensor[T], len(ts))
	for i, t := range ts {
		w[t.name] = up[i]
	}
	return w
}

// hostParams points the arrays of ts, a new Params' list, at the uploaded
// tensors up (the same list's order) and reports whether they all are
// host slices, so that the CPU forward can run on the uploaded copy.
func hostParams[T num.Float](ts []param[T], up []backend.Tensor[T]) bool {
	for i, t := range ts {
		h, ok := backend.AsHost(up[i])
		if !ok {
			return false
		}
		*t.data = h
	}
	return true
}

// tensorArg is a Forward argument with the shape it must have.
type tensorArg[T num.Float] struct {
	what  string
	t     backend.Tensor[T]
	shape []int
}

// checkLens reports the first argument that is missing or whose length is
// not its shape's (num.ErrShape), naming it.
func checkLens[T num.Float](module string, args ...tensorArg[T]) error {
	for _, a := range args {
		if err := backend.CheckArgs(backend.Arg[T]{Name: a.what, T: a.t, Shape: a.shape}); err != nil {
			return fmt.Errorf("msaattn: %s: %w", module, err)
		}
	}
	return nil
}
