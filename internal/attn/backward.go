package attn

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
)

// renormAbove is the |lse| above which Backward does not trust the saved
// log-sum-exp of a row. In float32 the spacing of numbers near 512 is 2^-14,
// so up to there exp(s − lse) carries a relative error of at most 3e-5. A
// row whose keys are all masked has lse ≈ −MaskBias = −1e9, where float32
// keeps no digit of log(Σ exp): exp(s − lse) would come out as 1 for every key
// instead of 1/Lk. For such rows Backward recomputes the row maximum and sum
// from the logits (one extra pass over the key tiles of that query tile) and
// normalises exactly, as Forward did.
const renormAbove = 512

// Backward accumulates (+=) the gradients of a scalar loss with respect to
// the queries, keys, values and pair bias of p, given the upstream gradient
// do of the output (layout oL, like o) and the o and lse that Forward
// returned for p. It is the attention-core backward pass of AF2's gated
// multi-head attention (supplement Algorithms 7, 8, 13 and 14).
//
// dq, dk and dv use the layouts QL, KL and VL of p; dPairBias is
// [Heads, Lq, Lk] and receives the sum over the batch. A nil output is not
// computed.
//
// Backward recomputes the probabilities tile by tile, flash-attention style:
// with D = rowsum(dO⊙O), P = exp(S − lse), dV += Pᵀ·dO, dP = dO·Vᵀ,
// dS = P⊙(dP − D), dQ += Scale·dS·K, dK += Scale·dSᵀ·Q and dPairBias += dS.
// No more than one TileQ×TileK tile of logits and one of dP are held per
// worker. Work is split over (head, batch) — or over the batch alone when
// KVHeads = 1, since all heads then write the same dK and dV — in contiguous
// static ranges, so writes to dq, dk and dv never collide. The first worker
// on a head of dPairBias accumulates into it in place; every further worker
// on that head gets a private [Lq, Lk] buffer, added in worker order at the
// end. That is the only memory beyond the tiles: at most (workers − 1)
// buffers when KVHeads = Heads (work is ordered head-major), and
// (workers − 1)·Heads when KVHeads = 1; none with one worker or without
// dPairBias. The result is deterministic for a given
// gemm.TileWorkers[T]() (GOMAXPROCS, or 1 for float64 with OpenBLAS).
func Backward[T num.Float](p *Problem[T], o []T, oL Layout, lse []T, do []T, dq, dk, dv, dPairBias []T) error {
	if err := p.check(); err != nil {
		return err
	}
	d := p.Dims
	kvh := d.kvHeads()
	if err := checkTensor("o", o, oL, d.Batch, d.Lq, d.Heads*d.Cv); err != nil {
		return err
	}
	if err := checkTensor("do", do, oL, d.Batch, d.Lq, d.Heads*d.Cv); err != nil {
		return err
	}
	if err := num.CheckLen("attn: lse", lse, d.Batch*d.Heads*d.Lq, fmt.Sprintf("[Batch,Heads,Lq] = [%d %d %d]", d.Batch, d.Heads, d.Lq)); err != nil {
		return err
	}
	if err := num.CheckFinite("attn: lse", lse); err != nil {
		return err
	}
	if dq != nil {
		if err := checkOutput("dq", dq, p.QL, d.Batch, d.Lq, d.Heads*d.C); err != nil {
			return err
		}
	}
	if dk != nil {
		if err := checkOutput("dk", dk, p.KL, d.Batch, d.Lk, kvh*d.C); err != nil {
			return err
		}
	}
	if dv != nil {
		if err := checkOutput("dv", dv, p.VL, d.Batch, d.Lk, kvh*d.Cv); err != nil {
			return err
		}
	}
	if dPairBias != nil {
		if err := num.CheckLen("attn: dPairBias", dPairBias, d.Heads*d.Lq*d.Lk, fmt.Sprintf("[Heads,Lq,Lk] = [%d %d %d]", d.Heads, d.Lq, d.Lk)); err != nil {
			return err
		}
	}
	if d.Batch == 0 || d.Lq == 0 || (dq == nil && dk == nil && dv == nil && dPairBias == nil) {
		return nil
	}

	// Items are (head, batch) pairs, head-major, or batch elements when one
	// key/value head is shared. Worker w takes the contiguous range
	// [w·n/W, (w+1)·n/W).
	perHead := kvh != 1
	n := d.Batch
	if perHead {
		n *= d.Heads
	}
	workers := min(gemm.TileWorkers[T](), n) // the workers' products: gemm.Tile, or gemm.Gemm
	lo := func(w int) int { return w * n / workers }
	headsOf := func(w int) (h0, h1 int) {
		if !perHead {
			return 0, d.Heads
		}
		return lo(w) / d.Batch, (lo(w+1)-1)/d.Batch + 1
	}

	// Destinations for dPairBias: a head touched by one worker is written in
	// place; a head shared by several gets a private buffer per worker.
	plane := d.Lq * d.Lk
	var pbDst [][][]T // [worker][head]
	var shared []int  // heads with private buffers
	if dPairBias != nil {
		users := make([]int, d.Heads)
		for w := 0; w < workers; w++ {
			h0, h1 := headsOf(w)
			for h := h0; h < h1; h++ {
				users[h]++
			}
		}
		pbDst = make([][][]T, workers)
		inPlace := make([]bool, d.Heads)
		for w := range pbDst {
			pbDst[w] = make([][]T, d.Heads)
			h0, h1 := headsOf(w)
			for h := h0; h < h1; h++ {
				if !inPlace[h] {
					// The first worker on a head writes in place.
					pbDst[w][h] = dPairBias[h*plane : (h+1)*plane]
					inPlace[h] = true
				} else {
					pbDst[w][h] = make([]T, plane)
				}
			}
		}
		for h, u := range users {
			if u > 1 {
				shared = append(shared, h)
			}
		}
	}

	bw := bwdArgs[T]{p: p, o: o, oL: oL, lse: lse, do: do, dq: dq, dk: dk, dv: dv}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		work := func() {
			wk := newBwdWorker(&bw)
			if pbDst != nil {
				wk.pb = pbDst[w]
			}
			for i := lo(w); i < lo(w+1); i++ {
				if perHead {
					wk.head(i%d.Batch, i/d.Batch)
					continue
				}
				for h := 0; h < d.Heads; h++ {
					wk.head(i, h)
				}
			}
		}
		if workers == 1 {
			work()
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); work() }()
	}
	wg.Wait()

	// Sum the private dPairBias buffers of shared heads, in worker order,
	// in parallel over row chunks of those heads.
	if len(shared) > 0 {
		const chunk = 4096
		nc := (plane + chunk - 1) / chunk
		run(len(shared)*nc, runtime.GOMAXPROCS(0), func() func(int) {
			return func(i int) {
				h := shared[i/nc]
				a := (i % nc) * chunk
				b := min(a+chunk, plane)
				dst := dPairBias[h*plane+a : h*plane+b]
				first := true
				for w := 0; w < workers; w++ {
					if h0, h1 := headsOf(w); h < h0 || h >= h1 {
						continue
					}
					if first { // wrote in place
						first = false
						continue
					}
					for j, x := range pbDst[w][h][a:b] {
						dst[j] += x
					}
				}
			}
		})
	}
	return nil
}

// bwdArgs are the arguments of one Backward call.
type bwdArgs[T num.Float] struct {
	p          *Problem[T]
	o          []T
	oL         Layout
	lse, do    []T
	dq, dk, dv []T
}

// bwdWorker is one goroutine's scratch for Backward.
type bwdWorker[T num.Float] struct {
	*bwdArgs[T]
	tq, tk   int
	s, dp    []T   // tq×tk probabilities and dP, then dS
	dd       []T   // D = rowsum(dO⊙O) of the query tile
	shift, r []T   // P = exp(S − shift)·r
	m, l     []T   // recomputed row maximum and sum of flagged rows
	mb       []T   // tk mask biases
	pb       [][]T // dPairBias destination per head (nil: not wanted)
	pk       *packer[T]
}

func newBwdWorker[T num.Float](a *bwdArgs[T]) *bwdWorker[T] {
	tq, tk := a.p.tiles()
	return &bwdWorker[T]{
		bwdArgs: a, tq: tq, tk: tk,
		s:     make([]T, tq*tk),
		dp:    make([]T, tq*tk),
		dd:    make([]T, tq),
		shift: make([]T, tq),
		r:     make([]T, tq),
		m:     make([]T, tq),
		l:     make([]T, tq),
		mb:    make([]T, tk),
		pk:    newPacker[T](),
	}
}

// head accumulates the gradients of batch element b, head h.
func (w *bwdWorker[T]) head(b, h int) {
	for q0 := 0; q0 < w.p.Lq; q0 += w.tq {
		w.block(b, h, q0)
	}
}

// block accumulates the gradients of the query tile q0.. of batch element b,
// head h, over all key tiles.
func (w *bwdWorker[T]) block(b, h, q0 int) {
	p := w.p
	c, cv := p.C, p.Cv
	nq := min(w.tq, p.Lq-q0)
	kh := h
	if p.kvHeads() == 1 {
		kh = 0
	}
	ldo, ldq, ldk, ldv := ld(w.oL.Row, cv), ld(p.QL.Row, c), ld(p.KL.Row, c), ld(p.VL.Row, cv)
	ooff := b*w.oL.Batch + q0*w.oL.Row + h*cv
	qoff := b*p.QL.Batch + q0*p.QL.Row + h*c

	dd, shift, r := w.dd[:nq], w.shift[:nq], w.r[:nq]
	flagged := false
	for i := 0; i < nq; i++ {
		off := ooff + i*w.oL.Row
		var s T
		for j, x := range w.do[off : off+cv] {
			s += x * w.o[off+j]
		}
		dd[i] = s
		shift[i] = w.lse[(b*p.Heads+h)*p.Lq+q0+i]
		r[i] = 1
		if math.Abs(float64(shift[i])) > renormAbove {
			flagged = true
		}
	}
	if flagged {
		w.renorm(b, h, q0, nq)
	}

	var pb []T
	if w.pb != nil {
		pb = w.pb[h]
	}
	needDS := w.dq != nil || w.dk != nil || pb != nil
	for k0 := 0; k0 < p.Lk; k0 += w.tk {
		nk := min(w.tk, p.Lk-k0)
		s := w.s[:nq*nk]
		logits(p, b, h, q0, nq, k0, nk, s, w.mb, w.pk)
		for i := 0; i < nq; i++ {
			row := s[i*nk : (i+1)*nk]
			expShiftScale(row, shift[i], r[i])
		}
		koff := b*p.KL.Batch + k0*p.KL.Row + kh*c
		voff := b*p.VL.Batch + k0*p.VL.Row + kh*cv
		if w.dv != nil {
			w.pk.tn(true, nk, cv, nq, 1, s, nk, w.do[ooff:], ldo, w.dv[voff:], ldv)
		}
		if !needDS {
			continue
		}
		dp := w.dp[:nq*nk]
		if w.pk.native {
			vt := w.pk.wholeT(1, [2]int{b, kh}, p.V, b*p.VL.Batch+kh*cv, ldv, p.Lk, cv)
			w.pk.nn(false, nq, nk, cv, 1, w.do[ooff:], ldo, vt[k0:], p.Lk, dp, nk)
		} else {
			w.pk.nt(false, nq, nk, cv, 1, w.do[ooff:], ldo, p.V[voff:], ldv, dp, nk)
		}
		for i := 0; i < nq; i++ {
			prow, drow := s[i*nk:(i+1)*nk], dp[i*nk:(i+1)*nk]
			di := dd[i]
			for j, x := range prow {
				drow[j] = x * (drow[j] - di)
			}
			if pb != nil {
				dst := pb[(q0+i)*p.Lk+k0:][:nk]
				for j, x := range drow {
					dst[j] += x
				}
			}
		}
		if w.dq != nil {
			w.pk.nn(true, nq, c, nk, p.Scale, dp, nk, p.K[koff:], ldk, w.dq[qoff:], ldq)
		}
		if w.dk != nil {
			w.pk.tn(true, nk, c, nq, p.Scale, dp, nk, p.Q[qoff:], ldq, w.dk[koff:], ldk)
		}
	}
}

// renorm recomputes the maximum and the sum of exponentials of the query
// rows whose saved lse is beyond renormAbove, and sets their shift and
// reciprocal sum so that exp(S − shift)·r is their softmax (see renormAbove).
func (w *bwdWorker[T]) renorm(b, h, q0, nq int) {
	p := w.p
	m, l := w.m[:nq], w.l[:nq]
	for i := range m {
		m[i] = T(math.Inf(-1))
		l[i] = 0
	}
	for k0 := 0; k0 < p.Lk; k0 += w.tk {
		nk := min(w.tk, p.Lk-k0)
		s := w.s[:nq*nk]
		logits(p, b, h, q0, nq, k0, nk, s, w.mb, w.pk)
		for i := 0; i < nq; i++ {
			if math.Abs(float64(w.shift[i])) <= renormAbove {
				continue
			}
			row := s[i*nk : (i+1)*nk]
			if mx := rowMax(row, m[i]); mx > m[i] {
				l[i] *= num.FastExp(m[i] - mx) // 0 while m[i] = −Inf
				m[i] = mx
			}
			for _, x := range row {
				l[i] += num.FastExp(x - m[i])
			}
		}
	}
	for i := 0; i < nq; i++ {
		if math.Abs(float64(w.shift[i])) > renormAbove {
			w.shift[i] = m[i]
			w.r[i] = 1 / l[i]
		}
	}
}
