package rigid_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foldkit/foldkit/rigid"
)

// benchN is the number of frames per benchmark iteration.
const benchN = 1_000_000

func benchFrames(n int, seed uint64) []rigid.Rigid[float32] {
	rng := rand.New(rand.NewPCG(seed, 1))
	f := make([]rigid.Rigid[float32], n)
	for i := range f {
		f[i] = randFrame[float32](rng)
	}
	return f
}

func reportFrames(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchN/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkCompose(b *testing.B) {
	x, y := benchFrames(benchN, 1), benchFrames(benchN, 2)
	dst := make([]rigid.Rigid[float32], benchN)
	b.SetBytes(3 * 48 * benchN)
	b.ResetTimer()
	for b.Loop() {
		if err := rigid.Compose(dst, x, y); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}

func BenchmarkApply(b *testing.B) {
	f := benchFrames(benchN, 3)
	rng := rand.New(rand.NewPCG(4, 1))
	p := make([]float32, 3*benchN)
	for i := range p {
		p[i] = float32(rng.NormFloat64())
	}
	dst := make([]float32, len(p))
	b.SetBytes((48 + 2*12) * benchN)
	b.ResetTimer()
	for b.Loop() {
		if err := rigid.Apply(dst, f, p); err != nil {
			b.Fatal(err)
		}
	}
	reportFrames(b)
}

func BenchmarkQuatToRot(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 1))
	q := make([]rigid.Quat[float32], benchN)
	for i := range q {
		q[i] = rigid.RandomQuat[float32](rng)
	}
	dst := make([][9]float32, benchN)
	b.SetBytes((16 + 36) * benchN)
	b.ResetTimer()
	for b.Loop() {
		for i := range q {
			dst[i] = rigid.QuatToRot(q[i])
		}
	}
	reportFrames(b)
}

func BenchmarkComposeQUpdate(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 1))
	q := make([]rigid.Quat[float32], benchN)
	t := make([][3]float32, benchN)
	u := make([][6]float32, benchN)
	for i := range q {
		q[i] = rigid.RandomQuat[float32](rng)
		for k := range u[i] {
			u[i][k] = float32(0.1 * rng.NormFloat64())
		}
	}
	b.SetBytes((2*(16+12) + 24) * benchN)
	b.ResetTimer()
	for b.Loop() {
		for i := range q {
			q[i], t[i] = rigid.ComposeQUpdate(q[i], t[i], u[i])
		}
	}
	reportFrames(b)
}

// BenchmarkTorsionFrames times Alg. 24 and 25 (frames and atom14 positions)
// for 1000 residues of mixed types, reporting residues/s.
func BenchmarkTorsionFrames(b *testing.B) {
	const n = 1000
	rng := rand.New(rand.NewPCG(7, 1))
	bb := make([]rigid.Rigid[float32], n)
	aatype := make([]int, n)
	sc := make([]float32, 14*n)
	for i := range bb {
		bb[i] = randFrame[float32](rng)
		aatype[i] = i % 21
	}
	for i := 0; i < len(sc); i += 2 {
		s, c := math.Sincos(2 * math.Pi * rng.Float64())
		sc[i], sc[i+1] = float32(s), float32(c)
	}
	b.ResetTimer()
	for b.Loop() {
		fr, err := rigid.TorsionFrames(bb, sc, aatype)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rigid.Atom14Positions(fr, aatype); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "residues/s")
}

// BenchmarkFromThreePoints builds frames from valid points and from
// degenerate ones (all zero, as AF2's frames of missing atoms are), the two
// paths that ground-truth geometry takes; ns/frame is per call.
func BenchmarkFromThreePoints(b *testing.B) {
	const n = 4096
	rng := rand.New(rand.NewPCG(4, 1))
	valid := make([][3][3]float32, n)
	for i := range valid {
		for k := range 3 {
			valid[i][k] = [3]float32{10 * float32(rng.NormFloat64()), 10 * float32(rng.NormFloat64()), 10 * float32(rng.NormFloat64())}
		}
	}
	degenerate := make([][3][3]float32, n)
	for _, bc := range []struct {
		name string
		pts  [][3][3]float32
	}{{"valid", valid}, {"degenerate", degenerate}} {
		b.Run(bc.name, func(b *testing.B) {
			var sink float32
			for b.Loop() {
				for _, p := range bc.pts {
					f, _ := rigid.FromThreePoints(p[0], p[1], p[2])
					sink += f.Rot[0]
				}
			}
			if math.IsNaN(float64(sink)) {
				b.Fatal("NaN frame")
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*n), "ns/frame")
		})
	}
}
