package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A plot is laid out once as a list of lines and labels, then drawn by
// either renderer (SVG text, or PNG pixels), so both show the same picture.
type drawing struct {
	w, h   int
	lines  []polyline
	labels []label
}

type pt struct{ x, y float64 }

type polyline struct {
	pts   []pt
	color string // #rrggbb
	width float64
}

type label struct {
	x, y   float64 // baseline
	text   string
	anchor string // start, middle or end
	size   float64
	color  string
}

const (
	plotW, plotH = 900, 680
	marginL      = 80.0
	marginR      = 40.0
	panelH       = 220.0
	colorAxis    = "#333333"
	colorGrid    = "#dddddd"
	colorLatency = "#1f77b4"
	colorRate    = "#d62728"
)

// WritePlot draws the latency percentile curve and the throughput over time
// to path, as SVG or, for a name ending in .png, as PNG.
func (r *Result) WritePlot(path string) error {
	d := r.drawing()
	var b bytes.Buffer
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		d.svg(&b)
	case ".png":
		if err := d.png(&b); err != nil {
			return err
		}
	default:
		return fmt.Errorf("plot %s: want a .svg or .png file", path)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (r *Result) drawing() *drawing {
	d := &drawing{w: plotW, h: plotH}
	title := fmt.Sprintf("kvbench %s: %.0f ops/s, p50 %s, p99 %s, max %s",
		r.Scenario, r.Throughput, fmtMS(r.Latency.P50), fmtMS(r.Latency.P99), fmtMS(r.Latency.Max))
	sub := fmt.Sprintf("%s loop, %d connections, %.1fs, %d answered, %d errors",
		r.Mode, r.Conns, r.Elapsed, r.Requests, r.Errors)
	d.text(marginL, 28, title, "start", 16, colorAxis)
	d.text(marginL, 48, sub, "start", 12, colorAxis)

	// Latency by percentile: x = log10(1/(1-p)) puts 90%, 99%, 99.9% evenly.
	curve := r.Hist.Curve()
	var lat []pt
	for _, c := range curve {
		lat = append(lat, pt{-math.Log10(1 - c.Percentile/100), ms(c.Latency)})
	}
	xmax := 1.0
	if len(lat) > 0 {
		xmax = max(1, math.Ceil(lat[len(lat)-1].x-1e-9))
	}
	var xt []tick
	for x := 0.0; x <= xmax; x++ {
		xt = append(xt, tick{x, percentLabel(x)})
	}
	d.panel(panelSpec{
		top: 90, title: "latency (ms) by percentile",
		xmax: xmax, xticks: xt, yticks: niceTicks(maxY(lat)),
		series: lat, color: colorLatency,
	})

	// Throughput over time.
	var tp []pt
	for _, p := range r.Timeline {
		tp = append(tp, pt{p.T, p.RPS})
	}
	tmax := max(r.Elapsed, 1e-3)
	d.panel(panelSpec{
		top: 90 + panelH + 100, title: "throughput (ops/s) over time (s)",
		xmax: tmax, xticks: niceTicksLabeled(tmax), yticks: niceTicks(maxY(tp)),
		series: tp, color: colorRate,
	})
	return d
}

type tick struct {
	v     float64
	label string
}

type panelSpec struct {
	top            float64
	title          string
	xmax           float64
	xticks, yticks []tick
	series         []pt
	color          string
}

// panel draws axes, grid, ticks and one series scaled into its box.
func (d *drawing) panel(p panelSpec) {
	left, right := marginL, float64(d.w)-marginR
	top, bottom := p.top, p.top+panelH
	ymax := 1.0
	if len(p.yticks) > 0 {
		ymax = p.yticks[len(p.yticks)-1].v
	}
	sx := func(x float64) float64 { return left + (right-left)*x/p.xmax }
	sy := func(y float64) float64 { return bottom - (bottom-top)*y/ymax }

	d.text(left, top-12, p.title, "start", 13, colorAxis)
	for _, t := range p.yticks {
		y := sy(t.v)
		d.line(colorGrid, 1, pt{left, y}, pt{right, y})
		d.text(left-8, y+4, t.label, "end", 11, colorAxis)
	}
	for _, t := range p.xticks {
		x := sx(t.v)
		d.line(colorGrid, 1, pt{x, top}, pt{x, bottom})
		d.text(x, bottom+18, t.label, "middle", 11, colorAxis)
	}
	d.line(colorAxis, 1, pt{left, top}, pt{left, bottom}, pt{right, bottom})
	if len(p.series) == 0 {
		d.text((left+right)/2, (top+bottom)/2, "no data", "middle", 12, colorAxis)
		return
	}
	pts := make([]pt, len(p.series))
	for i, s := range p.series {
		pts[i] = pt{sx(s.x), sy(s.y)}
	}
	d.line(p.color, 2, pts...)
}

func (d *drawing) line(color string, width float64, pts ...pt) {
	d.lines = append(d.lines, polyline{pts, color, width})
}

func (d *drawing) text(x, y float64, s, anchor string, size float64, color string) {
	d.labels = append(d.labels, label{x, y, s, anchor, size, color})
}

func maxY(pts []pt) float64 {
	m := 0.0
	for _, p := range pts {
		m = max(m, p.y)
	}
	return m
}

// percentLabel names the percentile at x = log10(1/(1-p)): 0%, 90%, 99%...
func percentLabel(x float64) string {
	if x == 0 {
		return "0%"
	}
	p := 100 * (1 - math.Pow(10, -x))
	return strconv.FormatFloat(p, 'f', max(0, int(x)-2), 64) + "%"
}

// niceTicks covers 0..m with about five steps of 1, 2 or 5 times a power of ten.
func niceTicks(m float64) []tick {
	if m <= 0 {
		m = 1
	}
	raw := m / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := pow * 10
	for _, f := range []float64{1, 2, 5} {
		if f*pow >= raw {
			step = f * pow
			break
		}
	}
	var ts []tick
	for i := 0.0; ; i++ {
		v := i * step
		ts = append(ts, tick{v, number(v)})
		if v >= m*(1-1e-9) {
			return ts
		}
	}
}

// niceTicksLabeled is niceTicks for an axis whose end is fixed at m.
func niceTicksLabeled(m float64) []tick {
	var ts []tick
	for _, t := range niceTicks(m) {
		if t.v <= m*(1+1e-9) {
			ts = append(ts, t)
		}
	}
	return ts
}

// number prints a tick value briefly: 0.25, 3, 1.5k, 20k, 2M.
func number(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// svg writes the drawing as a standalone SVG document.
func (d *drawing) svg(b *bytes.Buffer) {
	fmt.Fprintf(b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">
<rect width="100%%" height="100%%" fill="#ffffff"/>
`, d.w, d.h, d.w, d.h)
	for _, l := range d.lines {
		b.WriteString(`<polyline fill="none" stroke-linejoin="round" points="`)
		for i, p := range l.pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(b, "%.1f,%.1f", p.x, p.y)
		}
		fmt.Fprintf(b, `" stroke="%s" stroke-width="%g"/>`+"\n", l.color, l.width)
	}
	for _, t := range d.labels {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%g" fill="%s">`,
			t.x, t.y, t.anchor, t.size, t.color)
		xml.EscapeText(b, []byte(t.text))
		b.WriteString("</text>\n")
	}
	b.WriteString("</svg>\n")
}
