package backend_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/foldkit/foldkit/backend"
)

// TestRun checks that Run hands run the uploaded inputs (nil staying
// absent) and zeroed outputs of the asked lengths, returns what run wrote,
// and passes run's error through.
func TestRun(t *testing.T) {
	k := backend.CPU[float64]()
	got, err := backend.Run(k, [][]float64{{1, 2, 3}, nil}, []int{3, 1}, func(in, out []backend.Tensor[float64]) error {
		if in[1] != nil {
			t.Error("absent input was uploaded")
		}
		if err := k.Copy(out[0], in[0]); err != nil {
			return err
		}
		return k.Add(out[0], in[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0], []float64{2, 4, 6}) || !slices.Equal(got[1], []float64{0}) {
		t.Errorf("outputs %v, want [[2 4 6] [0]]", got)
	}
	boom := errors.New("boom")
	if _, err := backend.Run(k, nil, []int{1}, func(in, out []backend.Tensor[float64]) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
}
