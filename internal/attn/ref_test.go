package attn

import (
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/num"
)

// layoutKind names the tensor layouts the tests exercise.
type layoutKind int

const (
	contiguous layoutKind = iota // [Batch, L, width]
	padded                       // rows and batch elements with gaps between them
	column                       // [L, Batch, width]: MSA column attention
)

func (k layoutKind) String() string {
	return [...]string{"contiguous", "padded", "column"}[k]
}

// layoutFor returns a layout of kind k for a [batch, rows, width] tensor and
// the length of the slice that holds it.
func layoutFor(k layoutKind, batch, rows, width int) (Layout, int) {
	var l Layout
	switch k {
	case contiguous:
		l = Layout{Batch: rows * width, Row: width}
	case padded:
		l = Layout{Row: width + 3}
		l.Batch = rows*l.Row + 5
	case column:
		l = Layout{Batch: width, Row: batch * width}
	}
	return l, span(l, batch, rows, width) + 2
}

// newTensor returns a slice for a [batch, rows, width] tensor in layout l,
// n elements long, with addressed elements drawn by gen and the others NaN,
// so that a kernel reading outside the layout fails the test.
func newTensor(rng *rand.Rand, l Layout, n, batch, rows, width int, gen func(*rand.Rand) float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = math.NaN()
	}
	for b := 0; b < batch; b++ {
		for r := 0; r < rows; r++ {
			for c := 0; c < width; c++ {
				x[b*l.Batch+r*l.Row+c] = gen(rng)
			}
		}
	}
	return x
}

// normal draws float32-exact normal numbers of standard deviation sd.
func normal(sd float64) func(*rand.Rand) float64 {
	return func(rng *rand.Rand) float64 { return float64(float32(sd * rng.NormFloat64())) }
}

// zeroLike returns a slice like x with addressed elements 0 and the others NaN.
func zeroLike(x []float64) []float64 {
	z := make([]float64, len(x))
	for i, v := range x {
		if math.IsNaN(v) {
			z[i] = v
		}
	}
	return z
}

// to32 converts a float64 slice to float32 (nil stays nil).
func to32(x []float64) []float32 {
	if x == nil {
		return nil
	}
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// to64 converts a slice of T to float64.
func to64[T num.Float](x []T) []float64 {
	if x == nil {
		return nil
	}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// problem32 returns the float32 twin of a float64 problem.
func problem32(p *Problem[float64]) *Problem[float32] {
	return &Problem[float32]{
		Dims: p.Dims,
		Q:    to32(p.Q), QL: p.QL,
		K: to32(p.K), KL: p.KL,
		V: to32(p.V), VL: p.VL,
		Scale:    float32(p.Scale),
		PairBias: to32(p.PairBias),
		KeyMask:  to32(p.KeyMask),
		MaskBias: float32(p.MaskBias),
		TileQ:    p.TileQ, TileK: p.TileK,
	}
}

// reference is the naive full-softmax attention in float64: the whole
// [Lq, Lk] logit matrix of every (batch, head), softmax with the row maximum
// subtracted, and the backward pass by the chain rule on full matrices.
type reference struct {
	p   *Problem[float64]
	o   []float64   // [Batch, Lq, Heads, Cv] contiguous
	lse []float64   // [Batch, Heads, Lq]
	P   [][]float64 // [b*Heads+h][q*Lk+k]
}

// newReference computes the forward pass. With round32 the logits are rounded
// to float32 after each of the two bias additions, as a float32 kernel does,
// which makes rows whose keys are all masked exactly uniform.
func newReference(p *Problem[float64], round32 bool) *reference {
	d := p.Dims
	kvh := d.kvHeads()
	r := &reference{p: p, o: make([]float64, d.Batch*d.Lq*d.Heads*d.Cv), lse: make([]float64, d.Batch*d.Heads*d.Lq)}
	rnd := func(x float64) float64 {
		if round32 {
			return float64(float32(x))
		}
		return x
	}
	for b := 0; b < d.Batch; b++ {
		for h := 0; h < d.Heads; h++ {
			kh := h
			if kvh == 1 {
				kh = 0
			}
			P := make([]float64, d.Lq*d.Lk)
			for q := 0; q < d.Lq; q++ {
				row := P[q*d.Lk : (q+1)*d.Lk]
				for k := range row {
					var s float64
					for c := 0; c < d.C; c++ {
						s += p.Q[b*p.QL.Batch+q*p.QL.Row+h*d.C+c] * p.K[b*p.KL.Batch+k*p.KL.Row+kh*d.C+c]
					}
					s = rnd(s * p.Scale)
					if p.KeyMask != nil {
						s = rnd(s + p.MaskBias*(p.KeyMask[b*d.Lk+k]-1))
					}
					if p.PairBias != nil {
						s = rnd(s + p.PairBias[(h*d.Lq+q)*d.Lk+k])
					}
					row[k] = s
				}
				mx := math.Inf(-1)
				for _, s := range row {
					mx = math.Max(mx, s)
				}
				var sum float64
				for k, s := range row {
					row[k] = math.Exp(s - mx)
					sum += row[k]
				}
				for k := range row {
					row[k] /= sum
				}
				r.lse[(b*d.Heads+h)*d.Lq+q] = mx + math.Log(sum)
				for c := 0; c < d.Cv; c++ {
					var o float64
					for k, a := range row {
						o += a * p.V[b*p.VL.Batch+k*p.VL.Row+kh*d.Cv+c]
					}
					r.o[((b*d.Lq+q)*d.Heads+h)*d.Cv+c] = o
				}
			}
			r.P = append(r.P, P)
		}
	}
	return r
}

// backward returns the gradients for upstream gradient do ([Batch, Lq,
// Heads, Cv] contiguous): dq, dk, dv in the layouts of the problem (with NaN
// in unaddressed elements) and dPairBias [Heads, Lq, Lk].
func (r *reference) backward(do []float64) (dq, dk, dv, dpb []float64) {
	p := r.p
	d := p.Dims
	kvh := d.kvHeads()
	dq, dk, dv = zeroLike(p.Q), zeroLike(p.K), zeroLike(p.V)
	dpb = make([]float64, d.Heads*d.Lq*d.Lk)
	for b := 0; b < d.Batch; b++ {
		for h := 0; h < d.Heads; h++ {
			kh := h
			if kvh == 1 {
				kh = 0
			}
			P := r.P[b*d.Heads+h]
			for q := 0; q < d.Lq; q++ {
				dO := do[((b*d.Lq+q)*d.Heads+h)*d.Cv:][:d.Cv]
				var D float64
				for c, g := range dO {
					D += g * r.o[((b*d.Lq+q)*d.Heads+h)*d.Cv+c]
				}
				for k := 0; k < d.Lk; k++ {
					a := P[q*d.Lk+k]
					var dP float64
					for c, g := range dO {
						vi := b*p.VL.Batch + k*p.VL.Row + kh*d.Cv + c
						dv[vi] += a * g
						dP += g * p.V[vi]
					}
					dS := a * (dP - D)
					dpb[(h*d.Lq+q)*d.Lk+k] += dS
					for c := 0; c < d.C; c++ {
						qi := b*p.QL.Batch + q*p.QL.Row + h*d.C + c
						ki := b*p.KL.Batch + k*p.KL.Row + kh*d.C + c
						dq[qi] += p.Scale * dS * p.K[ki]
						dk[ki] += p.Scale * dS * p.Q[qi]
					}
				}
			}
		}
	}
	return dq, dk, dv, dpb
}

// gather returns the elements of a [batch, rows, width] tensor in layout l
// as a contiguous slice.
func gather[T num.Float](x []T, l Layout, batch, rows, width int) []float64 {
	y := make([]float64, 0, batch*rows*width)
	for b := 0; b < batch; b++ {
		for r := 0; r < rows; r++ {
			for c := 0; c < width; c++ {
				y = append(y, float64(x[b*l.Batch+r*l.Row+c]))
			}
		}
	}
	return y
}

// maxErr returns max |got − want| and max |got − want|/(1 + |want|).
func maxErr(got, want []float64) (abs, rel float64) {
	for i := range got {
		e := math.Abs(got[i] - want[i])
		if math.IsNaN(e) {
			return math.Inf(1), math.Inf(1)
		}
		abs = math.Max(abs, e)
		rel = math.Max(rel, e/(1+math.Abs(want[i])))
	}
	return abs, rel
}
