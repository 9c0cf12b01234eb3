package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func plotted(t *testing.T, name string) string {
	t.Helper()
	_, u := newFake(t, nil)
	res := run(t, Config{URL: u, Scenario: "noop", Conns: 2, Requests: 2000})
	path := filepath.Join(t.TempDir(), name)
	if err := res.WritePlot(path); err != nil {
		t.Fatalf("WritePlot: %v", err)
	}
	return path
}

func TestWritePlot_SVGIsWellFormed(t *testing.T) {
	f, err := os.Open(plotted(t, "run.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var root string
	strokes := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			for _, a := range se.Attr {
				if se.Name.Local == "polyline" && a.Name.Local == "stroke" {
					strokes[a.Value]++
				}
			}
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	if strokes[colorLatency] != 1 || strokes[colorRate] != 1 {
		t.Errorf("got polylines by colour %v, want one latency curve and one throughput line", strokes)
	}
}

func TestWritePlot_PNGDecodes(t *testing.T) {
	f, err := os.Open(plotted(t, "run.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Errorf("got %v, want %dx%d", b, plotW, plotH)
	}
	want := parseColor(colorLatency)
	found := false
	for y := 0; y < plotH && !found; y++ {
		for x := 0; x < plotW && !found; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			found = uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B
		}
	}
	if !found {
		t.Error("no pixel of the latency curve's colour")
	}
}

func TestWritePlot_RejectsOtherFormats(t *testing.T) {
	r := &Result{Hist: NewHistogram()}
	if err := r.WritePlot(filepath.Join(t.TempDir(), "x.jpg")); err == nil {
		t.Error("got no error for .jpg")
	}
}

func TestNiceTicks(t *testing.T) {
	for m, want := range map[float64][]float64{
		1:    {0, 0.2, 0.4, 0.6, 0.8, 1},
		7.3:  {0, 2, 4, 6, 8},
		4200: {0, 1000, 2000, 3000, 4000, 5000},
	} {
		got := niceTicks(m)
		if len(got) != len(want) {
			t.Errorf("niceTicks(%g): got %v, want %v", m, got, want)
			continue
		}
		for i := range want {
			if d := got[i].v - want[i]; d > 1e-9 || d < -1e-9 {
				t.Errorf("niceTicks(%g)[%d] = %g, want %g", m, i, got[i].v, want[i])
			}
		}
	}
}

// The PNG's text keeps its case and its µ: "598µs" must not read "598VS".
func TestPNGText_KeepsCaseAndMicroSign(t *testing.T) {
	render := func(text string) *image.RGBA {
		img := image.NewRGBA(image.Rect(0, 0, 120, 30))
		drawText(img, label{x: 4, y: 20, text: text, anchor: "start", size: 14, color: "#000000"})
		return img
	}
	for _, pair := range [][2]string{{"598µs", "598VS"}, {"598µs", "598MS"}, {"ms", "MS"}} {
		if bytes.Equal(render(pair[0]).Pix, render(pair[1]).Pix) {
			t.Errorf("%q and %q are drawn the same", pair[0], pair[1])
		}
	}
	if bytes.Equal(render("µ").Pix, image.NewRGBA(image.Rect(0, 0, 120, 30)).Pix) {
		t.Error("µ draws nothing")
	}
}
