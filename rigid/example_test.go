package rigid_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/foldkit/foldkit/rigid"
)

func ExampleCompose() {
	// A quarter turn about z, then a shift along x.
	turn := rigid.Rigid[float64]{Rot: [9]float64{0, -1, 0, 1, 0, 0, 0, 0, 1}}
	shift := rigid.Identity[float64]()
	shift.Trans = [3]float64{1, 0, 0}

	// Batched: dst[i] = a[i]∘b[i] (b[i] applied first).
	dst := make([]rigid.Rigid[float64], 2)
	if err := rigid.Compose(dst, []rigid.Rigid[float64]{shift, turn}, []rigid.Rigid[float64]{turn, shift}); err != nil {
		fmt.Println(err)
		return
	}
	p := [3]float64{1, 0, 0}
	fmt.Println("shift∘turn:", dst[0].Apply(p))
	fmt.Println("turn∘shift:", dst[1].Apply(p))
	fmt.Println("inverse undoes it:", dst[1].Invert().Apply(dst[1].Apply(p)))
	// Output:
	// shift∘turn: [1 1 0]
	// turn∘shift: [0 2 0]
	// inverse undoes it: [1 0 0]
}

func ExampleFromThreePointsAlg21() {
	// Backbone frame of a residue: origin at CA, x along CA→C, N in the xy
	// plane.
	n := [3]float64{10.0, 0.0, 1.4}
	ca := [3]float64{10.0, 0.0, 0.0}
	c := [3]float64{11.5, 0.0, 0.0}
	f, err := rigid.FromThreePointsAlg21(n, ca, c)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("origin %v\n", f.Trans)
	fmt.Printf("x axis %v\n", [3]float64{f.Rot[0], f.Rot[3], f.Rot[6]})
	fmt.Printf("N in the frame %.2f\n", f.InvertApply(n))
	// Output:
	// origin [10 0 0]
	// x axis [1 0 0]
	// N in the frame [0.00 1.40 0.00]
}

func ExampleFromThreePoints() {
	// AF2's code form: origin, x along origin − pNegX, pXY in the xy plane.
	f, err := rigid.FromThreePoints([3]float64{-1, 0, 0}, [3]float64{0, 0, 0}, [3]float64{0, 0, 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.6f\n", f.Rot)

	// Collinear points do not define a frame.
	_, err = rigid.FromThreePoints([3]float64{0, 0, 0}, [3]float64{1, 1, 1}, [3]float64{2, 2, 2})
	fmt.Println("collinear:", errors.Is(err, rigid.ErrDegenerate))
	// Output:
	// [1.000000 0.000000 0.000000 0.000000 0.000000 -1.000000 0.000000 1.000000 0.000000]
	// collinear: true
}

func ExampleRandomRotation() {
	rng := rand.New(rand.NewPCG(1, 2))
	r := rigid.RandomRotation[float64](rng)
	fmt.Println("rotation:", r.CheckRotation(1e-12) == nil)
	fmt.Println("translation:", r.Trans)
	q := rigid.RotToQuat(r.Rot)
	fmt.Println("unit quaternion, w ≥ 0:", math.Abs(q[0]*q[0]+q[1]*q[1]+q[2]*q[2]+q[3]*q[3]-1) < 1e-12, q[0] >= 0)
	// Output:
	// rotation: true
	// translation: [0 0 0]
	// unit quaternion, w ≥ 0: true true
}

func ExampleRotToQuat() {
	// A 180° turn about z, where trace-based conversions break down.
	q := rigid.RotToQuat([9]float64{-1, 0, 0, 0, -1, 0, 0, 0, 1})
	fmt.Printf("%.6f\n", q)
	fmt.Printf("%.6f\n", rigid.QuatToRot(q))
	// Output:
	// [0.000000 0.000000 0.000000 1.000000]
	// [-1.000000 0.000000 0.000000 0.000000 -1.000000 0.000000 0.000000 0.000000 1.000000]
}

func ExampleComposeQUpdate() {
	// Alg. 23: a small rotation about x and a step along the frame's x axis.
	q := rigid.Quat[float64]{1, 0, 0, 0}
	t := [3]float64{0, 0, 0}
	q, t = rigid.ComposeQUpdate(q, t, [6]float64{0.1, 0, 0, 1, 0, 0})
	fmt.Printf("q %.4f\nt %v\n", q, t)
	q, t = rigid.ComposeQUpdate(q, t, [6]float64{0, 0, 0, 0, 1, 0})
	fmt.Printf("t %.4f\n", t)
	// Output:
	// q [0.9950 0.0995 0.0000 0.0000]
	// t [1 0 0]
	// t [1.0000 0.9802 0.1980]
}

func ExampleTorsionFrames() {
	// An alanine at the origin with all torsions 0: its atoms sit at AF2's
	// literature positions (CB and the backbone in the backbone frame, O in
	// the ψ frame).
	bb := []rigid.Rigid[float64]{rigid.Identity[float64]()}
	sinCos := make([]float64, 14)
	for k := 0; k < 7; k++ {
		sinCos[2*k+1] = 1 // (sin, cos) = (0, 1)
	}
	frames, err := rigid.TorsionFrames(bb, sinCos, []int{0}) // 0 = ALA
	if err != nil {
		fmt.Println(err)
		return
	}
	pos, err := rigid.Atom14Positions(frames, []int{0})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, name := range []string{"N", "CA", "C", "O", "CB"} {
		fmt.Printf("%-2s %6.3f\n", name, pos[3*i:3*i+3])
	}
	// Output:
	// N  [-0.525  1.363  0.000]
	// CA [ 0.000  0.000  0.000]
	// C  [ 1.526  0.000  0.000]
	// O  [ 2.153 -1.062  0.000]
	// CB [-0.529 -0.774 -1.205]
}
