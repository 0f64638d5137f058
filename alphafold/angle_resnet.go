package alphafold

import (
	"fmt"
	"math/rand/v2"

	"github.com/foldkit/foldkit/internal/nn"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/residue"
)

// AngleEps is the ε of AF2's l2_normalize that turns the unnormalised
// torsion-angle pairs into unit (sin, cos) pairs: x/√max(|x|², ε). It bounds
// the division for a pair that is (nearly) zero.
const AngleEps = 1e-12

// AngleResnetName is the haiku name of the torsion-angle ResNet of the
// structure module (AF2's MultiRigidSidechain), under
// structure_module/fold_iteration/.
const AngleResnetName = "rigid_sidechain"

// NumAngleOutputs is the width of the angle ResNet's output layer: a
// (sin, cos) pair for each of the 7 torsions (pre-ω, φ, ψ, χ1..χ4).
const NumAngleOutputs = 2 * residue.NumTorsions

// AngleResnetParams holds the torsion-angle ResNet of the structure module
// (supplement Algorithm 20 lines 11–14; AF2's MultiRigidSidechain up to its
// angles). Field names follow AF2's haiku names under rigid_sidechain/; CS is
// the width of the single representation and C the ResNet width (AF2: 128).
type AngleResnetParams[T num.Float] struct {
	CS, C int
	// InputProjection (input_projection) is [c_s, C], applied to
	// relu(s) of the current iteration.
	InputProjection nn.LinearParams[T]
	// InputProjection1 (input_projection_1) is [c_s, C], applied to
	// relu(s_initial), the single representation after the structure
	// module's input layer norm.
	InputProjection1 nn.LinearParams[T]
	// Resblock1 and Resblock2 hold one [C, C] layer each per residual block:
	// block 0 is resblock1 and resblock2, block b > 0 resblock1_b and
	// resblock2_b (haiku's numbering of reused names).
	Resblock1, Resblock2 []nn.LinearParams[T]
	// UnnormalizedAngles (unnormalized_angles) is [C, 14]; its output
	// reshapes to [7, 2], the (sin, cos) pair of each torsion, unnormalised.
	UnnormalizedAngles nn.LinearParams[T]
}

// smSuffix returns haiku's suffix for the k-th use of a name: "" for the
// first, "_k" after.
func smSuffix(k int) string {
	if k == 0 {
		return ""
	}
	return fmt.Sprintf("_%d", k)
}

// tensors lists the ResNet's arrays with their names under prefix (which
// ends in "rigid_sidechain/"), setting every layer's sizes from cs, c and
// blocks.
func (p *AngleResnetParams[T]) tensors(prefix string, cs, c, blocks int) []smTensor[T] {
	p.CS, p.C = cs, c
	if len(p.Resblock1) != blocks {
		p.Resblock1 = make([]nn.LinearParams[T], blocks)
		p.Resblock2 = make([]nn.LinearParams[T], blocks)
	}
	ts := smLinearTensors(&p.InputProjection, prefix+"input_projection", cs, c)
	ts = append(ts, smLinearTensors(&p.InputProjection1, prefix+"input_projection_1", cs, c)...)
	for b := range blocks {
		ts = append(ts, smLinearTensors(&p.Resblock1[b], prefix+"resblock1"+smSuffix(b), c, c)...)
		ts = append(ts, smLinearTensors(&p.Resblock2[b], prefix+"resblock2"+smSuffix(b), c, c)...)
	}
	return append(ts, smLinearTensors(&p.UnnormalizedAngles, prefix+"unnormalized_angles", c, NumAngleOutputs)...)
}

// newAngleResnet initialises the ResNet as AF2 does with zero_init: the
// projections and the output layer with the "linear" initialiser, each
// resblock1 with "relu" and each resblock2 with zeros (so that a fresh
// block is the identity).
func newAngleResnet[T num.Float](cs, c, blocks int, rng *rand.Rand) AngleResnetParams[T] {
	p := AngleResnetParams[T]{CS: cs, C: c}
	p.InputProjection = nn.NewLinear[T](rng, cs, c, nn.InitLinear, true)
	p.InputProjection1 = nn.NewLinear[T](rng, cs, c, nn.InitLinear, true)
	for range blocks {
		p.Resblock1 = append(p.Resblock1, nn.NewLinear[T](rng, c, c, nn.InitRelu, true))
		p.Resblock2 = append(p.Resblock2, nn.NewLinear[T](rng, c, c, nn.InitZeros, true))
	}
	p.UnnormalizedAngles = nn.NewLinear[T](rng, c, NumAngleOutputs, nn.InitLinear, true)
	return p
}

// AngleResnetCache holds what AngleResnetParams.Backward needs from one
// Forward call. A zero cache is ready to use; its buffers are reused. It
// refers to (does not copy) the s and sInit passed to Forward, which must not
// change until Backward has run.
type AngleResnetCache[T num.Float] struct {
	n        int
	s, sInit []T
	rs, ri   []T   // relu(s), relu(sInit) [N, c_s]
	a        [][]T // residual stream entering block b, and after the last [N, C]
	t1, t2   [][]T // relu(a_b) and relu(resblock1(relu(a_b))) [N, C]
	f        []T   // relu(a_last) [N, C]
	unnorm   []T   // [N, 14]
	ok       bool
}

// smGrow returns x resized to n elements, reusing its storage when it can.
func smGrow[T num.Float](x []T, n int) []T {
	if cap(x) >= n {
		return x[:n]
	}
	return make([]T, n)
}

// smGrowAll resizes each of xs to n elements, making k of them.
func smGrowAll[T num.Float](xs [][]T, k, n int) [][]T {
	if len(xs) != k {
		xs = make([][]T, k)
	}
	for i := range xs {
		xs[i] = smGrow(xs[i], n)
	}
	return xs
}

// check reports sizes that are not positive or a layer whose shape or
// array lengths do not match the sizes.
func (p *AngleResnetParams[T]) check() error {
	if p.CS < 1 || p.C < 1 || len(p.Resblock1) != len(p.Resblock2) {
		return fmt.Errorf("alphafold: angle resnet sizes c_s = %d, C = %d, %d and %d resblock layers: %w",
			p.CS, p.C, len(p.Resblock1), len(p.Resblock2), ErrConfig)
	}
	for _, l := range smResnetLayers(p) {
		if err := smCheckLinear("angle resnet", l.p, l.in, l.out); err != nil {
			return err
		}
	}
	return nil
}

// smLayer is a linear layer with the sizes its position implies.
type smLayer[T num.Float] struct {
	p       *nn.LinearParams[T]
	in, out int
}

// smResnetLayers lists the ResNet's layers with their sizes.
func smResnetLayers[T num.Float](p *AngleResnetParams[T]) []smLayer[T] {
	ls := []smLayer[T]{{&p.InputProjection, p.CS, p.C}, {&p.InputProjection1, p.CS, p.C}}
	for b := range p.Resblock1 {
		ls = append(ls, smLayer[T]{&p.Resblock1[b], p.C, p.C}, smLayer[T]{&p.Resblock2[b], p.C, p.C})
	}
	return append(ls, smLayer[T]{&p.UnnormalizedAngles, p.C, NumAngleOutputs})
}

// Forward predicts the torsion angles of n residues from the single
// representation s [N, c_s] of the current iteration and sInit [N, c_s],
// the structure module's normalised input (Algorithm 20 lines 11–14):
//
//	a = input_projection(relu(s)) + input_projection_1(relu(s_initial))
//	a += resblock2(relu(resblock1(relu(a))))       (once per block)
//	x = unnormalized_angles(relu(a))                [N, 7, 2]
//	angles = x/√max(|x|², AngleEps)                 (each (sin, cos) pair)
//
// It writes unnorm and angles, each [N, 7, 2] (torsions pre-ω, φ, ψ,
// χ1..χ4, each as (sin, cos)); AF2 keeps the unnormalised pairs for the
// angle-norm loss. If cache is not nil it is filled for Backward. The error
// wraps num.ErrShape for a length that does not match n and the sizes,
// num.ErrNaN for a non-finite input, and ErrConfig for invalid parameters.
func (p *AngleResnetParams[T]) Forward(s, sInit []T, n int, unnorm, angles []T, cache *AngleResnetCache[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("alphafold: angle resnet: n = %d residues, want ≥ 1: %w", n, num.ErrShape)
	}
	shp := fmt.Sprintf("[N c_s] = [%d %d]", n, p.CS)
	for _, x := range []struct {
		what string
		v    []T
	}{{"s", s}, {"s_initial", sInit}} {
		if err := smCheckInput("angle resnet", x.what, x.v, n*p.CS, shp); err != nil {
			return err
		}
	}
	ashp := fmt.Sprintf("[N 7 2] = [%d 7 2]", n)
	if err := num.CheckLen("alphafold: angle resnet unnormalised angles", unnorm, n*NumAngleOutputs, ashp); err != nil {
		return err
	}
	if err := num.CheckLen("alphafold: angle resnet angles", angles, n*NumAngleOutputs, ashp); err != nil {
		return err
	}
	c := cache
	if c == nil {
		c = new(AngleResnetCache[T])
	}
	p.forward(s, sInit, n, unnorm, angles, c)
	return nil
}

// forward is Forward on validated arguments.
func (p *AngleResnetParams[T]) forward(s, sInit []T, n int, unnorm, angles []T, c *AngleResnetCache[T]) {
	blocks := len(p.Resblock1)
	c.n, c.s, c.sInit = n, s, sInit
	c.rs = smGrow(c.rs, n*p.CS)
	c.ri = smGrow(c.ri, n*p.CS)
	c.a = smGrowAll(c.a, blocks+1, n*p.C)
	c.t1 = smGrowAll(c.t1, blocks, n*p.C)
	c.t2 = smGrowAll(c.t2, blocks, n*p.C)
	c.f = smGrow(c.f, n*p.C)
	c.unnorm = smGrow(c.unnorm, n*NumAngleOutputs)

	nn.ReLU(c.rs, s)
	nn.ReLU(c.ri, sInit)
	p.InputProjection.Forward(c.a[0], c.rs, n)
	p.InputProjection1.Forward(c.f, c.ri, n) // c.f as scratch
	smAdd(c.a[0], c.f)
	for b := range blocks {
		nn.ReLU(c.t1[b], c.a[b])
		p.Resblock1[b].Forward(c.t2[b], c.t1[b], n)
		nn.ReLU(c.t2[b], c.t2[b])
		p.Resblock2[b].Forward(c.a[b+1], c.t2[b], n)
		smAdd(c.a[b+1], c.a[b])
	}
	nn.ReLU(c.f, c.a[blocks])
	p.UnnormalizedAngles.Forward(c.unnorm, c.f, n)
	copy(unnorm, c.unnorm)
	for k := 0; k < n*residue.NumTorsions; k++ {
		x, y := c.unnorm[2*k], c.unnorm[2*k+1]
		d := num.Sqrt(max(x*x+y*y, T(AngleEps)))
		angles[2*k], angles[2*k+1] = x/d, y/d
	}
	c.ok = true
}

// Backward accumulates the gradients of Forward into ds and dsInit [N, c_s]
// (either may be nil) and, when g is not nil, into every parameter of g
// (start from ZerosLike), given dUnnorm and dAngles [N, 7, 2], the gradients
// with respect to the unnormalised and the normalised angles (either may be
// nil). Where |x|² < AngleEps the normalisation is x/√AngleEps, a linear map,
// and is differentiated as such. The error wraps ErrConfig if cache holds no
// forward pass of these parameters, num.ErrShape for a wrong length and
// num.ErrNaN for a non-finite gradient.
func (p *AngleResnetParams[T]) Backward(cache *AngleResnetCache[T], dUnnorm, dAngles, ds, dsInit []T, g *AngleResnetParams[T]) error {
	if err := p.check(); err != nil {
		return err
	}
	c := cache
	if c == nil || !c.ok || len(c.a) != len(p.Resblock1)+1 || len(c.rs) != c.n*p.CS || len(c.f) != c.n*p.C {
		return fmt.Errorf("alphafold: angle resnet Backward without a matching Forward pass in the cache: %w", ErrConfig)
	}
	n := c.n
	ashp := fmt.Sprintf("[N 7 2] = [%d 7 2]", n)
	for _, x := range []struct {
		what string
		v    []T
	}{{"dUnnorm", dUnnorm}, {"dAngles", dAngles}} {
		if x.v != nil {
			if err := smCheckInput("angle resnet", x.what, x.v, n*NumAngleOutputs, ashp); err != nil {
				return err
			}
		}
	}
	shp := fmt.Sprintf("[N c_s] = [%d %d]", n, p.CS)
	if ds != nil {
		if err := num.CheckLen("alphafold: angle resnet ds", ds, n*p.CS, shp); err != nil {
			return err
		}
	}
	if dsInit != nil {
		if err := num.CheckLen("alphafold: angle resnet dsInit", dsInit, n*p.CS, shp); err != nil {
			return err
		}
	}
	if g != nil {
		if err := g.check(); err != nil {
			return err
		}
		if g.CS != p.CS || g.C != p.C || len(g.Resblock1) != len(p.Resblock1) {
			return fmt.Errorf("alphafold: angle resnet gradient has other sizes than the parameters: %w", ErrConfig)
		}
	}
	p.backward(c, dUnnorm, dAngles, ds, dsInit, g)
	return nil
}

// backward is Backward on validated arguments.
func (p *AngleResnetParams[T]) backward(c *AngleResnetCache[T], dUnnorm, dAngles, ds, dsInit []T, g *AngleResnetParams[T]) {
	n := c.n
	blocks := len(p.Resblock1)
	dx := make([]T, n*NumAngleOutputs)
	if dUnnorm != nil {
		copy(dx, dUnnorm)
	}
	if dAngles != nil {
		eps := T(AngleEps)
		for k := 0; k < n*residue.NumTorsions; k++ {
			x, y := c.unnorm[2*k], c.unnorm[2*k+1]
			gx, gy := dAngles[2*k], dAngles[2*k+1]
			sq := x*x + y*y
			if sq < eps {
				d := num.Sqrt(eps)
				dx[2*k] += gx / d
				dx[2*k+1] += gy / d
				continue
			}
			// d(x/|x|) = (dy − u·(u·dy))/|x| with u = x/|x|.
			d := num.Sqrt(sq)
			ux, uy := x/d, y/d
			dot := ux*gx + uy*gy
			dx[2*k] += (gx - ux*dot) / d
			dx[2*k+1] += (gy - uy*dot) / d
		}
	}
	var gOut, gIn, gIn1 *nn.LinearParams[T]
	if g != nil {
		gOut, gIn, gIn1 = &g.UnnormalizedAngles, &g.InputProjection, &g.InputProjection1
	}
	df := make([]T, n*p.C)
	p.UnnormalizedAngles.Backward(df, gOut, c.f, dx, n)
	da := make([]T, n*p.C)
	nn.ReLUBackward(da, c.a[blocks], df)
	dt := make([]T, n*p.C)
	dh := make([]T, n*p.C)
	for b := blocks - 1; b >= 0; b-- {
		var g1, g2 *nn.LinearParams[T]
		if g != nil {
			g1, g2 = &g.Resblock1[b], &g.Resblock2[b]
		}
		// a_{b+1} = a_b + resblock2(t2); t2 = relu(resblock1(t1)); t1 = relu(a_b).
		clear(dt)
		p.Resblock2[b].Backward(dt, g2, c.t2[b], da, n)
		clear(dh)
		nn.ReLUBackward(dh, c.t2[b], dt)
		clear(dt)
		p.Resblock1[b].Backward(dt, g1, c.t1[b], dh, n)
		nn.ReLUBackward(da, c.a[b], dt) // da now holds ∂L/∂a_b (residual + branch)
	}
	drs := make([]T, n*p.CS)
	if ds != nil {
		p.InputProjection.Backward(drs, gIn, c.rs, da, n)
		nn.ReLUBackward(ds, c.s, drs)
	} else {
		p.InputProjection.Backward(nil, gIn, c.rs, da, n)
	}
	if dsInit != nil {
		clear(drs)
		p.InputProjection1.Backward(drs, gIn1, c.ri, da, n)
		nn.ReLUBackward(dsInit, c.sInit, drs)
	} else {
		p.InputProjection1.Backward(nil, gIn1, c.ri, da, n)
	}
}

// smAdd adds x to dst elementwise.
func smAdd[T num.Float](dst, x []T) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += v
	}
}
