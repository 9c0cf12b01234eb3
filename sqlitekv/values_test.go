package sqlitekv

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestInferContentType(t *testing.T) {
	cases := []struct{ declared, body, want string }{
		{"", `{"a":1}`, "application/json"},
		{"application/json", `{"a":1}`, "application/json"},
		{"application/json; charset=utf-8", `[1]`, "application/json; charset=utf-8"},
		{"application/json", `not json`, "text/plain"},
		{"", `not json`, "text/plain"},
		{"application/json", "\xff\xfe", "application/octet-stream"},
		{"", "{\"\xff\":1}", "application/octet-stream"}, // JSON's shape, but JSON is UTF-8
		{"application/json", "[\"\xed\xa0\x80\"]", "application/octet-stream"},
		{"", "", "text/plain"},
		{"image/png", "\x89PNG", "image/png"},
		{"text/html", "<p>", "text/html"},
	}
	for _, c := range cases {
		got, err := InferContentType(c.declared, []byte(c.body))
		if err != nil || got != c.want {
			t.Errorf("InferContentType(%q, %q): got %q, %v; want %q", c.declared, c.body, got, err, c.want)
		}
	}
	for _, bad := range []string{"text/plain\x01", "not a type", "a/b; c", "foo", "foo; charset=utf-8", string(make([]byte, 300))} {
		if _, err := InferContentType(bad, nil); CodeOf(err) != CodeInvalidParameters {
			t.Errorf("InferContentType(%q): got %v, want INVALID_PARAMETERS", bad, err)
		}
	}
}

// FuzzInferContentType: a label is either refused as INVALID_PARAMETERS or
// is a media type that parses, and JSON is claimed only for valid JSON.
func FuzzInferContentType(f *testing.F) {
	f.Add("application/json", []byte(`{"a":1}`))
	f.Add("", []byte("\xff"))
	f.Add("text/plain; charset=utf-8", []byte("hi"))
	f.Fuzz(func(t *testing.T, declared string, body []byte) {
		ct, err := InferContentType(declared, body)
		if err != nil {
			if CodeOf(err) != CodeInvalidParameters {
				t.Fatalf("error code %q", CodeOf(err))
			}
			return
		}
		mediaType, _, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("label %q does not parse: %v", ct, err)
		}
		if mediaType == contentTypeJSON && !ValidJSON(body) {
			t.Fatalf("labelled %q but not JSON: %q", ct, body)
		}
		if ct == contentTypeText && !utf8.Valid(body) {
			t.Fatalf("labelled text but not UTF-8: %q", body)
		}
	})
}

func TestValidateKey(t *testing.T) {
	for _, good := range []string{"a", "users/alice", "é", string(make([]byte, 0)) + "x"} {
		if err := ValidateKey(good); err != nil {
			t.Errorf("ValidateKey(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "a\x00", "a\nb", "\xff", "a\u0085b", string(make([]byte, 1025))} {
		if err := ValidateKey(bad); err == nil {
			t.Errorf("ValidateKey(%q): got nil, want an error", bad)
		}
	}
}

func TestJSONTooDeep(t *testing.T) {
	deep := func(open, inner, close string) string {
		return strings.Repeat(open, MaxJSONDepth+1) + inner + strings.Repeat(close, MaxJSONDepth+1)
	}
	cases := []struct {
		doc  string
		want bool
	}{
		{deep("[", "", "]"), true},
		{deep(`{"a":`, `1e999`, "}"), true},
		{deep("[", `"]]][[[\"",null`, "]"), true},
		{` ` + deep("[", "", "]") + "\n", true},
		{`[[1]]`, false},
		{strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth), false}, // deep, not too deep
		{deep("[", "", "]") + "]", false},
		{deep("[", "", "]") + "[]", false}, // two values
		{deep("[", "1 2", "]"), false},
		{deep("[", "", "]")[1:], false},
		{deep(`{"a":`, ``, "}"), false},
		{deep("[", "\"\xff\"", "]"), false}, // JSON is UTF-8
		{strings.Repeat("[", 3*MaxJSONDepth), false},
	}
	for i, c := range cases {
		if got := JSONTooDeep([]byte(c.doc)); got != c.want {
			t.Errorf("case %d (%.40q...): got %v, want %v", i, c.doc, got, c.want)
		}
	}
}
