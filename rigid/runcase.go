package rigid

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/foldkit/foldkit/internal/casekit"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

// RunCase runs every sub-operation of a rigid-kind reference case (the
// layout of refcases/rigid.npz) in dtype "float32" or "float64" and returns
// a set with the outputs under out/<op>/<name>. With grad it also stores
// grad/in/<op>/<name>: the gradients of L = Σ out·cot over the outputs that
// have a cotangent in/<op>/cot_<name> (an output without one contributes
// nothing; an op without any, such as rot_to_quat, gets no gradients).
//
// The operations, keyed in/<op>/...: quat_to_rot, rot_to_quat,
// quat_multiply, compose, invert, apply, from_3_points,
// rigid_from_3_points_alg21, compose_q_update_vec, torsion_angles_to_frames.
// An unknown op, a missing or mis-shaped input is an error; cotangents are
// read only when grad is set. from_3_points keeps AF2's value for
// degenerate points (ErrDegenerate is not an error here).
func RunCase(cs *params.Set, dtype string, grad bool) (*params.Set, error) {
	if dtype == "" {
		dtype = "float64"
	}
	run, err := casekit.ByDType(casekit.New(cs, "rigid: run case", nil), dtype, runCase[float32], runCase[float64])
	if err != nil {
		return nil, err
	}
	return run(cs, grad)
}

// knownOp reports whether op is an operation of a rigid case.
func knownOp(op string) bool {
	switch op {
	case "quat_to_rot", "rot_to_quat", "quat_multiply", "compose", "invert",
		"apply", "from_3_points", "rigid_from_3_points_alg21",
		"compose_q_update_vec", "torsion_angles_to_frames":
		return true
	}
	return false
}

func runCase[T num.Float](cs *params.Set, grad bool) (*params.Set, error) {
	ops := map[string]bool{}
	for _, k := range cs.Keys() {
		rest, ok := strings.CutPrefix(k, "in/")
		if !ok {
			continue
		}
		op, _, ok := strings.Cut(rest, "/")
		if !ok {
			return nil, fmt.Errorf("rigid: run case: key %q is not in/<op>/<name>", k)
		}
		if !knownOp(op) {
			return nil, fmt.Errorf("rigid: run case: unknown op %q (key %q)", op, k)
		}
		ops[op] = true
	}
	if len(ops) == 0 {
		return nil, errors.New("rigid: run case: no in/<op>/... keys")
	}
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	sort.Strings(names)
	out := params.New()
	for _, op := range names {
		c := &caseOp[T]{in: cs.Sub("in/" + op + "/"), out: out, op: op, grad: grad}
		if err := c.run(); err != nil {
			return nil, fmt.Errorf("rigid: run case %s: %w", op, err)
		}
	}
	return out, nil
}

// caseOp reads the inputs of one op and writes its outputs; the first error
// sticks.
type caseOp[T num.Float] struct {
	in, out *params.Set
	op      string
	grad    bool
	b       int // batch size
	err     error
}

func (c *caseOp[T]) get(name string, shape ...int) []T {
	if c.err != nil {
		return nil
	}
	v, err := params.Get[T](c.in, name, shape...)
	c.err = err
	return v
}

// batch reads the leading axis of name.
func (c *caseOp[T]) batch(name string) {
	if c.err != nil {
		return
	}
	s, err := c.in.Shape(name)
	if err != nil {
		c.err = err
		return
	}
	if len(s) == 0 {
		c.err = fmt.Errorf("%q is 0-d: %w", name, num.ErrShape)
		return
	}
	c.b = s[0]
}

// cot returns the cotangent of output name (zeros when the case has none)
// and whether it exists.
func (c *caseOp[T]) cot(name string, shape ...int) ([]T, bool) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if c.err != nil || !c.in.Has("cot_"+name) {
		return make([]T, n), false
	}
	v := c.get("cot_"+name, shape...)
	if v == nil {
		v = make([]T, n)
	}
	return v, true
}

func (c *caseOp[T]) put(prefix, name string, shape []int, data []T) {
	if c.err == nil {
		c.err = params.Put(c.out, prefix+c.op+"/"+name, shape, data)
	}
}

func (c *caseOp[T]) run() error {
	switch c.op {
	case "quat_to_rot":
		c.quatToRot()
	case "rot_to_quat":
		c.rotToQuat()
	case "quat_multiply":
		c.quatMultiply()
	case "compose":
		c.compose()
	case "invert":
		c.invert()
	case "apply":
		c.apply()
	case "from_3_points", "rigid_from_3_points_alg21":
		c.threePoints()
	case "compose_q_update_vec":
		c.qUpdate()
	case "torsion_angles_to_frames":
		c.torsion()
	}
	return c.err
}

func quatAt[T num.Float](x []T, i int) Quat[T] { return Quat[T]{x[4*i], x[4*i+1], x[4*i+2], x[4*i+3]} }

func vecAt[T num.Float](x []T, i int) [3]T { return [3]T{x[3*i], x[3*i+1], x[3*i+2]} }

func matAt[T num.Float](x []T, i int) [9]T { return [9]T(x[9*i : 9*i+9]) }

func (c *caseOp[T]) frames(rotName, transName string) []Rigid[T] {
	rot := c.get(rotName, c.b, 3, 3)
	trans := c.get(transName, c.b, 3)
	if c.err != nil {
		return nil
	}
	f, err := FromArrays(rot, trans)
	c.err = err
	return f
}

func (c *caseOp[T]) putFrames(prefix, rotName, transName string, f []Rigid[T], lead ...int) {
	rot, trans := ToArrays(f)
	c.put(prefix, rotName, append(append([]int{}, lead...), 3, 3), rot)
	c.put(prefix, transName, append(append([]int{}, lead...), 3), trans)
}

func (c *caseOp[T]) quatToRot() {
	c.batch("quat")
	q := c.get("quat", c.b, 4)
	if c.err != nil {
		return
	}
	if c.err = num.CheckFinite("quat", q); c.err != nil {
		return
	}
	rot := make([]T, 9*c.b)
	for i := 0; i < c.b; i++ {
		r := QuatToRot(quatAt(q, i))
		copy(rot[9*i:], r[:])
	}
	c.put("out/", "rot", []int{c.b, 3, 3}, rot)
	if !c.grad {
		return
	}
	if cr, ok := c.cot("rot", c.b, 3, 3); ok {
		g := make([]T, 4*c.b)
		for i := 0; i < c.b; i++ {
			d := QuatToRotVJP(quatAt(q, i), matAt(cr, i))
			copy(g[4*i:], d[:])
		}
		c.put("grad/in/", "quat", []int{c.b, 4}, g)
	}
}

func (c *caseOp[T]) rotToQuat() {
	c.batch("rot")
	rot := c.get("rot", c.b, 3, 3)
	if c.err != nil {
		return
	}
	if c.err = num.CheckFinite("rot", rot); c.err != nil {
		return
	}
	q := make([]T, 4*c.b)
	for i := 0; i < c.b; i++ {
		r := RotToQuat(matAt(rot, i))
		copy(q[4*i:], r[:])
	}
	c.put("out/", "quat", []int{c.b, 4}, q)
}

func (c *caseOp[T]) quatMultiply() {
	c.batch("quat1")
	q1 := c.get("quat1", c.b, 4)
	q2 := c.get("quat2", c.b, 4)
	if c.err != nil {
		return
	}
	if c.err = errors.Join(num.CheckFinite("quat1", q1), num.CheckFinite("quat2", q2)); c.err != nil {
		return
	}
	q := make([]T, 4*c.b)
	for i := 0; i < c.b; i++ {
		p := QuatMultiply(quatAt(q1, i), quatAt(q2, i))
		copy(q[4*i:], p[:])
	}
	c.put("out/", "quat", []int{c.b, 4}, q)
	if !c.grad {
		return
	}
	if cq, ok := c.cot("quat", c.b, 4); ok {
		g1, g2 := make([]T, 4*c.b), make([]T, 4*c.b)
		for i := 0; i < c.b; i++ {
			d1, d2 := QuatMultiplyVJP(quatAt(q1, i), quatAt(q2, i), quatAt(cq, i))
			copy(g1[4*i:], d1[:])
			copy(g2[4*i:], d2[:])
		}
		c.put("grad/in/", "quat1", []int{c.b, 4}, g1)
		c.put("grad/in/", "quat2", []int{c.b, 4}, g2)
	}
}

// cotFrames returns the cotangent of a frame output (rotName, transName) and
// whether either part exists.
func (c *caseOp[T]) cotFrames(rotName, transName string) ([]Rigid[T], bool) {
	cr, ok1 := c.cot(rotName, c.b, 3, 3)
	ct, ok2 := c.cot(transName, c.b, 3)
	if c.err != nil {
		return nil, false
	}
	d := make([]Rigid[T], c.b)
	for i := range d {
		d[i] = Rigid[T]{Rot: matAt(cr, i), Trans: vecAt(ct, i)}
	}
	return d, ok1 || ok2
}

func (c *caseOp[T]) compose() {
	c.batch("rot1")
	a := c.frames("rot1", "trans1")
	b := c.frames("rot2", "trans2")
	if c.err != nil {
		return
	}
	o := make([]Rigid[T], c.b)
	if c.err = Compose(o, a, b); c.err != nil {
		return
	}
	c.putFrames("out/", "rot", "trans", o, c.b)
	if !c.grad {
		return
	}
	if d, ok := c.cotFrames("rot", "trans"); ok {
		g1, g2 := make([]Rigid[T], c.b), make([]Rigid[T], c.b)
		for i := range d {
			g1[i], g2[i] = ComposeVJP(a[i], b[i], d[i])
		}
		c.putFrames("grad/in/", "rot1", "trans1", g1, c.b)
		c.putFrames("grad/in/", "rot2", "trans2", g2, c.b)
	}
}

func (c *caseOp[T]) invert() {
	c.batch("rot")
	a := c.frames("rot", "trans")
	if c.err != nil {
		return
	}
	o := make([]Rigid[T], c.b)
	if c.err = Invert(o, a); c.err != nil {
		return
	}
	c.putFrames("out/", "rot", "trans", o, c.b)
	if !c.grad {
		return
	}
	if d, ok := c.cotFrames("rot", "trans"); ok {
		g := make([]Rigid[T], c.b)
		for i := range d {
			g[i] = InvertVJP(a[i], d[i])
		}
		c.putFrames("grad/in/", "rot", "trans", g, c.b)
	}
}

func (c *caseOp[T]) apply() {
	c.batch("rot")
	f := c.frames("rot", "trans")
	if c.err != nil {
		return
	}
	s, err := c.in.Shape("points")
	if err != nil {
		c.err = err
		return
	}
	if len(s) != 3 || s[0] != c.b || s[2] != 3 {
		c.err = fmt.Errorf("points has shape %v, want [%d,m,3]: %w", s, c.b, num.ErrShape)
		return
	}
	m := s[1]
	p := c.get("points", c.b, m, 3)
	if c.err != nil {
		return
	}
	pg, pl := make([]T, len(p)), make([]T, len(p))
	if c.err = errors.Join(Apply(pg, f, p), InvertApply(pl, f, p)); c.err != nil {
		return
	}
	shape := []int{c.b, m, 3}
	c.put("out/", "points_global", shape, pg)
	c.put("out/", "points_local", shape, pl)
	if !c.grad {
		return
	}
	cg, ok1 := c.cot("points_global", shape...)
	cl, ok2 := c.cot("points_local", shape...)
	if c.err != nil || !(ok1 || ok2) {
		return
	}
	gf := make([]Rigid[T], c.b)
	gp := make([]T, len(p))
	for i := 0; i < c.b; i++ {
		for k := 0; k < m; k++ {
			j := i*m + k
			d1, dp1 := ApplyVJP(f[i], vecAt(p, j), vecAt(cg, j))
			d2, dp2 := InvertApplyVJP(f[i], vecAt(p, j), vecAt(cl, j))
			gf[i].Rot = addMat(gf[i].Rot, addMat(d1.Rot, d2.Rot))
			gf[i].Trans = add(gf[i].Trans, add(d1.Trans, d2.Trans))
			dp := add(dp1, dp2)
			copy(gp[3*j:], dp[:])
		}
	}
	c.putFrames("grad/in/", "rot", "trans", gf, c.b)
	c.put("grad/in/", "points", shape, gp)
}

func (c *caseOp[T]) threePoints() {
	alg21 := c.op == "rigid_from_3_points_alg21"
	names := [3]string{"p_neg_x_axis", "origin", "p_xy_plane"}
	if alg21 {
		names = [3]string{"n", "ca", "c"}
	}
	c.batch(names[0])
	var pts [3][]T
	for k, n := range names {
		pts[k] = c.get(n, c.b, 3)
	}
	if c.err != nil {
		return
	}
	o := make([]Rigid[T], c.b)
	for i := 0; i < c.b; i++ {
		a, b, d := vecAt(pts[0], i), vecAt(pts[1], i), vecAt(pts[2], i)
		var err error
		if alg21 {
			o[i], err = FromThreePointsAlg21(a, b, d)
		} else {
			o[i], err = FromThreePoints(a, b, d)
			if errors.Is(err, ErrDegenerate) {
				err = nil
			}
		}
		if err != nil {
			c.err = fmt.Errorf("batch %d: %w", i, err)
			return
		}
	}
	c.putFrames("out/", "rot", "trans", o, c.b)
	if !c.grad {
		return
	}
	if d, ok := c.cotFrames("rot", "trans"); ok {
		var g [3][]T
		for k := range g {
			g[k] = make([]T, 3*c.b)
		}
		for i := 0; i < c.b; i++ {
			a, b, e := vecAt(pts[0], i), vecAt(pts[1], i), vecAt(pts[2], i)
			var g0, g1, g2 [3]T
			if alg21 {
				g0, g1, g2 = FromThreePointsAlg21VJP(a, b, e, d[i])
			} else {
				g0, g1, g2 = FromThreePointsVJP(a, b, e, d[i])
			}
			copy(g[0][3*i:], g0[:])
			copy(g[1][3*i:], g1[:])
			copy(g[2][3*i:], g2[:])
		}
		for k, n := range names {
			c.put("grad/in/", n, []int{c.b, 3}, g[k])
		}
	}
}

func (c *caseOp[T]) qUpdate() {
	c.batch("quat")
	q := c.get("quat", c.b, 4)
	t := c.get("trans", c.b, 3)
	u := c.get("update", c.b, 6)
	if c.err != nil {
		return
	}
	if c.err = errors.Join(num.CheckFinite("quat", q), num.CheckFinite("trans", t), num.CheckFinite("update", u)); c.err != nil {
		return
	}
	oq, ot := make([]T, 4*c.b), make([]T, 3*c.b)
	of := make([]Rigid[T], c.b)
	for i := 0; i < c.b; i++ {
		nq, nt := ComposeQUpdate(quatAt(q, i), vecAt(t, i), [6]T(u[6*i:6*i+6]))
		copy(oq[4*i:], nq[:])
		copy(ot[3*i:], nt[:])
		of[i] = FromQuat(nq, nt)
	}
	c.put("out/", "quat", []int{c.b, 4}, oq)
	c.putFrames("out/", "rot", "trans", of, c.b)
	if !c.grad {
		return
	}
	cq, ok1 := c.cot("quat", c.b, 4)
	d, ok2 := c.cotFrames("rot", "trans")
	if c.err != nil || !(ok1 || ok2) {
		return
	}
	gq, gt, gu := make([]T, 4*c.b), make([]T, 3*c.b), make([]T, 6*c.b)
	for i := 0; i < c.b; i++ {
		a, b, e := ComposeQUpdateVJP(quatAt(q, i), vecAt(t, i), [6]T(u[6*i:6*i+6]), quatAt(cq, i), d[i])
		copy(gq[4*i:], a[:])
		copy(gt[3*i:], b[:])
		copy(gu[6*i:], e[:])
	}
	c.put("grad/in/", "quat", []int{c.b, 4}, gq)
	c.put("grad/in/", "trans", []int{c.b, 3}, gt)
	c.put("grad/in/", "update", []int{c.b, 6}, gu)
}

func (c *caseOp[T]) torsion() {
	c.batch("rot_bb")
	bb := c.frames("rot_bb", "trans_bb")
	sc := c.get("angles_sin_cos", c.b, NumTorsions, 2)
	if c.err != nil {
		return
	}
	aatype, err := params.Ints(c.in, "aatype", c.b)
	if err != nil {
		c.err = err
		return
	}
	fr, err := TorsionFrames(bb, sc, aatype)
	if err != nil {
		c.err = err
		return
	}
	pos, err := Atom14Positions(fr, aatype)
	if err != nil {
		c.err = err
		return
	}
	c.putFrames("out/", "frames_rot", "frames_trans", fr, c.b, NumGroups)
	c.put("out/", "atom14_pos", []int{c.b, NumAtom14, 3}, pos)
	if !c.grad {
		return
	}
	cr, ok1 := c.cot("frames_rot", c.b, NumGroups, 3, 3)
	ct, ok2 := c.cot("frames_trans", c.b, NumGroups, 3)
	cp, ok3 := c.cot("atom14_pos", c.b, NumAtom14, 3)
	if c.err != nil || !(ok1 || ok2 || ok3) {
		return
	}
	df, err := Atom14PositionsVJP(aatype, cp)
	if err != nil {
		c.err = err
		return
	}
	for j := range df {
		df[j].Rot = addMat(df[j].Rot, matAt(cr, j))
		df[j].Trans = add(df[j].Trans, vecAt(ct, j))
	}
	dbb, dsc, err := TorsionFramesVJP(bb, sc, aatype, df)
	if err != nil {
		c.err = err
		return
	}
	c.putFrames("grad/in/", "rot_bb", "trans_bb", dbb, c.b)
	c.put("grad/in/", "angles_sin_cos", []int{c.b, NumTorsions, 2}, dsc)
}
