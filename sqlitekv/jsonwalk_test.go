package sqlitekv

import (
	"bytes"
	"testing"

	"github.com/buger/jsonparser"
)

// FuzzLocateDeepestWalksAsStepByStep: the one-pass walk finds, for any
// document and path, the node the step-by-step walk finds.
func FuzzLocateDeepestWalksAsStepByStep(f *testing.F) {
	for _, c := range [][2]string{
		{`{"a":{"b":[1,{"c":"x"}]}}`, `a.b[1].c`}, {`{"a":1,"a":{"b":2}}`, `a.b`}, {`{"a":{"b":2},"a":1}`, `a.b`},
		{`{"b":true,"c":[5]}`, `b[0]`}, {`{"[0]":1}`, `[0]`}, {` [ 1 , [2, {"x" : "]"}] ] `, `[1][1].x`}, {`{"\u0061":{"b":"\"}"}}`, `a.b`},
		{`"s"`, `a`}, {`null`, `$`}, {`{"a":[]}`, `a[0]`}, {`{"a":"x","b":{"a":1}}`, `b.a`}, {`{"a":{"a":{"a":3}}}`, `a.a.a.a`},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, doc, path string) {
		p, err := ParseJSONPath(path)
		if err != nil || !ValidJSON([]byte(doc)) {
			return
		}
		raw, kind, start, end, depth := locateDeepest([]byte(doc), p)
		wantRaw, wantKind, wantStart, wantEnd, wantDepth := locateStepByStep([]byte(doc), p)
		if depth != wantDepth || kind != wantKind || start != wantStart || end != wantEnd || !bytes.Equal(raw, wantRaw) {
			t.Fatalf("%s at %s: got depth %d, %v %q at %d-%d; step by step depth %d, %v %q at %d-%d",
				doc, path, depth, kind, raw, start, end, wantDepth, wantKind, wantRaw, wantStart, wantEnd)
		}
	})
}

// locateStepByStep is how locateDeepest walked before: segment by
// segment, each inside the node the last one found, jsonparser scanning
// that whole node for the member (the last of one named twice). A path
// into a deep document scanned it once per level.
func locateStepByStep(doc []byte, p JSONPath) (raw []byte, kind jsonparser.ValueType, start, end, depth int) {
	node := bytes.Trim(doc, jsonSpace)
	start = len(doc) - len(bytes.TrimLeft(doc, jsonSpace))
	end = start + len(node)
	kind = kindOf(node)
	for i, seg := range p {
		if !stepsInto(seg, kind) {
			return node, kind, start, end, i
		}
		value, k, valueEnd, ok := stepChild(node, seg)
		if !ok {
			return node, kind, start, end, i
		}
		valueStart := valueEnd - len(value)
		if k == jsonparser.String {
			valueStart -= 2 // jsonparser strips the quotes
		}
		start, end = start+valueStart, start+valueEnd
		node, kind = doc[start:end], k
	}
	return node, kind, start, end, len(p)
}

// child finds the value seg names in node (an array for an index, an
// object for a name), and where it ends in node. Of an object that names a
// member twice it is the last, as JavaScript's JSON.parse and Go's
// encoding/json read it, so that a path reads and writes what those
// clients see; jsonparser.Get would take the first.
func stepChild(node []byte, seg string) (value []byte, kind jsonparser.ValueType, end int, ok bool) {
	if isIndex(seg) {
		value, kind, end, err := jsonparser.Get(node, seg)
		return value, kind, end, err == nil && kind != jsonparser.NotExist
	}
	jsonparser.ObjectEach(node, func(name, v []byte, k jsonparser.ValueType, vEnd int) error {
		if string(name) == seg {
			value, kind, end, ok = v, k, vEnd, true
		}
		return nil
	})
	return value, kind, end, ok
}

// stepsInto reports whether seg can step into a node of kind: an index into
// an array, a member name into an object.
func stepsInto(seg string, kind jsonparser.ValueType) bool {
	if isIndex(seg) {
		return kind == jsonparser.Array
	}
	return kind == jsonparser.Object
}
