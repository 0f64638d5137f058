package conformance

import (
	"testing"

	"github.com/foldkit/foldkit/backend"
	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/rigid"
)

// randomFrames returns n random frames (Haar rotations, translations in
// [−10, 10)) as [n, 12] values.
func randomFrames[T num.Float](seed uint64, n int) []T {
	rng := newRNG(seed)
	f := make([]rigid.Rigid[T], n)
	for i := range f {
		f[i] = rigid.RandomRotation[T](rng)
		for j := range f[i].Trans {
			f[i].Trans[j] = T(20*rng.Float64() - 10)
		}
	}
	return clone(backend.FrameData(f))
}

// Rigid checks the frame operations and their gradients against package
// rigid's functions, frame by frame, with tolerance tol.Rigid.
func Rigid[T num.Float](t *testing.T, k backend.Kernels[T], tol Tolerance) {
	const n, m = 37, 5
	rng := newRNG(8)
	a, b := randomFrames[T](9, n), randomFrames[T](10, n)
	fa, fb := backend.AsFrames(a), backend.AsFrames(b)
	da, db := put(t, k, a), put(t, k, b)
	defer k.Free(da)
	defer k.Free(db)
	frameOut := func(init []T) backend.Tensor[T] {
		x := put(t, k, init)
		t.Cleanup(func() { k.Free(x) })
		return x
	}

	// Compose and Invert, also in place.
	want := make([]T, 12*n)
	fw := backend.AsFrames(want)
	for i := range fa {
		fw[i] = fa[i].Compose(fb[i])
	}
	o := frameOut(make([]T, 12*n))
	must(t, "RigidCompose", k.RigidCompose(o, da, db, n))
	compare(t, "RigidCompose", get(t, k, o), want, tol.Rigid)
	ip := frameOut(a)
	must(t, "RigidCompose in place", k.RigidCompose(ip, ip, db, n))
	compare(t, "RigidCompose in place", get(t, k, ip), want, tol.Rigid)
	for i := range fa {
		fw[i] = fa[i].Invert()
	}
	must(t, "RigidInvert", k.RigidInvert(o, da, n))
	compare(t, "RigidInvert", get(t, k, o), want, tol.Rigid)

	// Map, each mode, and its gradient.
	p := randVec[T](rng, 3*n*m, -10, 10)
	dy := randVec[T](rng, 3*n*m, -1, 1)
	dp := put(t, k, p)
	ddy := put(t, k, dy)
	defer k.Free(dp)
	defer k.Free(ddy)
	for mode := backend.Apply; mode <= backend.InvertApplyVec; mode++ {
		t.Run(mode.String(), func(t *testing.T) {
			y := make([]T, 3*n*m)
			gf0, gp0 := randVec[T](rng, 12*n, -1, 1), randVec[T](rng, 3*n*m, -1, 1)
			wf, wp := clone(gf0), clone(gp0)
			for i, f := range fa {
				var acc rigid.Rigid[T]
				for j := 0; j < m; j++ {
					q := 3 * (i*m + j)
					x, d := [3]T{p[q], p[q+1], p[q+2]}, [3]T{dy[q], dy[q+1], dy[q+2]}
					var r [3]T
					var g rigid.Rigid[T]
					var gx [3]T
					switch mode {
					case backend.Apply:
						r = f.Apply(x)
						g, gx = rigid.ApplyVJP(f, x, d)
					case backend.ApplyVec:
						r = f.ApplyVec(x)
						g, gx = rigid.ApplyVecVJP(f, x, d)
					case backend.InvertApply:
						r = f.InvertApply(x)
						g, gx = rigid.InvertApplyVJP(f, x, d)
					default:
						r = f.InvertApplyVec(x)
						g, gx = rigid.InvertApplyVecVJP(f, x, d)
					}
					copy(y[q:q+3], r[:])
					for c := range acc.Rot {
						acc.Rot[c] += g.Rot[c]
					}
					for c := range acc.Trans {
						acc.Trans[c] += g.Trans[c]
					}
					for c := range gx {
						wp[q+c] += gx[c]
					}
				}
				w := &backend.AsFrames(wf)[i]
				for c := range w.Rot {
					w.Rot[c] += acc.Rot[c]
				}
				for c := range w.Trans {
					w.Trans[c] += acc.Trans[c]
				}
			}
			out := put(t, k, make([]T, 3*n*m))
			defer k.Free(out)
			must(t, "RigidMap", k.RigidMap(mode, out, da, dp, n, m))
			compare(t, "RigidMap", get(t, k, out), y, tol.Rigid)
			gf, gp := put(t, k, gf0), put(t, k, gp0)
			defer k.Free(gf)
			defer k.Free(gp)
			must(t, "RigidMapBackward", k.RigidMapBackward(mode, gf, gp, da, dp, ddy, n, m))
			compare(t, "RigidMapBackward frames", get(t, k, gf), wf, tol.Rigid)
			compare(t, "RigidMapBackward points", get(t, k, gp), wp, tol.Rigid)
		})
	}

	// Compose and Invert gradients.
	g := randVec[T](rng, 12*n, -1, 1)
	fg := backend.AsFrames(g)
	ga0, gb0 := randVec[T](rng, 12*n, -1, 1), randVec[T](rng, 12*n, -1, 1)
	wa, wb, wi := clone(ga0), clone(gb0), clone(ga0)
	for i := range fa {
		d1, d2 := rigid.ComposeVJP(fa[i], fb[i], fg[i])
		addFrame(&backend.AsFrames(wa)[i], d1)
		addFrame(&backend.AsFrames(wb)[i], d2)
		addFrame(&backend.AsFrames(wi)[i], rigid.InvertVJP(fa[i], fg[i]))
	}
	dg := put(t, k, g)
	defer k.Free(dg)
	ga, gb, gi := frameOut(ga0), frameOut(gb0), frameOut(ga0)
	must(t, "RigidComposeBackward", k.RigidComposeBackward(ga, gb, da, db, dg, n))
	compare(t, "RigidComposeBackward a", get(t, k, ga), wa, tol.Rigid)
	compare(t, "RigidComposeBackward b", get(t, k, gb), wb, tol.Rigid)
	must(t, "RigidInvertBackward", k.RigidInvertBackward(gi, da, dg, n))
	compare(t, "RigidInvertBackward", get(t, k, gi), wi, tol.Rigid)

	// Quaternions and the backbone update (Algorithm 23).
	q := make([]T, 4*n)
	for i := 0; i < n; i++ {
		r := rigid.RandomQuat[T](rng)
		copy(q[4*i:], r[:])
	}
	tr := randVec[T](rng, 3*n, -10, 10)
	u := randVec[T](rng, 6*n, -0.5, 0.5)
	rot, qn, tn := make([]T, 9*n), make([]T, 4*n), make([]T, 3*n)
	for i := 0; i < n; i++ {
		qi := rigid.Quat[T]{q[4*i], q[4*i+1], q[4*i+2], q[4*i+3]}
		r := rigid.QuatToRot(qi)
		copy(rot[9*i:], r[:])
		var ui [6]T
		copy(ui[:], u[6*i:])
		a, b := rigid.ComposeQUpdate(qi, [3]T{tr[3*i], tr[3*i+1], tr[3*i+2]}, ui)
		copy(qn[4*i:], a[:])
		copy(tn[3*i:], b[:])
	}
	dq, dtr, du := put(t, k, q), put(t, k, tr), put(t, k, u)
	defer k.Free(dq)
	defer k.Free(dtr)
	defer k.Free(du)
	drot := frameOut(make([]T, 9*n))
	must(t, "QuatToRot", k.QuatToRot(drot, dq, n))
	compare(t, "QuatToRot", get(t, k, drot), rot, tol.Rigid)
	dqn, dtn := frameOut(make([]T, 4*n)), frameOut(make([]T, 3*n))
	must(t, "ComposeQUpdate", k.ComposeQUpdate(dqn, dtn, dq, dtr, du, n))
	compare(t, "ComposeQUpdate q", get(t, k, dqn), qn, tol.Rigid)
	compare(t, "ComposeQUpdate t", get(t, k, dtn), tn, tol.Rigid)

	dRot := randVec[T](rng, 9*n, -1, 1)
	gq0 := randVec[T](rng, 4*n, -1, 1)
	wq := clone(gq0)
	for i := 0; i < n; i++ {
		var d [9]T
		copy(d[:], dRot[9*i:])
		gq := rigid.QuatToRotVJP(rigid.Quat[T]{q[4*i], q[4*i+1], q[4*i+2], q[4*i+3]}, d)
		for c := range gq {
			wq[4*i+c] += gq[c]
		}
	}
	gdq, ddRot := frameOut(gq0), frameOut(dRot)
	must(t, "QuatToRotBackward", k.QuatToRotBackward(gdq, dq, ddRot, n))
	compare(t, "QuatToRotBackward", get(t, k, gdq), wq, tol.Rigid)

	for _, withQ := range []bool{true, false} {
		dqNew := randVec[T](rng, 4*n, -1, 1)
		dFrame := randVec[T](rng, 12*n, -1, 1)
		gt0, gu0 := randVec[T](rng, 3*n, -1, 1), randVec[T](rng, 6*n, -1, 1)
		wq, wt, wu := clone(gq0), clone(gt0), clone(gu0)
		for i := 0; i < n; i++ {
			var ui [6]T
			copy(ui[:], u[6*i:])
			var dn rigid.Quat[T]
			if withQ {
				copy(dn[:], dqNew[4*i:])
			}
			a, b, c := rigid.ComposeQUpdateVJP(rigid.Quat[T]{q[4*i], q[4*i+1], q[4*i+2], q[4*i+3]}, [3]T{tr[3*i], tr[3*i+1], tr[3*i+2]}, ui, dn, backend.AsFrames(dFrame)[i])
			for j := range a {
				wq[4*i+j] += a[j]
			}
			for j := range b {
				wt[3*i+j] += b[j]
			}
			for j := range c {
				wu[6*i+j] += c[j]
			}
		}
		var ddqNew backend.Tensor[T]
		if withQ {
			ddqNew = frameOut(dqNew)
		}
		gq, gt, gu, ddf := frameOut(gq0), frameOut(gt0), frameOut(gu0), frameOut(dFrame)
		must(t, "ComposeQUpdateBackward", k.ComposeQUpdateBackward(gq, gt, gu, dq, dtr, du, ddqNew, ddf, n))
		compare(t, "ComposeQUpdateBackward q", get(t, k, gq), wq, tol.Rigid)
		compare(t, "ComposeQUpdateBackward t", get(t, k, gt), wt, tol.Rigid)
		compare(t, "ComposeQUpdateBackward u", get(t, k, gu), wu, tol.Rigid)
	}
}

func addFrame[T num.Float](dst *rigid.Rigid[T], g rigid.Rigid[T]) {
	for c := range dst.Rot {
		dst.Rot[c] += g.Rot[c]
	}
	for c := range dst.Trans {
		dst.Trans[c] += g.Trans[c]
	}
}
