package attn

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/foldkit/foldkit/internal/gemm"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/internal/simd"
)

// Forward computes the attention output o ([Batch, Lq, Heads, Cv] by oL,
// overwritten) of p, streaming over key tiles with an online softmax: for
// every tile of TileQ queries it keeps a running maximum, a running sum of
// exponentials and a TileQ×Cv accumulator, and never holds more than one
// TileQ×TileK tile of logits. This is the attention core of AF2's gated
// multi-head attention (supplement Algorithms 7, 8, 13 and 14).
//
// lse, if not nil, receives the [Batch, Heads, Lq] (contiguous) log-sum-exp
// of every logit row, which Backward needs to recompute the softmax. o and
// lse must not overlap the inputs.
//
// The work is spread over gemm.TileWorkers[T]() goroutines (GOMAXPROCS,
// or one for float64 with OpenBLAS) by (batch, head, query tile); each
// holds its own scratch and runs its tile products with gemm.Tile. Forward returns an error wrapping
// num.ErrShape for inconsistent sizes or layouts, and num.ErrNaN for
// non-finite inputs.
func Forward[T num.Float](p *Problem[T], o []T, oL Layout, lse []T) error {
	if err := p.check(); err != nil {
		return err
	}
	d := p.Dims
	if err := checkOutput("o", o, oL, d.Batch, d.Lq, d.Heads*d.Cv); err != nil {
		return err
	}
	if lse != nil {
		if err := num.CheckLen("attn: lse", lse, d.Batch*d.Heads*d.Lq, fmt.Sprintf("[Batch,Heads,Lq] = [%d %d %d]", d.Batch, d.Heads, d.Lq)); err != nil {
			return err
		}
	}
	if d.Batch == 0 || d.Lq == 0 {
		return nil
	}
	tq, _ := p.tiles()
	nqb := (d.Lq + tq - 1) / tq
	items := d.Batch * d.Heads * nqb
	run(items, gemm.TileWorkers[T](), func() func(int) {
		w := newFwdWorker(p)
		return func(i int) {
			qb := i % nqb
			bh := i / nqb
			w.block(bh/d.Heads, bh%d.Heads, qb*tq, o, oL, lse)
		}
	})
	return nil
}

// run calls the item function made by newWorker for items 0..n-1 on up to
// maxWorkers goroutines, each pulling the next item from a shared counter;
// newWorker is called once per goroutine to set up its scratch. Items that
// call gemm.Gemm pass gemm.Workers() as maxWorkers (OpenBLAS threads each
// product itself and slows down when called concurrently); elementwise
// items pass runtime.GOMAXPROCS(0).
func run(n, maxWorkers int, newWorker func() func(int)) {
	workers := min(maxWorkers, n)
	if workers <= 1 {
		f := newWorker()
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			f := newWorker()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// fwdWorker is one goroutine's scratch for Forward.
type fwdWorker[T num.Float] struct {
	p      *Problem[T]
	tq, tk int
	s      []T // tq×tk logits, then probabilities
	acc    []T // tq×Cv running numerator
	m, l   []T // running row maximum and sum
	mb     []T // tk mask biases
	pk     *packer[T]
}

func newFwdWorker[T num.Float](p *Problem[T]) *fwdWorker[T] {
	tq, tk := p.tiles()
	return &fwdWorker[T]{
		p: p, tq: tq, tk: tk,
		s:   make([]T, tq*tk),
		acc: make([]T, tq*p.Cv),
		m:   make([]T, tq),
		l:   make([]T, tq),
		mb:  make([]T, tk),
		pk:  newPacker[T](),
	}
}

// block computes the output rows q0..q0+TileQ-1 of batch element b, head h.
func (w *fwdWorker[T]) block(b, h, q0 int, o []T, oL Layout, lse []T) {
	p := w.p
	nq := min(w.tq, p.Lq-q0)
	cv := p.Cv
	acc := w.acc[:nq*cv]
	clear(acc)
	m, l := w.m[:nq], w.l[:nq]
	for i := range m {
		m[i] = T(math.Inf(-1))
		l[i] = 0
	}
	vh := h
	if p.kvHeads() == 1 {
		vh = 0
	}
	for k0 := 0; k0 < p.Lk; k0 += w.tk {
		nk := min(w.tk, p.Lk-k0)
		s := w.s[:nq*nk]
		logits(p, b, h, q0, nq, k0, nk, s, w.mb, w.pk)
		for i := 0; i < nq; i++ {
			row := s[i*nk : (i+1)*nk]
			mOld := m[i]
			mNew := rowMax(row, mOld)
			sum := expShiftSum(row, mNew)
			if mOld != mNew && k0 > 0 {
				// Rescale the running sum and numerator to the new maximum.
				corr := num.FastExp(mOld - mNew)
				l[i] *= corr
				a := acc[i*cv : (i+1)*cv]
				for c := range a {
					a[c] *= corr
				}
			}
			m[i] = mNew
			l[i] += sum
		}
		voff := b*p.VL.Batch + k0*p.VL.Row + vh*cv
		w.pk.nn(true, nq, cv, nk, 1, s, nk, p.V[voff:], ld(p.VL.Row, cv), acc, cv)
	}
	for i := 0; i < nq; i++ {
		inv := 1 / l[i]
		off := b*oL.Batch + (q0+i)*oL.Row + h*cv
		dst := o[off : off+cv]
		for c, a := range acc[i*cv : (i+1)*cv] {
			dst[c] = a * inv
		}
		if lse != nil {
			lse[(b*p.Heads+h)*p.Lq+q0+i] = m[i] + T(math.Log(float64(l[i])))
		}
	}
}

// logits fills s (nq×nk, row stride nk) with the logits of queries
// q0..q0+nq-1 against keys k0..k0+nk-1 of batch element b, head h:
// Scale·q·k, then + MaskBias·(mask − 1), then + PairBias, in AF2's order.
// mb is scratch of at least nk elements.
func logits[T num.Float](p *Problem[T], b, h, q0, nq, k0, nk int, s, mb []T, pk *packer[T]) {
	c := p.C
	kh := h
	if p.kvHeads() == 1 {
		kh = 0
	}
	qoff := b*p.QL.Batch + q0*p.QL.Row + h*c
	koff := b*p.KL.Batch + k0*p.KL.Row + kh*c
	if pk.native {
		// q·kᵀ against the keys of the whole (batch, head), transposed once.
		kt := pk.wholeT(0, [2]int{b, kh}, p.K, b*p.KL.Batch+kh*c, ld(p.KL.Row, c), p.Lk, c)
		pk.nn(false, nq, nk, c, p.Scale, p.Q[qoff:], ld(p.QL.Row, c), kt[k0:], p.Lk, s, nk)
	} else {
		pk.nt(false, nq, nk, c, p.Scale, p.Q[qoff:], ld(p.QL.Row, c), p.K[koff:], ld(p.KL.Row, c), s, nk)
	}
	if p.KeyMask != nil {
		mb = mb[:nk]
		for j, x := range p.KeyMask[b*p.Lk+k0:][:nk] {
			mb[j] = p.MaskBias * (x - 1)
		}
	}
	for i := 0; i < nq; i++ {
		row := s[i*nk : (i+1)*nk]
		switch {
		case p.KeyMask != nil && p.PairBias != nil:
			pb := p.PairBias[(h*p.Lq+q0+i)*p.Lk+k0:][:nk]
			for j, x := range mb {
				row[j] = (row[j] + x) + pb[j]
			}
		case p.KeyMask != nil:
			for j, x := range mb {
				row[j] += x
			}
		case p.PairBias != nil:
			for j, x := range p.PairBias[(h*p.Lq+q0+i)*p.Lk+k0:][:nk] {
				row[j] += x
			}
		}
	}
}

// rowMax returns the largest of m and the elements of row. The values are
// finite (inputs are checked), so a plain comparison does; the max builtin's
// NaN and signed-zero handling costs as much as the exponentials here.
func rowMax[T num.Float](row []T, m T) T {
	if num.Is32[T]() && simd.Available {
		m = T(simd.Max(num.As32(row), float32(m)))
		row = row[len(row)&^7:]
	}
	for _, x := range row {
		if x > m {
			m = x
		}
	}
	return m
}
