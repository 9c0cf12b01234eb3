package sqlitekv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestJSONPathCases_Parse(t *testing.T) {
	good := map[string]string{
		"a": "$.a", "$.a.b": "$.a.b", "items[2].price": "$.items[2].price", "a[0][1]": "$.a[0][1]", "$": "$", "[3]": "$[3]", "a[007]": "$.a[7]",
		"$[3]": "$[3]", "$[0][1].a": "$[0][1].a",
	}
	for in, want := range good {
		p, err := ParseJSONPath(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseJSONPath(%q): got %v, %v; want %s", in, p, err, want)
		}
		if again, err := ParseJSONPath(want); err != nil || again.String() != want {
			t.Errorf("ParseJSONPath(%q), the path printed: got %v, %v", want, again, err)
		}
	}
	for _, bad := range []string{"", "$.", "$[", "$[]", "$[x]", "a..b", ".a", "a.", "a[", "a[]", "a[-1]", "a[x]", "a]b", `a"b`, "a\\b", "a[1", "a\x01", "a[1234567890]", "\xff", "a.\xed\xa0\x80"} {
		if _, err := ParseJSONPath(bad); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("ParseJSONPath(%q): got %v, want INVALID_PARAMETERS", bad, err)
		}
	}
}

func mustPath(t testing.TB, s string) JSONPath {
	t.Helper()
	p, err := ParseJSONPath(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJSONPathCases_SetGetIncr(t *testing.T) {
	cases := []struct{ doc, path, value, want string }{
		{`{"a":1}`, "a", `2`, `{"a":2}`},
		{`{"a":{"b":"x"}}`, "a.b", `"y"`, `{"a":{"b":"y"}}`},
		{`{}`, "a.b.c", `true`, `{"a":{"b":{"c":true}}}`},
		{``, "x", `[1]`, `{"x":[1]}`},
		{`{"l":[1,2]}`, "l[1]", `5`, `{"l":[1,5]}`},
		{`{"l":[1,2]}`, "l[2]", `3`, `{"l":[1,2,3]}`},
		{`{"l":[]}`, "l[0].n", `1`, `{"l":[{"n":1}]}`},
		{`{"a" : { } }`, "a.k", `null`, `{"a" : { "k":null} }`},
		{`{"a":1}`, "$", `[true]`, `[true]`},
		{`{"m":{"x":1},"x":2}`, "x", `3`, `{"m":{"x":1},"x":3}`},
	}
	for _, c := range cases {
		got, err := jsonSet([]byte(c.doc), mustPath(t, c.path), []byte(c.value))
		if err != nil || string(got) != c.want {
			t.Errorf("jsonSet(%s, %s, %s): got %s, %v; want %s", c.doc, c.path, c.value, got, err, c.want)
			continue
		}
		if frag, err := jsonGet(got, mustPath(t, c.path)); err != nil || !jsonEqual(frag, []byte(c.value)) {
			t.Errorf("jsonGet after set %s: got %s, %v", c.path, frag, err)
		}
	}
	for _, c := range []struct{ doc, path, value string }{
		{`{"l":[1]}`, "l[3]", `1`}, {`{"a":1}`, "a.b", `1`}, {`{"a":1}`, "a[0]", `1`}, {`[1]`, "k", `1`},
		{`not json`, "a", `1`}, {`{}`, "a", `not json`}, {`{}`, "a[1]", `1`},
	} {
		if _, err := jsonSet([]byte(c.doc), mustPath(t, c.path), []byte(c.value)); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("jsonSet(%s, %s, %s): got %v, want INVALID_PARAMETERS", c.doc, c.path, c.value, err)
		}
	}
	// An index steps only into an array, a name only into an object: never
	// into a sibling that happens to be one.
	for _, c := range []struct{ doc, path string }{
		{`{"a":1}`, "b"}, {`{"b":true,"c":[5,6]}`, "b[0]"}, {`{"user":{"name":"bob","roles":["admin"]}}`, "user.name[0]"},
		{`{"[0]":"member","list":[1]}`, "[0]"}, {`[{"a":1}]`, "a"}, {`{"a":[1],"b":{"c":2}}`, "a.c"},
	} {
		if _, err := jsonGet([]byte(c.doc), mustPath(t, c.path)); CodeOf(err) != CodePathNotFound {
			t.Errorf("jsonGet(%s, %s): got %v, want PATH_NOT_FOUND", c.doc, c.path, err)
		}
		if c.path == "b" {
			continue // a missing member is created, as above
		}
		if got, err := jsonSet([]byte(c.doc), mustPath(t, c.path), []byte(`0`)); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("jsonSet(%s, %s): got %s, %v; want INVALID_PARAMETERS", c.doc, c.path, got, err)
		}
		if got, _, _, err := jsonIncr([]byte(c.doc), mustPath(t, c.path), 1); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("jsonIncr(%s, %s): got %s, %v; want INVALID_PARAMETERS", c.doc, c.path, got, err)
		}
	}
	doc, prev, next, err := jsonIncr([]byte(`{"n":41,"s":"x","z":null}`), mustPath(t, "n"), 1)
	if err != nil || prev != 41 || next != 42 || string(doc) != `{"n":42,"s":"x","z":null}` {
		t.Errorf("incr: got %s %d %d %v", doc, prev, next, err)
	}
	if _, _, next, err := jsonIncr([]byte(`{"z":null}`), mustPath(t, "z"), -3); err != nil || next != -3 {
		t.Errorf("incr of null: got %d %v", next, err)
	}
	for _, bad := range []struct {
		doc   string
		delta int64
	}{{`{"n":"x"}`, 1}, {`{"n":1.5}`, 1}, {`{"n":9223372036854775807}`, 1}, {`{"n":-9223372036854775808}`, -1}} {
		if _, _, _, err := jsonIncr([]byte(bad.doc), mustPath(t, "n"), bad.delta); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("jsonIncr(%s, %d): got %v", bad.doc, bad.delta, err)
		}
	}
}

// jsonEqual compares two JSON texts as values, numbers by their text: a
// number beyond float64 (2e310, say) is valid JSON, and kvd keeps it as
// sent.
func jsonEqual(a, b []byte) bool {
	x, okA := decodeJSON(a)
	y, okB := decodeJSON(b)
	return okA && okB && reflect.DeepEqual(x, y)
}

// decodeJSON decodes one JSON value with nothing after it.
func decodeJSON(b []byte) (v any, ok bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil, false
	}
	_, err := d.Token()
	return v, err == io.EOF
}

// FuzzJSONPathRoundTrip: parsing never panics; a successful set yields
// valid JSON whose value at the path is what was set; incr yields valid
// JSON or an INVALID_PARAMETERS error.
func FuzzJSONPathRoundTrip(f *testing.F) {
	for _, s := range [][3]string{
		{`{"a":{"b":[1,2]}}`, "a.b[1]", `"x"`}, {`{}`, "x.y", `{"z":null}`}, {`[[]]`, "[0][0]", `1`},
		{`{"a":1}`, "$", `2`}, {` {"a" : [ ] } `, "a[0]", `[]`}, {`{"é":1}`, "é", `2`},
		{`{"b":true,"c":[5,6]}`, "b[1]", `"x"`}, {`{"a":1,"a":{"b":2}}`, "a.b", `3`},
	} {
		f.Add([]byte(s[0]), s[1], []byte(s[2]), int64(1))
	}
	f.Fuzz(func(t *testing.T, doc []byte, path string, value []byte, delta int64) {
		p, err := ParseJSONPath(path)
		if err != nil {
			if CodeOf(err) != CodeInvalidParameters {
				t.Fatalf("parse error code %q", CodeOf(err))
			}
			return
		}
		checkAgainstReference(t, doc, p, value)
		if got, err := jsonSet(doc, p, value); err == nil {
			if !ValidJSON(got) {
				t.Fatalf("jsonSet produced invalid JSON %q", got)
			}
			frag, err := jsonGet(got, p)
			if err != nil || !jsonEqual(frag, value) {
				t.Fatalf("after jsonSet(%q, %s, %q) = %q: get %q, %v", doc, p, value, got, frag, err)
			}
		} else if c := CodeOf(err); c != CodeInvalidParameters {
			t.Fatalf("jsonSet error code %q", c)
		}
		if got, _, next, err := jsonIncr(doc, p, delta); err == nil {
			frag, gerr := jsonGet(got, p)
			if !ValidJSON(got) || gerr != nil || string(frag) != fmt.Sprint(next) {
				t.Fatalf("jsonIncr(%q, %s) = %q: at path %q, want %d", doc, p, got, frag, next)
			}
		} else if c := CodeOf(err); c != CodeInvalidParameters {
			t.Fatalf("jsonIncr error code %q", c)
		}
	})
}

// checkAgainstReference compares jsonGet and jsonSet with what the path
// means on the decoded document (refGet, refSet). Of a name given twice,
// decoding keeps the last, and so does kvd's path.
func checkAgainstReference(t *testing.T, doc []byte, p JSONPath, value []byte) {
	t.Helper()
	if len(bytes.Trim(doc, jsonSpace)) == 0 {
		doc = []byte("{}")
	}
	decoded, ok := decodeJSON(doc)
	if !ok || !ValidJSON(doc) { // decoding turns bytes that are not UTF-8 into U+FFFD
		return
	}
	want, found := refGet(decoded, p)
	got, err := jsonGet(doc, p)
	if found != (err == nil) || found && !jsonEqual(got, mustMarshal(t, want)) {
		t.Fatalf("jsonGet(%q, %s) = %q, %v; the path leads to %v (found %v)", doc, p, got, err, want, found)
	}
	v, ok := decodeJSON(value)
	if !ok || !ValidJSON(value) {
		return
	}
	want, ok = refSet(decoded, p, v)
	if got, err = jsonSet(doc, p, value); ok != (err == nil) || ok && !jsonEqual(got, mustMarshal(t, want)) {
		t.Fatalf("jsonSet(%q, %s, %q) = %q, %v; want %s (settable %v)", doc, p, value, got, err, mustMarshal(t, want), ok)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refGet is the value at p in a decoded document.
func refGet(v any, p JSONPath) (any, bool) {
	for _, seg := range p {
		switch node := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = node[seg]; !ok || isIndex(seg) {
				return nil, false
			}
		case []any:
			if !isIndex(seg) || indexOf(seg) >= len(node) {
				return nil, false
			}
			v = node[indexOf(seg)]
		default:
			return nil, false
		}
	}
	return v, true
}

// refSet sets p in a decoded document as jsonSet means it: a missing
// member is created, an array grows by one at [len].
func refSet(v any, p JSONPath, value any) (any, bool) {
	if len(p) == 0 {
		return value, true
	}
	seg, rest := p[0], p[1:]
	switch node := v.(type) {
	case map[string]any:
		if isIndex(seg) {
			return nil, false
		}
		child, exists := node[seg]
		child, ok := refSetOrBuild(child, exists, rest, value)
		node[seg] = child
		return node, ok
	case []any:
		if !isIndex(seg) || indexOf(seg) > len(node) {
			return nil, false
		}
		if i := indexOf(seg); i < len(node) {
			child, ok := refSet(node[i], rest, value)
			node[i] = child
			return node, ok
		}
		child, ok := refSetOrBuild(nil, false, rest, value)
		return append(node, child), ok
	}
	return nil, false
}

func refSetOrBuild(child any, exists bool, p JSONPath, value any) (any, bool) {
	if exists || len(p) == 0 {
		return refSet(child, p, value)
	}
	grandchild, ok := refSetOrBuild(nil, false, p[1:], value)
	if isIndex(p[0]) {
		return []any{grandchild}, ok && indexOf(p[0]) == 0
	}
	return map[string]any{p[0]: grandchild}, ok
}

// TestJSONSet_ANewPathCopiesTheValueOnce: the objects and arrays a set
// makes for a path that does not exist yet wrap the value in one copy,
// not one a level (64 levels of a 10 MiB value allocated 640 MB).
func TestJSONSet_ANewPathCopiesTheValueOnce(t *testing.T) {
	const size = 1 << 20
	value := []byte(`"` + strings.Repeat("x", size) + `"`)
	p, err := ParseJSONPath("a" + strings.Repeat(".b[0]", 31) + ".c")
	must(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := jsonSet([]byte(`{"z":1}`), p, value)
	runtime.ReadMemStats(&after)
	must(t, err)
	if got, err := jsonGet(out, p); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("the value set under 64 new levels reads back as %d bytes, %v", len(got), err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8*size {
		t.Errorf("a set under 64 new levels of a %d MB value allocated %d MB", size>>20, allocated>>20)
	}
}
