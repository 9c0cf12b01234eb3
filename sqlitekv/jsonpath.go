package sqlitekv

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/buger/jsonparser"
)

const (
	maxPathBytes    = 1024
	maxPathSegments = 64
)

// JSONPath is a parsed path in the segment form jsonparser takes: member
// names as they are, array indexes as "[2]". nil is no path at all: the
// value as stored, JSON or not. An empty path ("$") is the whole document,
// read and written as JSON like any other path.
type JSONPath []string

// Given reports whether a request named a path.
func (p JSONPath) Given() bool { return p != nil }

// ParseJSONPath reads dot segments with optional [n] indexes, e.g.
// "prefs.theme" or "items[2].price"; a leading "$." or "$[" (or a bare
// "$", the whole document) is accepted, so every path String prints reads
// back.
func ParseJSONPath(s string) (JSONPath, error) {
	if len(s) > maxPathBytes {
		return nil, Errorf(CodeInvalidParameters, "JSON path is longer than %d bytes", maxPathBytes)
	}
	if s == "$" {
		return JSONPath{}, nil
	}
	rest := strings.TrimPrefix(s, "$.")
	if strings.HasPrefix(s, "$[") {
		rest = s[1:] // the root's index, as String prints it
	}
	if rest == "" {
		return nil, Errorf(CodeInvalidParameters, "JSON path must not be empty")
	}
	var p JSONPath
	for _, seg := range strings.Split(rest, ".") {
		name, indexes, _ := strings.Cut(seg, "[")
		if name == "" && indexes == "" && !strings.Contains(seg, "[") {
			return nil, Errorf(CodeInvalidParameters, "Invalid JSON path %q: empty segment", s)
		}
		if name != "" {
			if strings.ContainsAny(name, `]"\`) || hasControl(name) || !utf8.ValidString(name) {
				return nil, Errorf(CodeInvalidParameters, "Invalid JSON path %q: bad member name %q", s, name)
			}
			p = append(p, name)
		}
		if strings.Contains(seg, "[") {
			for _, ix := range strings.Split(indexes, "[") {
				digits, ok := strings.CutSuffix(ix, "]")
				if !ok || digits == "" || len(digits) > 9 || strings.Trim(digits, "0123456789") != "" {
					return nil, Errorf(CodeInvalidParameters, "Invalid JSON path %q: an index must be [n] with n a whole number", s)
				}
				n, _ := strconv.Atoi(digits)
				p = append(p, "["+strconv.Itoa(n)+"]")
			}
		}
	}
	if len(p) > maxPathSegments {
		return nil, Errorf(CodeInvalidParameters, "JSON path has more than %d segments", maxPathSegments)
	}
	return p, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func (p JSONPath) String() string {
	var b strings.Builder
	b.WriteString("$")
	for _, seg := range p {
		if !isIndex(seg) {
			b.WriteString(".")
		}
		b.WriteString(seg)
	}
	return b.String()
}

func isIndex(seg string) bool { return strings.HasPrefix(seg, "[") }

func indexOf(seg string) int {
	n, _ := strconv.Atoi(seg[1 : len(seg)-1])
	return n
}

// ValidJSON reports whether b is exactly one JSON value, as kvd takes
// JSON. JSON is UTF-8 (RFC 8259 section 8.1), which json.Valid does not
// check inside strings: a value with other bytes there is no JSON a
// client could parse. It nests at most MaxJSONDepth levels, so that an
// answer holding it can be read.
func ValidJSON(b []byte) bool {
	return mayStartJSON(b) && utf8.Valid(b) && json.Valid(b) && nestingDepth(b) <= MaxJSONDepth
}

// mayStartJSON reports whether b's first byte past white space can begin
// a JSON value. Most text cannot, and json.Valid would refuse it only
// after allocating the error it does not return.
func mayStartJSON(b []byte) bool {
	b = bytes.TrimLeft(b, jsonSpace)
	return len(b) > 0 && strings.IndexByte(`{["-0123456789tfn`, b[0]) >= 0
}

var errNotJSON = Errorf(CodeInvalidParameters, "Stored value is not JSON")

// locate finds the value at p in doc: its raw bytes and where they sit.
//
// It steps an index only into an array, a member name only into an
// object (locateDeepest). jsonparser.Get with the whole path does not: an index after
// a member that holds no array is taken from a later sibling array (in
// {"b":true,"c":[5]}, b[0] is 5), and a member named "[0]" answers [0].
func locate(doc []byte, p JSONPath) (raw []byte, kind jsonparser.ValueType, start, end int, found bool) {
	raw, kind, start, end, depth := locateDeepest(doc, p)
	if depth < len(p) {
		return nil, jsonparser.NotExist, 0, 0, false
	}
	return raw, kind, start, end, true
}

// jsonSpace is what JSON allows around a value.
const jsonSpace = " \t\r\n"

// jsonGet returns the fragment at p as stored (a string keeps its quotes).
func jsonGet(doc []byte, p JSONPath) ([]byte, error) {
	if !ValidJSON(doc) {
		return nil, errNotJSON
	}
	raw, _, _, _, found := locate(doc, p)
	if !found {
		return nil, Errorf(CodePathNotFound, "Nothing at JSON path %s", p)
	}
	return raw, nil
}

// jsonSet replaces (or creates) the value at p and returns the new
// document; an empty doc starts as {}. Only the bytes of the changed node
// are rewritten: the deepest existing node on the path is spliced.
func jsonSet(doc []byte, p JSONPath, value []byte) ([]byte, error) {
	if !ValidJSON(value) {
		return nil, Errorf(CodeInvalidParameters, "The value to set is not JSON")
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = []byte("{}")
	}
	if !ValidJSON(doc) {
		return nil, errNotJSON
	}
	return setInJSON(doc, p, value)
}

// setInJSON is jsonSet of a value and a document already checked to be
// JSON: each check reads the whole document, a third of an incr's time
// under a path in a document of a mebibyte.
func setInJSON(doc []byte, p JSONPath, value []byte) ([]byte, error) {
	if len(p) == 0 {
		return append([]byte(nil), value...), nil
	}
	// The deepest node of the path that exists (the root always does).
	node, kind, start, end, k := locateDeepest(doc, p)
	var replacement []byte
	if k == len(p) {
		replacement = value
	} else {
		var err error
		if replacement, err = extend(node, kind, p[k:], value); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(doc)-len(node)+len(replacement))
	out = append(append(append(out, doc[:start]...), replacement...), doc[end:]...)
	if !ValidJSON(out) {
		if nestingDepth(out) > MaxJSONDepth {
			return nil, errBuildsTooDeep
		}
		return nil, Errorf(CodeInvalidParameters, "Cannot set JSON path %s in this document", p)
	}
	return out, nil
}

func kindOf(raw []byte) jsonparser.ValueType {
	switch {
	case bytes.HasPrefix(raw, []byte("{")):
		return jsonparser.Object
	case bytes.HasPrefix(raw, []byte("[")):
		return jsonparser.Array
	}
	return jsonparser.Unknown
}

// extend adds the missing rest of a path under an existing node: a new
// member of an object, or a new last element of an array.
func extend(node []byte, kind jsonparser.ValueType, rest JSONPath, value []byte) ([]byte, error) {
	child, err := build(rest[1:], value)
	if err != nil {
		return nil, err
	}
	seg := rest[0]
	switch {
	case kind == jsonparser.Object && !isIndex(seg):
		return insertBefore(node, '}', `"`+seg+`":`, child), nil
	case kind == jsonparser.Array && isIndex(seg):
		length := 0
		jsonparser.ArrayEach(node, func([]byte, jsonparser.ValueType, int, error) { length++ })
		if indexOf(seg) != length {
			return nil, Errorf(CodeInvalidParameters, "Array index %s is out of range (length %d; only %d appends)", seg, length, length)
		}
		return insertBefore(node, ']', "", child), nil
	}
	return nil, Errorf(CodeInvalidParameters, "JSON path segment %s does not fit %s", seg, kindName(kind))
}

// build makes the value for a path that does not exist yet: objects for
// member names, a one-element array for [0].
func build(rest JSONPath, value []byte) ([]byte, error) {
	if len(rest) == 0 {
		return value, nil
	}
	var opening, closing []byte // value is copied once, not once a level (64 levels of 10 MiB: 640 MB)
	for i := len(rest) - 1; i >= 0; i-- {
		seg := rest[i]
		if isIndex(seg) && indexOf(seg) != 0 {
			return nil, Errorf(CodeInvalidParameters, "Array index %s is out of range (a new array starts at [0])", seg)
		}
	}
	for i, seg := range rest {
		if isIndex(seg) {
			opening = append(opening, '[')
		} else {
			opening = append(append(append(opening, `{"`...), seg...), `":`...)
		}
		if isIndex(rest[len(rest)-1-i]) {
			closing = append(closing, ']')
		} else {
			closing = append(closing, '}')
		}
	}
	out := make([]byte, 0, len(opening)+len(value)+len(closing))
	return append(append(append(out, opening...), value...), closing...), nil
}

// insertBefore puts prefix+child before the closing byte of a container,
// with a comma when the container is not empty.
func insertBefore(node []byte, closer byte, prefix string, child []byte) []byte {
	i := bytes.LastIndexByte(node, closer)
	inner := bytes.TrimSpace(node[1:i])
	out := append([]byte(nil), node[:i]...)
	if len(inner) > 0 {
		out = append(out, ',')
	}
	out = append(append(out, prefix...), child...)
	return append(out, node[i:]...)
}

func kindName(kind jsonparser.ValueType) string {
	switch kind {
	case jsonparser.Object:
		return "an object"
	case jsonparser.Array:
		return "an array"
	}
	return "a scalar value"
}

// jsonIncr adds delta to the integer at p (a missing field or null counts
// as 0) and returns the new document with the old and new numbers.
func jsonIncr(doc []byte, p JSONPath, delta int64) (newDoc []byte, previous, value int64, err error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = []byte("{}") // a field is made in a new document
		if len(p) == 0 {
			doc = []byte("0") // $ is the document: a counter
		}
	}
	if !ValidJSON(doc) {
		return nil, 0, 0, errNotJSON
	}
	raw, kind, _, _, found := locate(doc, p)
	if found && kind != jsonparser.Null {
		if previous, err = parseCounter(raw); err != nil { // one rule with a counter of its own
			return nil, 0, 0, err
		}
	}
	if value, err = addDelta(previous, delta); err != nil {
		return nil, 0, 0, err
	}
	newDoc, err = setInJSON(doc, p, strconv.AppendInt(nil, value, 10))
	return newDoc, previous, value, err
}
