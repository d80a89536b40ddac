package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PlotRateCurve draws the acknowledgement latency of `push --rate` runs against the offered
// load as a PNG: p50 and p99 on a logarithmic axis, each point labelled with the rate
// actually applied, and the target's bounds at 3,000/s (p50 15 ms, p99 50 ms) as dashes.
func PlotRateCurve(path, title string, runs []Result) error {
	type pt struct{ offered, applied, p50, p99 float64 }
	var pts []pt
	for _, r := range runs {
		f := r.Figures
		if f["offered_per_s"] > 0 && f["ack_p50_ms"] > 0 {
			pts = append(pts, pt{f["offered_per_s"], f["mutations_per_s"], f["ack_p50_ms"], f["ack_p99_ms"]})
		}
	}
	if len(pts) == 0 {
		return fmt.Errorf("no push --rate results to plot")
	}
	slices.SortFunc(pts, func(a, b pt) int { return int(a.offered - b.offered) })
	const W, H, left, right, top, bottom = 900, 520, 80, 30, 50, 70
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	xmax := 0.0
	ymin, ymax := 1.0, 100.0
	for _, p := range pts {
		xmax = max(xmax, p.offered)
		ymax = max(ymax, p.p99)
		ymin = min(ymin, p.p50)
	}
	xmax = math.Ceil(xmax*1.1/1000) * 1000
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	X := func(v float64) int { return left + int(v/xmax*float64(W-left-right)) }
	Y := func(ms float64) int {
		return H - bottom - int((math.Log10(max(ms, 1e-3))-lo)/(hi-lo)*float64(H-top-bottom))
	}
	grey := color.RGBA{200, 200, 200, 255}
	black := color.RGBA{0, 0, 0, 255}
	text := func(x, y int, c color.Color, s string) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	line := func(x0, y0, x1, y1 int, c color.Color, dash bool) {
		n := max(abs(x1-x0), abs(y1-y0), 1)
		for i := 0; i <= n; i++ {
			if dash && (i/6)%2 == 1 {
				continue
			}
			x, y := x0+(x1-x0)*i/n, y0+(y1-y0)*i/n
			img.Set(x, y, c)
			img.Set(x, y+1, c)
		}
	}
	// Axes and grid: a line per power of ten, one per 1,000 mutations/s.
	for e := lo; e <= hi; e++ {
		y := Y(math.Pow(10, e))
		line(left, y, W-right, y, grey, false)
		text(8, y+4, black, fmtMS(math.Pow(10, e)))
	}
	for x := 0.0; x <= xmax; x += 1000 {
		line(X(x), top, X(x), H-bottom, grey, false)
		text(X(x)-14, H-bottom+18, black, fmt.Sprintf("%.0f", x))
	}
	line(left, top, left, H-bottom, black, false)
	line(left, H-bottom, W-right, H-bottom, black, false)
	text(left, 18, black, title)
	text(W/2-150, H-20, black, fmt.Sprintf("offered load (mutations/s, %.0f devices, pushes of %.0f)", runs[0].Figures["devices"], runs[0].Figures["batch"]))
	text(8, top-10, black, "ack latency (log)")
	blue, red := color.RGBA{30, 90, 200, 255}, color.RGBA{210, 50, 40, 255}
	// The target at 3,000/s.
	line(X(2700), Y(15), X(3300), Y(15), blue, true)
	line(X(2700), Y(50), X(3300), Y(50), red, true)
	for i, p := range pts {
		for _, s := range []struct {
			v float64
			c color.Color
		}{{p.p50, blue}, {p.p99, red}} {
			x, y := X(p.offered), Y(s.v)
			for dx := -3; dx <= 3; dx++ {
				for dy := -3; dy <= 3; dy++ {
					img.Set(x+dx, y+dy, s.c)
				}
			}
			if i > 0 {
				prev := pts[i-1].p50
				if s.c == red {
					prev = pts[i-1].p99
				}
				line(X(pts[i-1].offered), Y(prev), x, y, s.c, false)
			}
		}
		text(X(p.offered)+6, Y(p.p99)-6, black, fmt.Sprintf("%.0f/s applied", p.applied))
	}
	text(W-right-260, top+16, blue, "p50 (dashes: target at 3,000/s)")
	text(W-right-260, top+32, red, "p99")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func fmtMS(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.0f s", ms/1000)
	}
	return fmt.Sprintf("%g ms", ms)
}
