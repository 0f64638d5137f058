//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/foldkit/foldkit/internal/num"
)

// MaxHeadWidth is the largest per-head width (C and Cv) the attention
// kernels support; AF2's attentions use 8 to 32.
const MaxHeadWidth = 64

// ErrHeadWidth is returned for an attention problem whose C or Cv exceeds
// MaxHeadWidth.
var ErrHeadWidth = errors.New("attention head width exceeds 64, the CUDA kernels' limit")

// Attention is one batched multi-head attention problem on the device, the
// GPU twin of attn.Problem with the same conventions:
//
//	logits[b,h,q,k] = Scale·(q·k) + MaskBias·(Mask[b,k] − 1) + Bias[h,q,k]
//	o[b,q,h,:]      = Σ_k softmax_k(logits[b,h,q,:])·v[b,k,h,:]
//
// Element (b, l, h, c) of Q is at b·QBatch + l·QRow + h·C + c, and likewise
// for K and V, whose head is h, or 0 when KVShared. Bias [H, Lq, Lk] and
// Mask [B, Lk] are optional (nil).
type Attention[T num.Float] struct {
	B, H, Lq, Lk, C, Cv int
	KVShared            bool

	Q, K, V         *Buffer[T]
	QBatch, QRow    int
	KBatch, KRow    int
	VBatch, VRow    int
	Bias, Mask      *Buffer[T]
	Scale, MaskBias float64
}

// attnCfg holds the tile sizes of the attention kernels for one (T, D); it
// mirrors Cfg in kernels/attention.cu, which traps on a mismatch.
type attnCfg struct{ bq, bk, bkk, bqq, ts int }

// attnConfig returns the padded head width D and the tile sizes for
// element size esize and head widths c, cv.
func attnConfig(esize, c, cv int) (int, attnCfg, error) {
	w := max(c, cv)
	var dd int
	switch {
	case w <= 16:
		dd = 16
	case w <= 32:
		dd = 32
	case w <= MaxHeadWidth:
		dd = 64
	default:
		return 0, attnCfg{}, fmt.Errorf("cuda: C=%d, Cv=%d: %w", c, cv, ErrHeadWidth)
	}
	if esize == 4 {
		return dd, attnCfg{bq: 128, bk: 32, bkk: 128, bqq: 32, ts: 32}, nil
	}
	if dd == 64 {
		return dd, attnCfg{bq: 64, bk: 16, bkk: 64, bqq: 16, ts: 16}, nil
	}
	return dd, attnCfg{bq: 64, bk: 32, bkk: 64, bqq: 32, ts: 32}, nil
}

// span is the number of elements a [batch, rows, width] tensor with batch
// stride sb and row stride sr addresses.
func span(batch, rows, width, sb, sr int) int {
	if batch == 0 || rows == 0 || width == 0 {
		return 0
	}
	return (batch-1)*sb + (rows-1)*sr + width
}

// check verifies that the buffers are on d and long enough.
func (a *Attention[T]) check(d *Device) error {
	if a.B < 0 || a.H < 1 || a.Lq < 0 || a.Lk < 1 || a.C < 1 || a.Cv < 1 {
		return fmt.Errorf("cuda: attention dims B=%d H=%d Lq=%d Lk=%d C=%d Cv=%d: %w", a.B, a.H, a.Lq, a.Lk, a.C, a.Cv, num.ErrShape)
	}
	kvh := a.H
	if a.KVShared {
		kvh = 1
	}
	for _, x := range []struct {
		what     string
		b        *Buffer[T]
		n        int
		optional bool
	}{
		{"Q", a.Q, span(a.B, a.Lq, a.H*a.C, a.QBatch, a.QRow), false},
		{"K", a.K, span(a.B, a.Lk, kvh*a.C, a.KBatch, a.KRow), false},
		{"V", a.V, span(a.B, a.Lk, kvh*a.Cv, a.VBatch, a.VRow), false},
		{"Bias", a.Bias, a.H * a.Lq * a.Lk, true},
		{"Mask", a.Mask, a.B * a.Lk, true},
	} {
		if err := need(d, x.what, x.b, x.n, x.optional); err != nil {
			return err
		}
	}
	return nil
}

func (a *Attention[T]) kvShared() int {
	if a.KVShared {
		return 1
	}
	return 0
}

// inArgs are the kernels' leading arguments (ATTN_IN_PARAMS).
func (a *Attention[T]) inArgs() []any {
	return []any{a.Q.ptr, a.QBatch, a.QRow, a.K.ptr, a.KBatch, a.KRow, a.V.ptr, a.VBatch, a.VRow,
		ptr(a.Bias), ptr(a.Mask), a.Scale, a.MaskBias}
}

// dimArgs are the kernels' trailing arguments (ATTN_DIMS).
func (a *Attention[T]) dimArgs() []any {
	return []any{a.B, a.H, a.Lq, a.Lk, a.C, a.Cv, a.kvShared()}
}

func cat(parts ...[]any) []any {
	var r []any
	for _, p := range parts {
		r = append(r, p...)
	}
	return r
}

// AttentionForward queues the attention of a into o ([B, Lq, H, Cv] with
// batch stride oBatch and row stride oRow, overwritten) and, when lse is
// not nil, the log-sum-exp of every logit row into lse [B, H, Lq]
// (attn.Forward). No Lq×Lk matrix is stored: the kernel streams key tiles
// through shared memory with an online softmax.
func AttentionForward[T num.Float](d *Device, a *Attention[T], o *Buffer[T], oBatch, oRow int, lse *Buffer[T]) error {
	if err := a.check(d); err != nil {
		return err
	}
	if err := need(d, "o", o, span(a.B, a.Lq, a.H*a.Cv, oBatch, oRow), false); err != nil {
		return err
	}
	if err := need(d, "lse", lse, a.B*a.H*a.Lq, true); err != nil {
		return err
	}
	dd, cfg, err := attnConfig(elemSize[T](), a.C, a.Cv)
	if err != nil {
		return err
	}
	if a.B == 0 || a.Lq == 0 {
		return nil
	}
	k := fmt.Sprintf("fk_attn_fwd%s_d%d", suffix[T](), dd)
	grid := [3]int{a.B * a.H * ((a.Lq + cfg.bq - 1) / cfg.bq), 1, 1}
	return d.do(k, func() error {
		return d.launch(k, grid, [3]int{cfg.bq, 1, 1}, 0, cat(a.inArgs(), []any{o.ptr, oBatch, oRow, ptr(lse)}, a.dimArgs())...)
	}, false)
}

// AttentionBackward queues the gradients of AttentionForward given o and
// lse from it and do = ∂L/∂o (layout of o), accumulating (+=) into dq, dk,
// dv (layouts of Q, K, V) and dBias [H, Lq, Lk] (summed over the batch);
// each may be nil (attn.Backward). Rows whose |lse| exceeds 512 (all keys
// masked) have their softmax recomputed, as attn.Backward does. Scratch:
// 3·B·H·Lq elements for the duration of the call.
func AttentionBackward[T num.Float](d *Device, a *Attention[T], o *Buffer[T], oBatch, oRow int, lse, do, dq, dk, dv, dBias *Buffer[T]) error {
	if err := a.check(d); err != nil {
		return err
	}
	kvh := a.H
	if a.KVShared {
		kvh = 1
	}
	on := span(a.B, a.Lq, a.H*a.Cv, oBatch, oRow)
	for _, x := range []struct {
		what     string
		b        *Buffer[T]
		n        int
		optional bool
	}{
		{"o", o, on, false}, {"do", do, on, false}, {"lse", lse, a.B * a.H * a.Lq, false},
		{"dq", dq, span(a.B, a.Lq, a.H*a.C, a.QBatch, a.QRow), true},
		{"dk", dk, span(a.B, a.Lk, kvh*a.C, a.KBatch, a.KRow), true},
		{"dv", dv, span(a.B, a.Lk, kvh*a.Cv, a.VBatch, a.VRow), true},
		{"dBias", dBias, a.H * a.Lq * a.Lk, true},
	} {
		if err := need(d, x.what, x.b, x.n, x.optional); err != nil {
			return err
		}
	}
	dd, cfg, err := attnConfig(elemSize[T](), a.C, a.Cv)
	if err != nil {
		return err
	}
	if a.B == 0 || a.Lq == 0 || (dq == nil && dk == nil && dv == nil && dBias == nil) {
		return nil
	}
	sfx := suffix[T]()
	rows := a.B * a.H * a.Lq
	const renorm = 512.0 // attn's renormAbove
	return d.do("attention backward", func() error {
		sc, class, err := scratch[T](d, 3*rows)
		if err != nil {
			return err
		}
		defer d.alloc.put(sc, class)
		es := uintptr(elemSize[T]())
		delta, shift, rs := sc, sc+uintptr(rows)*es, sc+2*uintptr(rows)*es
		in, dims := a.inArgs(), a.dimArgs()
		grid, block := elementwiseGrid(rows)
		if err := d.launch("fk_attn_bwd_prep"+sfx, grid, block, 0,
			cat(in, []any{o.ptr, do.ptr, oBatch, oRow, lse.ptr, delta, shift, rs, renorm}, dims)...); err != nil {
			return err
		}
		stats := []any{do.ptr, oBatch, oRow, delta, shift, rs}
		if dq != nil {
			grid := [3]int{a.B * a.H * ((a.Lq + cfg.bq - 1) / cfg.bq), 1, 1}
			if err := d.launch(fmt.Sprintf("fk_attn_bwd_dq%s_d%d", sfx, dd), grid, [3]int{cfg.bq, 1, 1}, 0,
				cat(in, stats, []any{dq.ptr}, dims)...); err != nil {
				return err
			}
		}
		if dk != nil || dv != nil {
			grid := [3]int{a.B * kvh * ((a.Lk + cfg.bkk - 1) / cfg.bkk), 1, 1}
			if err := d.launch(fmt.Sprintf("fk_attn_bwd_dkdv%s_d%d", sfx, dd), grid, [3]int{cfg.bkk, 1, 1}, 0,
				cat(in, stats, []any{ptr(dk), ptr(dv)}, dims)...); err != nil {
				return err
			}
		}
		if dBias != nil {
			grid := [3]int{(a.Lk + cfg.ts - 1) / cfg.ts, (a.Lq + cfg.ts - 1) / cfg.ts, a.H}
			if err := d.launch(fmt.Sprintf("fk_attn_bwd_dbias%s_d%d", sfx, dd), grid, [3]int{cfg.ts, 8, 1}, 0,
				cat(in, stats, []any{dBias.ptr}, dims)...); err != nil {
				return err
			}
		}
		return nil
	}, false)
}

// Strided names a [Batch, Rows, Width] view of a buffer with batch stride
// SB and row stride SR, for CountNonFinite.
type Strided[T num.Float] struct {
	Buf                    *Buffer[T]
	Batch, Rows, Width     int
	BatchStride, RowStride int
}

// CountNonFinite returns, for each view, the number of its elements that
// are NaN or infinite. It waits for the queued work (one small download).
func CountNonFinite[T num.Float](d *Device, views []Strided[T]) ([]uint64, error) {
	for i, v := range views {
		if err := need(d, fmt.Sprintf("view %d", i), v.Buf, span(v.Batch, v.Rows, v.Width, v.BatchStride, v.RowStride), false); err != nil {
			return nil, err
		}
	}
	counts := make([]uint64, len(views))
	if len(views) == 0 {
		return counts, nil
	}
	k := "fk_count_nonfinite" + suffix[T]()
	err := d.do(k, func() error {
		c, class, err := d.alloc.get(d, int64(8*len(views)))
		if err != nil {
			return err
		}
		defer d.alloc.put(c, class)
		if err := d.memsetD32(c, int64(2*len(views))); err != nil {
			return err
		}
		for i, v := range views {
			n := v.Batch * v.Rows * v.Width
			if n == 0 {
				continue
			}
			grid, block := elementwiseGrid(n)
			if err := d.launch(k, grid, block, 0, v.Buf.ptr, v.Batch, v.Rows, v.Width, v.BatchStride, v.RowStride, c, i); err != nil {
				return err
			}
		}
		return d.download(unsafe.Pointer(&counts[0]), c, int64(8*len(views)))
	}, true)
	return counts, err
}
