package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/foldkit/foldkit/backend"
)

// TestBenchBackend builds and runs every backend bench once at a small
// size, on the CPU backend (and, in foldkit_cuda and foldkit_cudaemu
// builds, through `bench -backend cuda`), and checks the FLOP counts are
// positive: the benches a GPU machine runs cannot rot unnoticed.
func TestBenchBackend(t *testing.T) {
	for _, m := range backendBenchModules() {
		for _, dtype := range []string{"float32", "float64"} {
			run, flops, done, err := backendBench(backend.CPUPair(), m, 6, 3, dtype)
			if err != nil {
				t.Fatalf("%s %s: %v", m, dtype, err)
			}
			if err := run(); err != nil {
				t.Errorf("%s %s: %v", m, dtype, err)
			}
			done()
			if !(flops > 0) {
				t.Errorf("%s %s: %v FLOPs", m, dtype, flops)
			}
		}
		if testBackend != "" && m != "model_full" { // model_full: 52 blocks, too slow on the emulation

			var out bytes.Buffer
			if code := run([]string{"bench", "-backend", testBackend, "-module", m, "-n", "6", "-s", "3", "-repeats", "1"}, &out, &out); code != 0 {
				t.Fatalf("bench -backend %s -module %s: exit %d: %s", testBackend, m, code, out.String())
			}
			var res struct {
				GFLOPS  float64 `json:"gflops"`
				Backend string  `json:"backend"`
			}
			if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Backend != testBackend || !(res.GFLOPS > 0) {
				t.Errorf("bench -backend %s -module %s printed %q (%v)", testBackend, m, out.String(), err)
			}
		}
	}
	if _, _, _, err := backendBench(backend.CPUPair(), "sgemm", 6, 3, "float32"); err == nil || !strings.Contains(err.Error(), "no backend path") {
		t.Errorf("sgemm: error %v, want one saying it has no backend path", err)
	}
}
