package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// png rasterizes the drawing: lines are stamped squares along each
// segment, text is drawn in the Go font.
func (d *drawing) png(b *bytes.Buffer) error {
	img := image.NewRGBA(image.Rect(0, 0, d.w, d.h))
	for i := range img.Pix {
		img.Pix[i] = 0xff // white, opaque
	}
	for _, l := range d.lines {
		c := parseColor(l.color)
		for i := 1; i < len(l.pts); i++ {
			stroke(img, l.pts[i-1], l.pts[i], l.width, c)
		}
	}
	for _, t := range d.labels {
		drawText(img, t)
	}
	return png.Encode(b, img)
}

// stroke draws a segment of the given width by stamping a square every
// half pixel along it.
func stroke(img *image.RGBA, a, b pt, width float64, c color.RGBA) {
	n := int(math.Ceil(2*math.Hypot(b.x-a.x, b.y-a.y))) + 1
	half := width / 2
	for i := 0; i <= n; i++ {
		f := float64(i) / float64(n)
		x, y := a.x+(b.x-a.x)*f, a.y+(b.y-a.y)*f
		for py := int(math.Round(y - half)); py < int(math.Round(y+half)); py++ {
			for px := int(math.Round(x - half)); px < int(math.Round(x+half)); px++ {
				img.SetRGBA(px, py, c)
			}
		}
	}
}

func parseColor(s string) color.RGBA {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil {
		return color.RGBA{A: 0xff}
	}
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// drawText renders t in Go Regular (the Go project's own font, built into
// the binary), sized as the SVG's text: lower case, µ and all.
func drawText(img *image.RGBA, t label) {
	face := faceOf(t.size)
	x := fixed.I(int(math.Round(t.x)))
	switch width := font.MeasureString(face, t.text); t.anchor {
	case "middle":
		x -= width / 2
	case "end":
		x -= width
	}
	d := font.Drawer{Dst: img, Src: image.NewUniform(parseColor(t.color)), Face: face,
		Dot: fixed.Point26_6{X: x, Y: fixed.I(int(math.Round(t.y)))}}
	d.DrawString(t.text)
}

var (
	goRegular = sync.OnceValue(func() *opentype.Font {
		f, err := opentype.Parse(goregular.TTF)
		if err != nil {
			panic(fmt.Sprintf("bench: the embedded Go font does not parse: %v", err))
		}
		return f
	})
	facesMu sync.Mutex
	faces   = map[float64]font.Face{} // by size: a plot uses two or three
)

// faceOf returns Go Regular at size pixels.
func faceOf(size float64) font.Face {
	facesMu.Lock()
	defer facesMu.Unlock()
	if f, ok := faces[size]; ok {
		return f
	}
	f, err := opentype.NewFace(goRegular(), &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic(fmt.Sprintf("bench: Go font at %g px: %v", size, err))
	}
	faces[size] = f
	return f
}
