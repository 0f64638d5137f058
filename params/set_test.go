package params_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/internal/num"
	"github.com/foldkit/foldkit/params"
)

const stackKey = "alphafold/alphafold_iteration/evoformer/evoformer_iteration/triangle_multiplication_outgoing/left_projection//weights"

// newStack returns a set holding a 3-layer stack [3,2,4] under AF2's names.
func newStack(t *testing.T) *params.Set {
	t.Helper()
	s := params.New()
	w := make([]float32, 3*2*4)
	for i := range w {
		w[i] = float32(i)
	}
	if err := params.Put(s, stackKey, []int{3, 2, 4}, w); err != nil {
		t.Fatal(err)
	}
	b := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if err := params.Put(s, strings.Replace(stackKey, "//weights", "//bias", 1), []int{3, 4}, b); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSubLayerAndUnused(t *testing.T) {
	s := newStack(t)
	sub := s.Sub("alphafold/alphafold_iteration/evoformer/evoformer_iteration/")
	if got, want := sub.Keys(), []string{
		"triangle_multiplication_outgoing/left_projection//bias",
		"triangle_multiplication_outgoing/left_projection//weights",
	}; !slices.Equal(got, want) {
		t.Fatalf("Sub keys = %v, want %v", got, want)
	}
	n, err := sub.Layers()
	if err != nil || n != 3 {
		t.Fatalf("Layers = %d, %v; want 3", n, err)
	}
	l1, err := sub.Layer(1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := params.Get[float64](l1, "triangle_multiplication_outgoing/left_projection//weights", 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Layer 1 of a row-major [3,2,4] array of 0..23 holds 8..15.
	if want := []float64{8, 9, 10, 11, 12, 13, 14, 15}; !slices.Equal(w, want) {
		t.Errorf("layer 1 weights = %v, want %v", w, want)
	}
	// Only the weights were read, through two views: the root reports the bias.
	if got, want := s.Unused(), []string{strings.Replace(stackKey, "//weights", "//bias", 1)}; !slices.Equal(got, want) {
		t.Errorf("Unused = %v, want %v", got, want)
	}
	if _, err := sub.Layer(3); !errors.Is(err, num.ErrShape) {
		t.Errorf("Layer(3) of a 3-stack: err = %v, want ErrShape", err)
	}
}

func TestGetErrors(t *testing.T) {
	s := newStack(t)
	if err := params.PutInts(s, "aatype", []int{3}, []int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	sub := s.Sub("alphafold/alphafold_iteration/evoformer/evoformer_iteration/")
	tests := []struct {
		name    string
		get     func() error
		want    error
		mention []string
	}{
		{"wrong shape", func() error {
			_, err := params.Get[float32](sub, "triangle_multiplication_outgoing/left_projection//weights", 3, 4, 2)
			return err
		}, params.ErrShape, []string{"left_projection//weights", "[3 2 4]", "[3 4 2]"}},
		{"missing key names nearest", func() error {
			_, err := params.Get[float32](sub, "triangle_multiplication_outgoing/left_projection//weight", 3, 2, 4)
			return err
		}, params.ErrMissing, []string{`nearest keys: "triangle_multiplication_outgoing/left_projection//weights"`}},
		{"int read as float", func() error {
			_, err := params.Get[float64](s, "aatype", 3)
			return err
		}, params.ErrDType, []string{"aatype", "int64"}},
		{"float read as int", func() error {
			_, err := params.Ints(sub, "triangle_multiplication_outgoing/left_projection//bias")
			return err
		}, params.ErrDType, []string{"float32"}},
		{"string of a float", func() error {
			_, err := sub.String("triangle_multiplication_outgoing/left_projection//bias")
			return err
		}, params.ErrDType, nil},
		{"put wrong length", func() error {
			return params.Put(s, "x", []int{2, 2}, []float64{1, 2, 3})
		}, params.ErrShape, []string{`"x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.get()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	s := newStack(t)
	if err := params.Put(s, "f64/scalar", []int{}, []float64{2.5}); err != nil {
		t.Fatal(err)
	}
	if err := params.PutInts(s, "in/aatype", []int{2, 2}, []int{0, 20, 7, -1}); err != nil {
		t.Fatal(err)
	}
	if err := params.PutString(s, "meta", `{"case":"x"}`); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.npz")
	if err := s.Write(path); err != nil {
		t.Fatal(err)
	}
	r, err := params.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Keys(), s.Keys()) {
		t.Fatalf("keys %v, want %v", r.Keys(), s.Keys())
	}
	for _, k := range s.Keys() {
		a, _ := s.Array(k)
		b, _ := r.Array(k)
		if !slices.Equal(a.Shape, b.Shape) || a.DType() != b.DType() {
			t.Errorf("%s: %v %v, want %v %v", k, b.Shape, b.DType(), a.Shape, a.DType())
		}
	}
	w, _ := params.Get[float32](r, stackKey, 3, 2, 4)
	if w[23] != 23 || w[5] != 5 {
		t.Errorf("weights not row-major after round trip: %v", w)
	}
	ints, _ := params.Ints(r, "in/aatype", 2, 2)
	if !slices.Equal(ints, []int{0, 20, 7, -1}) {
		t.Errorf("ints = %v", ints)
	}
	if m, err := r.String("meta"); err != nil || m != `{"case":"x"}` {
		t.Errorf("meta = %q, %v", m, err)
	}
}

// npyBytes builds one .npy entry by hand (a test fixture, so that the
// fortran_order flag can be set, which npyio's writer never does).
func npyBytes(descr string, fortran bool, shape string, data []byte) []byte {
	order := "False"
	if fortran {
		order = "True"
	}
	h := "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }"
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	b.WriteByte(byte(len(h)))
	b.WriteByte(byte(len(h) >> 8))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func f64le(xs ...float64) []byte {
	var b bytes.Buffer
	for _, x := range xs {
		bits := mathFloat64bits(x)
		for i := 0; i < 8; i++ {
			b.WriteByte(byte(bits >> (8 * i)))
		}
	}
	return b.Bytes()
}

// TestFortranOrder checks that an array stored column-major (as 384 of the
// reference arrays are) is returned row-major, and that the same values
// stored row-major read the same.
func TestFortranOrder(t *testing.T) {
	// The 2×3 matrix [[1 2 3] [4 5 6]] column-major is 1 4 2 5 3 6.
	entries := map[string][]byte{
		"c.npy": npyBytes("<f8", false, "(2, 3)", f64le(1, 2, 3, 4, 5, 6)),
		"f.npy": npyBytes("<f8", true, "(2, 3)", f64le(1, 4, 2, 5, 3, 6)),
		// A 2×2×2 array in Fortran order: element (i,j,k) at i + 2j + 4k.
		"f3.npy": npyBytes("<f8", true, "(2, 2, 2)", f64le(0, 4, 2, 6, 1, 5, 3, 7)),
	}
	s, err := params.Read(zipOf(t, entries))
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 2, 3, 4, 5, 6}
	for _, k := range []string{"c", "f"} {
		got, err := params.Get[float64](s, k, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	got, _ := params.Get[float64](s, "f3", 2, 2, 2)
	// Row-major (i,j,k) at 4i+2j+k holds the value 4i+2j+k when the
	// column-major data held value v(i,j,k) = 4i + 2j + k at i + 2j + 4k.
	if want := []float64{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("f3 = %v, want %v", got, want)
	}
}

func TestCorruptFiles(t *testing.T) {
	good := newStack(t)
	var buf bytes.Buffer
	if err := good.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, params.ErrFormat},
		{"not a zip", []byte("this is not an npz file at all"), params.ErrFormat},
		{"truncated", full[:len(full)/2], params.ErrFormat},
		{"header claims more data", mustZip(t, map[string][]byte{"a.npy": npyBytes("<f8", false, "(1000000,)", f64le(1, 2))}), params.ErrFormat},
		{"bad magic", mustZip(t, map[string][]byte{"a.npy": []byte("NOTNUMPY........")}), params.ErrFormat},
		{"unsupported dtype", mustZip(t, map[string][]byte{"a.npy": npyBytes("<c16", false, "(1,)", make([]byte, 16))}), params.ErrDType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := params.Read(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := params.Open(filepath.Join(t.TempDir(), "absent.npz")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(absent) err = %v, want ErrNotExist", err)
	}
}
