package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// A request with both Content-Length and Transfer-Encoding frames its body
// two ways: the classic request-smuggling shape (RFC 9112 §6.1). Go's
// server quietly picks Transfer-Encoding and deletes Content-Length, so no
// handler can tell such a request from a plain chunked one. framingGuard
// therefore reads the raw bytes of a connection and follows the framing of
// each request (head, then a Content-Length or chunked body) as Go does;
// in a head with both headers it renames Transfer-Encoding to
// clashHeader, a name of the same length, so Go frames by Content-Length
// and the handler sees the clash and refuses it, closing the connection.
//
// The guard must follow every request Go serves, or a request with both
// headers behind one it stopped at would be served, framed by
// Transfer-Encoding, with whatever is pipelined behind it. So it follows
// Go where Go is lenient: HTTP/1.0 (whose Transfer-Encoding Go ignores),
// CONNECT (an ordinary request here: kvd never tunnels), header lines
// folded onto the one before (obs-fold, which Go joins), and the CR and
// LF bytes Go skips after a POST. It stops looking, and passes bytes
// through untouched, only where Go refuses the request and closes the
// connection: another protocol version, an unknown transfer coding, a
// malformed chunk, an oversized head; and after a clash, whose
// connection kvd closes. A guard that has stopped can never rename bytes
// of a body.

// clashHeader replaces the name "Transfer-Encoding" (same length, so no
// byte moves) in a head that also has Content-Length.
const clashHeader = "Kvd-Framing-Clash"

const (
	maxGuardedHead = 128 << 10 // past Go's 64 KiB + 4 KiB: Go answers 431 first
	maxChunkLine   = 4096      // Go's limit for a chunk-size line and a trailer
	maxSkippedCRLF = 4         // CR and LF bytes Go skips before a request that follows a POST
)

type framingState int

const (
	inHead      framingState = iota // a request line and headers, up to the empty line
	inBody                          // left bytes of a Content-Length body, or of a chunk
	inChunkSize                     // a chunk-size line
	inChunkEnd                      // the CRLF after a chunk's data
	inTrailer                       // trailer lines after the last chunk
	passThrough                     // stopped looking
)

type framingGuard struct {
	src   io.Reader
	state framingState
	left  uint64 // bytes left in the body or chunk (inBody)
	chunk bool   // inBody is a chunk's data, not a Content-Length body

	line  []byte // the line being read (inHead, inChunkSize, inChunkEnd, inTrailer)
	out   []byte // bytes ready for the reader, from outAt on
	outAt int
	head  headScan
	skip  int // CR and LF bytes Go may still skip before the next request line

	value     []byte // holds the value of head.field, kept from head to head
	lengthBuf []byte // holds head.length, kept from head to head
}

// headScan is what one request head has shown so far.
type headScan struct {
	size          int
	lines         int
	held          []byte // from the first Transfer-Encoding line on, until the head ends or Content-Length shows up
	teAt          []int  // offsets in held of Transfer-Encoding lines
	sawCL, sawTE  bool
	clashed       bool
	field         framingField // the header of the last field line: a folded line goes on with its value
	length        []byte       // the first Content-Length value (in lengthBuf)
	lengthsDiffer bool         // a later Content-Length is not the same
	te            []string
	http11        bool
	post          bool
}

// framingField is a header whose value frames the body.
type framingField int

const (
	otherField       framingField = iota
	encodingField                 // Transfer-Encoding
	firstLengthField              // the first Content-Length
	laterLengthField              // a Content-Length after the first
)

func newFramingGuard(src io.Reader) *framingGuard { return &framingGuard{src: src} }

func (g *framingGuard) Read(p []byte) (int, error) {
	if g.outAt < len(g.out) {
		return g.give(p), nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	if g.state == passThrough {
		return g.src.Read(p)
	}
	if g.state == inBody && len(g.line) == 0 {
		// Body bytes go straight to the reader: nothing to look at.
		if uint64(len(p)) > g.left {
			p = p[:g.left]
		}
		n, err := g.src.Read(p)
		g.left -= uint64(n)
		if g.left == 0 {
			g.state = g.afterBody()
		}
		return n, err
	}
	for len(g.out) == 0 {
		n, err := g.src.Read(p)
		g.feed(p[:n])
		if err != nil {
			if err == io.EOF {
				g.stop() // hand over what is held: Go decides what a cut request is
			}
			if len(g.out) == 0 {
				return 0, err
			}
			break
		}
	}
	return g.give(p), nil
}

// give copies out to p; a drained buffer is kept for reuse unless large.
func (g *framingGuard) give(p []byte) int {
	n := copy(p, g.out[g.outAt:])
	if g.outAt += n; g.outAt == len(g.out) {
		g.out, g.outAt = g.out[:0], 0
		if cap(g.out) > 16<<10 {
			g.out = nil
		}
	}
	return n
}

// stop passes everything held, and every later byte, through unchanged.
func (g *framingGuard) stop() {
	g.out = append(g.out, g.head.held...)
	g.out = append(g.out, g.line...)
	g.head, g.line = headScan{}, nil
	g.state = passThrough
}

func (g *framingGuard) afterBody() framingState {
	if g.chunk {
		return inChunkEnd
	}
	return inHead
}

// feed runs bytes through the state machine, appending what may be read
// to out.
func (g *framingGuard) feed(b []byte) {
	for len(b) > 0 {
		switch g.state {
		case passThrough:
			g.out = append(g.out, b...)
			return
		case inBody:
			n := min(uint64(len(b)), g.left)
			g.out = append(g.out, b[:n]...)
			b = b[n:]
			if g.left -= n; g.left == 0 {
				g.state = g.afterBody()
			}
		case inChunkEnd:
			g.line = append(g.line, b[0])
			b = b[1:]
			if len(g.line) == 2 {
				ok := string(g.line) == "\r\n"
				g.out, g.line = append(g.out, g.line...), g.line[:0]
				g.state = inChunkSize
				if !ok {
					g.stop()
				}
			}
		default: // line by line
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				g.line = append(g.line, b...)
				if len(g.line) > g.lineLimit() {
					g.stop()
				}
				return
			}
			g.line = append(g.line, b[:i+1]...)
			b = b[i+1:]
			line := g.line
			g.line = nil // onLine copies line wherever it goes
			g.onLine(line)
			if g.state != passThrough {
				g.line = line[:0]
			}
		}
	}
}

func (g *framingGuard) lineLimit() int {
	if g.state == inHead {
		return maxGuardedHead
	}
	return maxChunkLine
}

func (g *framingGuard) onLine(line []byte) {
	switch g.state {
	case inHead:
		g.onHeadLine(line)
	case inChunkSize:
		g.out = append(g.out, line...)
		size, ok := chunkSize(line)
		switch {
		case !ok:
			g.stop()
		case size == 0:
			g.state, g.left = inTrailer, 0
		default:
			g.state, g.left, g.chunk = inBody, size, true
		}
	case inTrailer:
		g.out = append(g.out, line...)
		g.left += uint64(len(line))
		if g.left > maxChunkLine {
			g.stop()
		} else if len(trimEOL(line)) == 0 {
			g.state, g.chunk = inHead, false
		}
	}
}

func (g *framingGuard) onHeadLine(line []byte) {
	h := &g.head
	h.size += len(line)
	h.lines++
	text := trimEOL(line)
	switch {
	case h.size > maxGuardedHead:
		g.out = append(g.out, line...) // stop hands over the rest
		g.stop()
		return
	case h.lines == 1:
		g.onRequestLine(line, text)
		return
	case len(text) == 0:
		g.endHead(line)
		return
	case text[0] == ' ' || text[0] == '\t':
		// Folded onto the line before (obs-fold): Go joins the two with a
		// space, so "Transfer-Encoding:" and " chunked" are chunked.
		if h.field != otherField {
			g.value = append(append(g.value, ' '), bytes.TrimSpace(text)...)
		}
	default:
		g.endField()
		name, value, _ := bytes.Cut(text, []byte(":"))
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.sawTE = true
			g.beginField(encodingField, value)
			// HTTP/1.0 has no Transfer-Encoding (RFC 9112 section 6.1:
			// faulty framing). Go ignores it there, so a body a proxy sent
			// chunked would be read as the next request: refused too.
			if h.sawCL || !h.http11 {
				h.clashed = true
				copy(line, clashHeader)
			} else {
				h.teAt = append(h.teAt, len(h.held))
				h.held = append(h.held, line...)
				return
			}
		case bytes.EqualFold(name, []byte("Content-Length")):
			if h.sawCL {
				g.beginField(laterLengthField, value)
			} else {
				g.beginField(firstLengthField, value)
			}
			h.sawCL = true
			if h.sawTE && !h.clashed {
				h.clashed = true
				for _, at := range h.teAt {
					copy(h.held[at:], clashHeader)
				}
			}
		}
	}
	if len(h.held) > 0 && !h.clashed {
		h.held = append(h.held, line...)
		return
	}
	g.out = append(g.out, h.held...)
	g.out = append(g.out, line...)
	h.held = h.held[:0]
}

// onRequestLine reads the first line of a head. After a POST, Go skips up
// to maxSkippedCRLF CR and LF bytes before the request line (for old
// clients that end a body with a CRLF), and so does the guard: stopping
// there would let the request behind them through unseen.
func (g *framingGuard) onRequestLine(line, text []byte) {
	budget := g.skip
	skip := leadingCRLF(line, budget)
	g.skip = 0
	if skip == len(line) { // skipped whole: the request line is still to come
		g.skip = budget - skip
		g.out = append(g.out, line...)
		g.head.size, g.head.lines = 0, 0
		return
	}
	g.out = append(g.out, line...)
	// Split as Go does: method SP target SP version.
	method, rest, ok1 := bytes.Cut(text[min(skip, len(text)):], []byte(" "))
	_, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		g.stop()
		return
	}
	g.head.http11 = http11OrLater(proto)
	g.head.post = string(method) == http.MethodPost
}

// beginField starts the value of a framing header; folded lines may
// continue it, until endField.
func (g *framingGuard) beginField(f framingField, value []byte) {
	g.head.field = f
	g.value = append(g.value[:0], value...)
}

// endField takes the value of the framing header the last lines gave,
// now that no folded line can continue it.
func (g *framingGuard) endField() {
	h := &g.head
	if h.field == otherField {
		return
	}
	value := bytes.TrimSpace(g.value)
	switch h.field {
	case encodingField:
		h.te = append(h.te, string(value))
	case firstLengthField:
		g.lengthBuf = append(g.lengthBuf[:0], value...)
		h.length = g.lengthBuf
	case laterLengthField:
		h.lengthsDiffer = h.lengthsDiffer || !bytes.Equal(value, h.length)
	}
	h.field = otherField
}

// endHead releases the head and follows its body as Go frames it.
func (g *framingGuard) endHead(last []byte) {
	g.endField()
	h := g.head
	g.out = append(g.out, h.held...)
	g.out = append(g.out, last...)
	g.head = headScan{}
	if h.post {
		g.skip = maxSkippedCRLF
	}
	switch {
	case h.clashed:
		// Refused, and its connection closed: nothing more is read.
		g.state = passThrough
	case h.sawTE && h.http11: // HTTP/1.0 frames by Content-Length alone: Go ignores Transfer-Encoding there
		if len(h.te) != 1 || !equalFoldString(h.te[0], "chunked") {
			g.state = passThrough // Go refuses it
			return
		}
		g.state = inChunkSize
	case h.sawCL:
		n, ok := contentLength(h.length)
		switch {
		case !ok || h.lengthsDiffer:
			g.state = passThrough // Go refuses it
		case n > 0:
			g.state, g.left, g.chunk = inBody, n, false
		}
	}
}

// contentLength reads Content-Length as Go does: only digits are a
// length (and repeated values must agree: lengthsDiffer).
func contentLength(value []byte) (uint64, bool) {
	if len(value) == 0 || value[0] == '+' || value[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(value), 10, 63)
	return n, err == nil
}

// trimEOL is bytes.TrimRight(line, "\r\n") without the cutset it builds
// on every call: the guard trims every line of every request.
func trimEOL(line []byte) []byte {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	return line
}

// chunkSize reads a chunk-size line as Go does: CRLF only at its end, hex
// digits (at most 16) before any extension.
func chunkSize(line []byte) (uint64, bool) {
	if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.IndexByte(line, '\r') != len(line)-2 {
		return 0, false
	}
	line = bytes.TrimRight(line[:len(line)-2], " \t")
	line, _, _ = bytes.Cut(line, []byte(";"))
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(line), 16, 64)
	return n, err == nil
}

// http11OrLater reads the version as Go does (HTTP/1.x, one digit each):
// from 1.1 on, Transfer-Encoding frames the body.
func http11OrLater(proto []byte) bool {
	return len(proto) == len("HTTP/1.1") && bytes.HasPrefix(proto, []byte("HTTP/1.")) && proto[7] >= '1' && proto[7] <= '9'
}

// leadingCRLF counts the CR and LF bytes line starts with, up to limit.
func leadingCRLF(line []byte, limit int) int {
	n := 0
	for n < limit && n < len(line) && (line[n] == '\r' || line[n] == '\n') {
		n++
	}
	return n
}

func equalFoldString(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

// hasFramingClash: the guard found both Content-Length and
// Transfer-Encoding in the request's head.
func hasFramingClash(r *http.Request) bool {
	_, clash := r.Header[clashHeader]
	return clash
}
