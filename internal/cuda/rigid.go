//go:build foldkit_cuda || foldkit_cudaemu

package cuda

import (
	"github.com/foldkit/foldkit/internal/num"
)

// The frame kernels work on batches of rigid frames stored as rigid.Rigid[T]
// is in memory: 12 values a frame, the rotation row-major then the
// translation. Quaternions are (w, x, y, z), 4 values each. The backward
// launchers accumulate into their gradient outputs, any of which may be
// nil.

// MapMode selects how RigidMap maps points by frames.
type MapMode int

// The modes of RigidMap, as package rigid's Apply, ApplyVec, InvertApply
// and InvertApplyVec.
const (
	MapApply          MapMode = iota // R·p + t
	MapApplyVec                      // R·p
	MapInvertApply                   // Rᵀ·(p − t)
	MapInvertApplyVec                // Rᵀ·p
)

// launchN queues kernel name+suffix with a grid-stride launch over n items;
// n is appended to args.
func launchN[T num.Float](d *Device, name string, n int, args ...any) error {
	return elementwise[T](d, name, n, args...)
}

// RigidCompose queues dst[i] = a[i]∘b[i] for n frames (rigid.Compose). dst
// may be a or b.
func RigidCompose[T num.Float](d *Device, dst, a, b *Buffer[T], n int) error {
	if err := same[T](d, 12*n, "dst", dst, "a", a, "b", b); err != nil {
		return err
	}
	return launchN[T](d, "fk_rigid_compose", n, dst.ptr, a.ptr, b.ptr)
}

// RigidInvert queues dst[i] = src[i]⁻¹ for n frames (rigid.Invert).
func RigidInvert[T num.Float](d *Device, dst, src *Buffer[T], n int) error {
	if err := same[T](d, 12*n, "dst", dst, "src", src); err != nil {
		return err
	}
	return launchN[T](d, "fk_rigid_invert", n, dst.ptr, src.ptr)
}

// RigidMap queues dst[i,k] = frame i applied to p[i,k] (by mode) for the
// m points [n, m, 3] of each of n frames. dst may be p.
func RigidMap[T num.Float](d *Device, mode MapMode, dst, frames, p *Buffer[T], n, m int) error {
	if err := same[T](d, 12*n, "frames", frames); err != nil {
		return err
	}
	if err := same[T](d, 3*n*m, "dst", dst, "points", p); err != nil {
		return err
	}
	if n == 0 || m == 0 {
		return nil
	}
	k := "fk_rigid_map" + suffix[T]()
	grid, block := elementwiseGrid(n * m)
	return d.do(k, func() error { return d.launch(k, grid, block, 0, dst.ptr, frames.ptr, p.ptr, n, m, int(mode)) }, false)
}

// RigidMapBackward queues the gradients of RigidMap given dy [n, m, 3]:
// dFrames [n, 12] += the frame gradients summed over each frame's points in
// order, dp [n, m, 3] += the point gradients (rigid's ApplyVJP and
// relatives).
func RigidMapBackward[T num.Float](d *Device, mode MapMode, dFrames, dp, frames, p, dy *Buffer[T], n, m int) error {
	if err := same[T](d, 12*n, "frames", frames); err != nil {
		return err
	}
	if err := same[T](d, 3*n*m, "points", p, "dy", dy); err != nil {
		return err
	}
	if err := need(d, "dFrames", dFrames, 12*n, true); err != nil {
		return err
	}
	if err := need(d, "dp", dp, 3*n*m, true); err != nil {
		return err
	}
	if n == 0 || (dFrames == nil && dp == nil) {
		return nil
	}
	k := "fk_rigid_map_bwd" + suffix[T]()
	grid, block := elementwiseGrid(n)
	return d.do(k, func() error {
		return d.launch(k, grid, block, 0, ptr(dFrames), ptr(dp), frames.ptr, p.ptr, dy.ptr, n, m, int(mode))
	}, false)
}

// RigidComposeBackward queues da += ∂/∂a and db += ∂/∂b of a∘b given its
// gradient g [n, 12] (rigid.ComposeVJP).
func RigidComposeBackward[T num.Float](d *Device, da, db, a, b, g *Buffer[T], n int) error {
	if err := same[T](d, 12*n, "a", a, "b", b, "g", g); err != nil {
		return err
	}
	if err := need(d, "da", da, 12*n, true); err != nil {
		return err
	}
	if err := need(d, "db", db, 12*n, true); err != nil {
		return err
	}
	if da == nil && db == nil {
		return nil
	}
	return launchN[T](d, "fk_rigid_compose_bwd", n, ptr(da), ptr(db), a.ptr, b.ptr, g.ptr)
}

// RigidInvertBackward queues dsrc += the gradient of src⁻¹ given its
// gradient g (rigid.InvertVJP).
func RigidInvertBackward[T num.Float](d *Device, dsrc, src, g *Buffer[T], n int) error {
	if err := same[T](d, 12*n, "dsrc", dsrc, "src", src, "g", g); err != nil {
		return err
	}
	return launchN[T](d, "fk_rigid_invert_bwd", n, dsrc.ptr, src.ptr, g.ptr)
}

// QuatToRot queues rot[i] = rigid.QuatToRot(q[i]) (rot [n, 9], q [n, 4]).
func QuatToRot[T num.Float](d *Device, rot, q *Buffer[T], n int) error {
	if err := same[T](d, 9*n, "rot", rot); err != nil {
		return err
	}
	if err := same[T](d, 4*n, "q", q); err != nil {
		return err
	}
	return launchN[T](d, "fk_quat_to_rot", n, rot.ptr, q.ptr)
}

// QuatToRotBackward queues dq += rigid.QuatToRotVJP(q, dRot).
func QuatToRotBackward[T num.Float](d *Device, dq, q, dRot *Buffer[T], n int) error {
	if err := same[T](d, 4*n, "dq", dq, "q", q); err != nil {
		return err
	}
	if err := same[T](d, 9*n, "dRot", dRot); err != nil {
		return err
	}
	return launchN[T](d, "fk_quat_to_rot_bwd", n, dq.ptr, q.ptr, dRot.ptr)
}

// ComposeQUpdate queues the backbone update of Algorithm 23
// (rigid.ComposeQUpdate) for n frames: q [n, 4], t [n, 3], u [n, 6] in,
// qOut [n, 4], tOut [n, 3] out (they may be q and t).
func ComposeQUpdate[T num.Float](d *Device, qOut, tOut, q, t, u *Buffer[T], n int) error {
	if err := same[T](d, 4*n, "qOut", qOut, "q", q); err != nil {
		return err
	}
	if err := same[T](d, 3*n, "tOut", tOut, "t", t); err != nil {
		return err
	}
	if err := same[T](d, 6*n, "u", u); err != nil {
		return err
	}
	return launchN[T](d, "fk_compose_q_update", n, qOut.ptr, tOut.ptr, q.ptr, t.ptr, u.ptr)
}

// ComposeQUpdateBackward queues the gradients of ComposeQUpdate
// (rigid.ComposeQUpdateVJP): given dqNew [n, 4] (nil: zero) and dFrame
// [n, 12], the gradient of the new frame FromQuat(qOut, tOut), it adds to
// dq [n, 4], dt [n, 3] and du [n, 6], each skipped when nil.
func ComposeQUpdateBackward[T num.Float](d *Device, dq, dt, du, q, t, u, dqNew, dFrame *Buffer[T], n int) error {
	if err := same[T](d, 4*n, "q", q); err != nil {
		return err
	}
	if err := same[T](d, 3*n, "t", t); err != nil {
		return err
	}
	if err := same[T](d, 6*n, "u", u); err != nil {
		return err
	}
	if err := same[T](d, 12*n, "dFrame", dFrame); err != nil {
		return err
	}
	for _, x := range []struct {
		what string
		b    *Buffer[T]
		n    int
	}{{"dq", dq, 4 * n}, {"dt", dt, 3 * n}, {"du", du, 6 * n}, {"dqNew", dqNew, 4 * n}} {
		if err := need(d, x.what, x.b, x.n, true); err != nil {
			return err
		}
	}
	if dq == nil && dt == nil && du == nil {
		return nil
	}
	return launchN[T](d, "fk_compose_q_update_bwd", n, ptr(dq), ptr(dt), ptr(du), q.ptr, t.ptr, u.ptr, ptr(dqNew), dFrame.ptr)
}
