package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// png rasterizes the drawing with the standard library alone: lines are
// stamped squares along each segment, text uses a built-in 3x5 pixel font
// (upper case, digits, a little punctuation), enough for titles and ticks.
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

// drawText renders t with the pixel font scaled to roughly t.size.
func drawText(img *image.RGBA, t label) {
	scale := max(1, int(math.Round(t.size/6)))
	adv := 4 * scale // 3 pixels of glyph and 1 of space
	text := []rune(strings.ToUpper(t.text))
	x := int(math.Round(t.x))
	switch t.anchor {
	case "middle":
		x -= len(text) * adv / 2
	case "end":
		x -= len(text) * adv
	}
	top := int(math.Round(t.y)) - 5*scale
	c := parseColor(t.color)
	for _, r := range text {
		g := glyphs[r]
		if g == nil && !unicode.IsSpace(r) {
			g = glyphs['?']
		}
		for row, bits := range g {
			for col := range 3 {
				if bits[col] != '#' {
					continue
				}
				for dy := range scale {
					for dx := range scale {
						img.SetRGBA(x+col*scale+dx, top+row*scale+dy, c)
					}
				}
			}
		}
		x += adv
	}
}

// glyphs is a 3x5 pixel font, five rows of three columns each.
var glyphs = map[rune][]string{
	'A':      {".#.", "#.#", "###", "#.#", "#.#"},
	'B':      {"##.", "#.#", "##.", "#.#", "##."},
	'C':      {".##", "#..", "#..", "#..", ".##"},
	'D':      {"##.", "#.#", "#.#", "#.#", "##."},
	'E':      {"###", "#..", "##.", "#..", "###"},
	'F':      {"###", "#..", "##.", "#..", "#.."},
	'G':      {".##", "#..", "#.#", "#.#", ".##"},
	'H':      {"#.#", "#.#", "###", "#.#", "#.#"},
	'I':      {"###", ".#.", ".#.", ".#.", "###"},
	'J':      {"..#", "..#", "..#", "#.#", ".#."},
	'K':      {"#.#", "#.#", "##.", "#.#", "#.#"},
	'L':      {"#..", "#..", "#..", "#..", "###"},
	'M':      {"#.#", "###", "###", "#.#", "#.#"},
	'N':      {"##.", "#.#", "#.#", "#.#", "#.#"},
	'O':      {".#.", "#.#", "#.#", "#.#", ".#."},
	'P':      {"##.", "#.#", "##.", "#..", "#.."},
	'Q':      {".#.", "#.#", "#.#", "##.", ".##"},
	'R':      {"##.", "#.#", "##.", "#.#", "#.#"},
	'S':      {".##", "#..", ".#.", "..#", "##."},
	'T':      {"###", ".#.", ".#.", ".#.", ".#."},
	'U':      {"#.#", "#.#", "#.#", "#.#", "###"},
	'V':      {"#.#", "#.#", "#.#", ".#.", ".#."},
	'W':      {"#.#", "#.#", "###", "###", "#.#"},
	'X':      {"#.#", "#.#", ".#.", "#.#", "#.#"},
	'Y':      {"#.#", "#.#", ".#.", ".#.", ".#."},
	'Z':      {"###", "..#", ".#.", "#..", "###"},
	'\u039c': {"#.#", "#.#", "#.#", "##.", "#.."}, // µ upper-cased
	'0':      {"###", "#.#", "#.#", "#.#", "###"},
	'1':      {".#.", "##.", ".#.", ".#.", "###"},
	'2':      {"##.", "..#", ".#.", "#..", "###"},
	'3':      {"##.", "..#", ".#.", "..#", "##."},
	'4':      {"#.#", "#.#", "###", "..#", "..#"},
	'5':      {"###", "#..", "##.", "..#", "##."},
	'6':      {".##", "#..", "###", "#.#", "###"},
	'7':      {"###", "..#", ".#.", ".#.", ".#."},
	'8':      {"###", "#.#", "###", "#.#", "###"},
	'9':      {"###", "#.#", "###", "..#", "##."},
	'.':      {"...", "...", "...", "...", ".#."},
	',':      {"...", "...", "...", ".#.", "#.."},
	':':      {"...", ".#.", "...", ".#.", "..."},
	'%':      {"#.#", "..#", ".#.", "#..", "#.#"},
	'/':      {"..#", "..#", ".#.", "#..", "#.."},
	'(':      {"..#", ".#.", ".#.", ".#.", "..#"},
	')':      {"#..", ".#.", ".#.", ".#.", "#.."},
	'-':      {"...", "...", "###", "...", "..."},
	'=':      {"...", "###", "...", "###", "..."},
	'_':      {"...", "...", "...", "...", "###"},
	'?':      {"##.", "..#", ".#.", "...", ".#."},
}
