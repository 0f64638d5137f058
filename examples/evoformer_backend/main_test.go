package main

import (
	"bytes"
	"testing"

	"github.com/foldkit/foldkit/internal/backendtest"
)

// TestRun runs two blocks on every backend of the build and bounds the
// pair representation's difference from the CPU stack: 0 on the CPU
// backend (it runs the CPU code), and on another backend the float32
// round-off of two blocks in another summation order (measured 1e-6 of the
// largest value on the emulated CUDA backend; 1e-4 as in the block tests).
func TestRun(t *testing.T) {
	for _, b := range backendtest.Backends[float32](t) {
		var out bytes.Buffer
		rel, err := run(&out, b.K, 2, 12, 6)
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		t.Logf("%s: %s", b.Name, out.String())
		limit := 1e-4
		if b.Name == "cpu" {
			limit = 0
		}
		if rel > limit {
			t.Errorf("%s: pair differs from the CPU stack by %.3g of its largest value, want ≤ %g", b.Name, rel, limit)
		}
	}
}
