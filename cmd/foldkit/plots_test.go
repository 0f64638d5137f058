package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestPlots writes both plots and checks they are PNG images of the size asked.
func TestPlots(t *testing.T) {
	dir := t.TempDir()
	n := 20
	plddt := make([]float64, n)
	idx := make([]int, n)
	pae := make([]float64, n*n)
	for i := range plddt {
		plddt[i] = float64(40 + 3*i)
		idx[i] = i + 1
		for j := 0; j < n; j++ {
			pae[i*n+j] = float64((i - j) * (i - j) % 31)
		}
	}
	for _, tc := range []struct {
		name string
		make func(string) error
		w, h int
	}{
		{"plddt.png", func(p string) error { return plotPLDDT(p, plddt, idx) }, 768, 384},
		{"pae.png", func(p string) error { return plotPAE(p, pae, n) }, 576, 576},
	} {
		path := filepath.Join(dir, tc.name)
		if err := tc.make(path); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// vg's default PNG resolution is 96 dpi: 8×4 inches is 768×384 pixels.
		if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
			t.Errorf("%s is %dx%d, want %dx%d", tc.name, b.Dx(), b.Dy(), tc.w, tc.h)
		}
	}
	if err := plotPAE(filepath.Join(dir, "bad.png"), pae[:10], n); err == nil {
		t.Error("PAE plot of the wrong size did not fail")
	}
}
