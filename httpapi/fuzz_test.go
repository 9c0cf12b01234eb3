package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// FuzzParseKVPath: whatever the escaped path, decoding never panics, and
// a key it accepts satisfies the key contract. Of a path the server's
// parser accepts, escapedPath reads the path as it was sent.
func FuzzParseKVPath(f *testing.F) {
	for _, seed := range []string{"users%2Falice", "a/incr", "a%2Fincr", "batch/get", "x/y/z/history", "%", "%zz", "a%00b", "", "/", "snapshot", "%E2%82%AC/pop", "%61%62", "100%25", "a%252F", "caf\xc3\xa9%2Fincr", "a\xa3"} {
		f.Add(seed)
	}
	rt := (&Server{}).newRouter()
	f.Fuzz(func(t *testing.T, rest string) {
		sent, _, _ := strings.Cut(kvPrefix+rest, "?")
		if u, err := url.ParseRequestURI(kvPrefix + rest); err == nil && escapedPath(u) != sent {
			t.Fatalf("escapedPath %q, sent %q", escapedPath(u), sent)
		}
		target, err := rt.parseKVPath(kvPrefix + rest)
		if err != nil {
			if sqlitekv.CodeOf(err) != sqlitekv.CodeInvalidParameters {
				t.Fatalf("rejection with code %q, want INVALID_PARAMETERS", sqlitekv.CodeOf(err))
			}
			return
		}
		if target.table {
			if target.key != "" || !rt.tableOps[target.op] {
				t.Fatalf("table target %+v", target)
			}
			return
		}
		if err := sqlitekv.ValidateKey(target.key); err != nil {
			t.Fatalf("accepted key %q violates the contract: %v", target.key, err)
		}
		if target.op != "" && !rt.keyOps[target.op] {
			t.Fatalf("unknown op %q accepted", target.op)
		}
	})
}

// FuzzBatchBodies sends arbitrary bodies to the batch endpoints of a real
// server on real SQLite files: never a 5xx, every rejection a JSON error
// with a code.
func FuzzBatchBodies(f *testing.F) {
	for _, seed := range []string{
		`{"items":[{"key":"a","value":"1"}]}`, `{"keys":["a","b"]}`, `{"items":[{"key":"a","value":"eA==","encoding":"base64","ttl":5}]}`,
		`{"items":[{"key":"a","value":{"x":1}}]}`, `[]`, `{`, `{"keys":[1,null,"\u0000"]}`, `{"items":[{"key":"","value":""}]}`,
	} {
		f.Add("set", seed)
		f.Add("get", seed)
		f.Add("delete", seed)
	}
	resolver, err := sqlitekv.NewResolver(f.TempDir(), nil, false)
	if err != nil {
		f.Fatal(err)
	}
	reg := actors.NewRegistry(actors.Config{Resolver: resolver, Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal}})
	f.Cleanup(func() { reg.Close() })
	srv := New(Config{Registry: reg, MaxValueBytes: 1 << 12, Metrics: NewMetrics()})
	f.Fuzz(func(t *testing.T, op, body string) {
		if op != "set" && op != "get" && op != "delete" {
			return
		}
		req := httptest.NewRequest(http.MethodPost, kvPrefix+"batch/"+op+"?db=fuzz&create_db_if_missing=true", strings.NewReader(body))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code >= 400 {
			var e errorBody
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code == "" || e.StatusCode != rec.Code {
				t.Fatalf("rejection without a JSON error: %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// FuzzCheckJSONText: the scanner never panics, on any input; and on valid
// JSON it accepts, encoding/json replaces nothing, which is what it is for:
// no string decodes to U+FFFD unless the document spelled one out.
func FuzzCheckJSONText(f *testing.F) {
	for _, seed := range []string{`{"keys":["a","\ud83d\ude00"]}`, `"\ud800"`, `["\udc00\ud800"]`, "\"\xff\"", `{"a\ud800":1}`,
		`[{}, "x", {"b": [1, "\u0041"]}]`, `"\ud800\u`, `{"items":[{"key":"x\uDBFF\uDFFF"}]}`, "\"\xed\xa0\x80\"", `"\\ud800"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := checkJSONText(doc)
		if err != nil && sqlitekv.CodeOf(err) != sqlitekv.CodeInvalidParameters {
			t.Fatalf("rejection with code %q", sqlitekv.CodeOf(err))
		}
		if err != nil || !json.Valid(doc) {
			return
		}
		if !utf8.Valid(doc) {
			t.Fatalf("accepted invalid UTF-8: %q", doc)
		}
		spelled := bytes.Contains(doc, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(doc), []byte(`\ufffd`))
		var v any
		if json.Unmarshal(doc, &v) == nil && !spelled && strings.ContainsRune(fmt.Sprint(v), utf8.RuneError) {
			t.Fatalf("accepted %q, which decodes with a replacement character: %v", doc, v)
		}
	})
}

// FuzzCheckMembers: on valid JSON as kvd takes it (checkJSONText), the
// one-pass scanner refuses exactly
// what a walk of encoding/json's tokens finds: a member name given twice
// in an object that decodes into a struct, or one no field has exactly.
func FuzzCheckMembers(f *testing.F) {
	for _, seed := range []string{
		`{"items":[{"key":"a","value":"1"}]}`, `{"items":[{"key":"a","value":"1","key":"b"}]}`, `{"Items":[]}`,
		`{"items":{"key":"a"}}`, `{"items":[{"key":"a","value":{"x":1,"x":2}}]}`, `{"keys":["a"],"exclude_keys":[]}`,
		`{"k\u0065ys":[1]}`, `{"keys":[],"keys":[]}`, `[{"a":1}]`, `{"items":[1,[2],{"key":3}]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		for _, into := range []any{&batchSetBody{}, &batchKeysBody{}, &rollbackTableBody{}} {
			got := checkMembers([]byte(body), into)
			if checkJSONText([]byte(body)) != nil {
				continue // refused before (decodeJSONBody); above, only no panic counts
			}
			d := json.NewDecoder(strings.NewReader(body))
			if want := membersByTokens(d, reflect.TypeOf(into)); (got == nil) != (want == nil) {
				t.Fatalf("%T %s: scanner %v, tokens %v", into, body, got, want)
			}
		}
	})
}

// membersByTokens is checkMembers written with encoding/json's tokens.
func membersByTokens(d *json.Decoder, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice {
		return d.Decode(new(json.RawMessage))
	}
	var raw json.RawMessage
	if err := d.Decode(&raw); err != nil {
		return err
	}
	inner := json.NewDecoder(bytes.NewReader(raw))
	tok, _ := inner.Token()
	switch {
	case tok == json.Delim('[') && t.Kind() == reflect.Slice:
		for inner.More() {
			if err := membersByTokens(inner, t.Elem()); err != nil {
				return err
			}
		}
	case tok == json.Delim('{') && t.Kind() == reflect.Struct:
		seen := map[string]bool{}
		for inner.More() {
			name, _ := inner.Token()
			field, ok := fieldsOf(t)[name.(string)]
			if seen[name.(string)] || !ok {
				return fmt.Errorf("member %q", name)
			}
			seen[name.(string)] = true
			if err := membersByTokens(inner, field); err != nil {
				return err
			}
		}
	}
	return nil
}
