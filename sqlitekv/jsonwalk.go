package sqlitekv

import (
	"bytes"

	"github.com/buger/jsonparser"
)

// locateDeepest is locate of the longest part of p that is there, the
// first depth segments: the node, its kind, and where it sits in doc. Of
// an object that names a member twice it takes the last, as JavaScript's
// JSON.parse and Go's encoding/json read it, so that a path reads and
// writes what those clients see.
//
// It reads doc once, front to back. Walking segment by segment instead,
// finding each member meant scanning its whole object (to find the last
// of a name given twice), and a 64-segment path into a document nested
// 63 deep scanned it 63 times: 0.3 s of CPU for one GET of a 10 MiB
// document, and seconds of the writer's time for a PUT.
func locateDeepest(doc []byte, p JSONPath) (raw []byte, kind jsonparser.ValueType, start, end, depth int) {
	w := pathWalk{doc: doc, p: p, found: make([]span, len(p)+1)}
	start = len(doc) - len(bytes.TrimLeft(doc, jsonSpace))
	end = start + len(bytes.Trim(doc, jsonSpace))
	w.found[0] = span{start, end, kindOf(doc[start:end])}
	w.value(start, 0, true)
	f := w.found[w.depth]
	return doc[f.start:f.end], f.kind, f.start, f.end, w.depth
}

type span struct {
	start, end int
	kind       jsonparser.ValueType
}

// pathWalk reads a valid JSON document (ValidJSON: its nesting, and so the
// recursion, is bounded) and keeps where each depth of p's nodes is.
type pathWalk struct {
	doc   []byte
	p     JSONPath
	found []span // found[d]: the node p[:d] names, for d up to depth
	depth int
}

// value reads the value that starts at doc[i], which p[:d] names when on
// (the path so far leads here), and returns where it ends.
func (w *pathWalk) value(i, d int, on bool) int {
	switch w.doc[i] {
	case '{':
		return w.object(i, d, on && d < len(w.p) && !isIndex(w.p[d]))
	case '[':
		return w.array(i, d, on && d < len(w.p) && isIndex(w.p[d]))
	case '"':
		return skipString(w.doc, i)
	}
	for i < len(w.doc) && !endsScalar(w.doc[i]) {
		i++
	}
	return i
}

// endsScalar: c ends a number or literal.
func endsScalar(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// object reads the object at doc[i]; on, p[d] is a member name to find.
func (w *pathWalk) object(i, d int, on bool) int {
	i = skipJSONSpace(w.doc, i+1)
	for w.doc[i] != '}' {
		nameEnd := skipString(w.doc, i)
		isIt := on && sameName(w.doc[i+1:nameEnd-1], w.p[d])
		i = skipJSONSpace(w.doc, skipJSONSpace(w.doc, nameEnd)+1) // past the colon
		i = skipJSONSpace(w.doc, w.child(i, d, isIt))
		if w.doc[i] == ',' {
			i = skipJSONSpace(w.doc, i+1)
		}
	}
	return i + 1
}

// array reads the array at doc[i]; on, p[d] is an index to find.
func (w *pathWalk) array(i, d int, on bool) int {
	want := -1
	if on {
		want = indexOf(w.p[d])
	}
	i = skipJSONSpace(w.doc, i+1)
	for n := 0; w.doc[i] != ']'; n++ {
		i = skipJSONSpace(w.doc, w.child(i, d, n == want))
		if w.doc[i] == ',' {
			i = skipJSONSpace(w.doc, i+1)
		}
	}
	return i + 1
}

// child reads the value at doc[i] inside a node of depth d; isIt, it is
// the node p[:d+1] names, and what an earlier one of its name held below
// it is forgotten.
func (w *pathWalk) child(i, d int, isIt bool) int {
	if !isIt {
		return w.value(i, d+1, false)
	}
	w.depth = d + 1
	end := w.value(i, d+1, true)
	w.found[d+1] = span{i, end, valueKind(w.doc[i])}
	return end
}

// skipString is where the string that starts at doc[i] ends, past its
// quote: the next quote not escaped, found as bytes.IndexByte finds a
// byte, many at a time (stringEnd checks each byte, as validation must).
func skipString(doc []byte, i int) int {
	for i++; ; {
		quote := i + bytes.IndexByte(doc[i:], '"')
		escapes := 0
		for at := quote - 1; at >= i && doc[at] == '\\'; at-- {
			escapes++
		}
		if escapes%2 == 0 {
			return quote + 1
		}
		i = quote + 1
	}
}

// eachElement calls fn with the index and text of each element of arr,
// valid JSON array text (or nil, an empty array), without the space
// around it; fn returns false to stop. Nothing is copied or decoded.
func eachElement(arr []byte, fn func(i int, el []byte) bool) {
	if len(arr) < 2 {
		return
	}
	skip := pathWalk{doc: arr} // on no path: it only finds where values end
	at := skipJSONSpace(arr, 1)
	for i := 0; arr[at] != ']'; i++ {
		end := skip.value(at, 0, false)
		if !fn(i, arr[at:end]) {
			return
		}
		if at = skipJSONSpace(arr, end); arr[at] == ',' {
			at = skipJSONSpace(arr, at+1)
		}
	}
}

// sameName compares a member's name as written (escapes and all, without
// its quotes) with seg.
func sameName(written []byte, seg string) bool {
	if bytes.IndexByte(written, '\\') < 0 {
		return string(written) == seg
	}
	name, err := jsonparser.Unescape(written, nil)
	return err == nil && string(name) == seg
}

// decodedName is a member's name as written (quoted) decoded; a name
// without escapes is not copied.
func decodedName(quoted []byte) ([]byte, error) {
	written := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(written, '\\') < 0 {
		return written, nil
	}
	return jsonparser.Unescape(written, nil)
}

// valueKind is the kind of the value that starts with c, as jsonparser
// names it.
func valueKind(c byte) jsonparser.ValueType {
	switch c {
	case '{':
		return jsonparser.Object
	case '[':
		return jsonparser.Array
	case '"':
		return jsonparser.String
	case 't', 'f':
		return jsonparser.Boolean
	case 'n':
		return jsonparser.Null
	}
	return jsonparser.Number
}
