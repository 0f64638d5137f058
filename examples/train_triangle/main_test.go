package main

import (
	"bytes"
	"testing"

	"github.com/foldkit/foldkit/internal/backendtest"
)

// TestRun checks that training lowers the loss on every backend of the
// build: 40 steps of gradient descent from a module whose output weights
// start at zero must at least halve the squared error to the teacher's
// output (measured on the CPU: 14.3 to 4.46, 31% of the first loss
// remains; a broken gradient leaves it near 100%).
func TestRun(t *testing.T) {
	for _, b := range backendtest.Backends[float32](t) {
		var out bytes.Buffer
		first, last, err := run(&out, b.K, 40)
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		t.Logf("%s:\n%s", b.Name, out.String())
		if !(last < 0.5*first) {
			t.Errorf("%s: loss went from %.6g to %.6g, want at least halved", b.Name, first, last)
		}
	}
}
