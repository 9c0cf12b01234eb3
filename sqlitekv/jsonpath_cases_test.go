package sqlitekv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"testing"
)

func TestJSONPathCases_Parse(t *testing.T) {
	good := map[string]string{
		"a": "$.a", "$.a.b": "$.a.b", "items[2].price": "$.items[2].price", "a[0][1]": "$.a[0][1]", "$": "$", "[3]": "$[3]", "a[007]": "$.a[7]",
	}
	for in, want := range good {
		p, err := ParseJSONPath(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseJSONPath(%q): got %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "$.", "a..b", ".a", "a.", "a[", "a[]", "a[-1]", "a[x]", "a]b", `a"b`, "a\\b", "a[1", "a\x01", "a[1234567890]"} {
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
	if _, err := jsonGet([]byte(`{"a":1}`), mustPath(t, "b")); CodeOf(err) != CodePathNotFound {
		t.Errorf("missing path: got %v", err)
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
