package experiment

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// palette gives each target/sink line its own colour, the same in every plot.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
}

// Plots writes, into dir, delivered Gbit/s against viewers for every rate
// (one line per server and sink, from every measured step), and, when
// there are several rates, capacity in Gbit/s per core against bitrate.
// It returns the files written.
func Plots(dir string, rs []Result, sinks []string) ([]string, error) {
	var files []string
	rates := map[float64]bool{}
	for _, r := range rs {
		rates[r.Rate] = true
	}
	var rateList []float64
	for r := range rates {
		rateList = append(rateList, r)
	}
	slices.Sort(rateList)
	for _, rate := range rateList {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("One server core, %g Mbit/s stream: delivered throughput", rate)
		p.X.Label.Text = "viewers"
		p.Y.Label.Text = "Gbit/s delivered"
		i := 0
		for _, r := range rs {
			if r.Rate != rate {
				continue
			}
			for _, s := range sinks {
				c, ok := r.ByS[s]
				if !ok || len(c.Points) == 0 {
					continue
				}
				pts := slices.Clone(c.Points)
				slices.SortFunc(pts, func(a, b Point) int { return a.Viewers - b.Viewers })
				xy := make(plotter.XYs, len(pts))
				for k, pt := range pts {
					xy[k].X, xy[k].Y = float64(pt.Viewers), pt.Gbps
				}
				if err := addLine(p, xy, r.Target+" / "+s, i); err != nil {
					return files, err
				}
				i++
			}
		}
		name := filepath.Join(dir, fmt.Sprintf("throughput-%gmbps.png", rate))
		if err := p.Save(8*vg.Inch, 5*vg.Inch, name); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	if len(rateList) < 2 {
		return files, nil
	}
	p := plot.New()
	p.Title.Text = "One server core: capacity (loss under the limit) against bitrate"
	p.X.Label.Text = "stream Mbit/s"
	p.Y.Label.Text = "Gbit/s per core at capacity"
	i := 0
	byLine := map[string]plotter.XYs{}
	var order []string
	for _, r := range rs {
		for _, s := range sinks {
			c, ok := r.ByS[s]
			if !ok || c.Best.Viewers == 0 {
				continue
			}
			k := r.Target + " / " + s
			if _, seen := byLine[k]; !seen {
				order = append(order, k)
			}
			byLine[k] = append(byLine[k], plotter.XY{X: r.Rate, Y: c.Best.Gbps})
		}
	}
	for _, k := range order {
		if err := addLine(p, byLine[k], k, i); err != nil {
			return files, err
		}
		i++
	}
	name := filepath.Join(dir, "capacity-vs-bitrate.png")
	if err := p.Save(8*vg.Inch, 5*vg.Inch, name); err != nil {
		return files, err
	}
	return append(files, name), nil
}

func addLine(p *plot.Plot, xy plotter.XYs, name string, i int) error {
	l, pts, err := plotter.NewLinePoints(xy)
	if err != nil {
		return err
	}
	c := palette[i%len(palette)]
	l.Color, pts.Color = c, c
	pts.Shape = draw.CircleGlyph{}
	p.Add(l, pts)
	p.Legend.Add(name, l, pts)
	p.Legend.Top, p.Legend.Left = true, true
	return nil
}
