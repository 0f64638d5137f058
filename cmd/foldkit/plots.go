package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotPLDDT writes a PNG line plot of per-residue pLDDT (0–100) against the
// residue number, with AF2's confidence bands (90, 70, 50) drawn as guides.
func plotPLDDT(path string, plddt []float64, residueIndex []int) error {
	p := plot.New()
	p.Title.Text = "Predicted LDDT per residue"
	p.X.Label.Text = "residue"
	p.Y.Label.Text = "pLDDT"
	p.Y.Min, p.Y.Max = 0, 100
	pts := make(plotter.XYs, len(plddt))
	for i, v := range plddt {
		pts[i].X = float64(residueIndex[i])
		pts[i].Y = v
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("pLDDT plot: %w", err)
	}
	line.Color = color.RGBA{B: 200, A: 255}
	line.Width = vg.Points(1.5)
	p.Add(line)
	for _, band := range []float64{50, 70, 90} {
		g, err := plotter.NewLine(plotter.XYs{{X: pts[0].X, Y: band}, {X: pts[len(pts)-1].X, Y: band}})
		if err != nil {
			return fmt.Errorf("pLDDT plot: %w", err)
		}
		g.Color = color.Gray{Y: 160}
		g.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(g)
	}
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 4*vg.Inch, path)
}

// paeGrid adapts an [N, N] row-major matrix to plotter.GridXYZ; row i is
// the aligned residue (y), column j the scored residue (x).
type paeGrid struct {
	n int
	v []float64
}

func (g paeGrid) Dims() (c, r int)   { return g.n, g.n }
func (g paeGrid) Z(c, r int) float64 { return g.v[r*g.n+c] }
func (g paeGrid) X(c int) float64    { return float64(c) }
func (g paeGrid) Y(r int) float64    { return float64(r) }

// plotPAE writes a PNG heat map of the predicted aligned error [N, N] in Å.
func plotPAE(path string, pae []float64, n int) error {
	if len(pae) != n*n {
		return fmt.Errorf("PAE plot: %d values for %d residues", len(pae), n)
	}
	p := plot.New()
	p.Title.Text = "Predicted aligned error (Å)"
	p.X.Label.Text = "scored residue"
	p.Y.Label.Text = "aligned residue"
	pal := moreland.SmoothBlueRed().Palette(64)
	h := plotter.NewHeatMap(paeGrid{n: n, v: pae}, pal)
	p.Add(h)
	return p.Save(6*vg.Inch, 6*vg.Inch, path)
}
