package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestJSONBodies_BadTextIsRefusedNamingTheItem: encoding/json would turn
// invalid UTF-8 and lone surrogate escapes into U+FFFD, so what kvd stored
// would not be what was sent. Every JSON body refuses them, naming the
// string at fault, and nothing is written.
func TestJSONBodies_BadTextIsRefusedNamingTheItem(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("doc", q), `{"list":[]}`)
	rollback := "/api/v1/sqlite/kv/rollback?" + q + "&to_timestamp=" + strconv.FormatInt(ts.Clock.Now().Unix(), 10)
	cases := []struct {
		name, method, path, body, want string
	}{
		{"batch/set key, invalid UTF-8", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"a","value":"1"},{"key":"a","value":"1"},{"key":"b","value":"1"},{"key":"x` + "\xff" + `","value":"1"}]}`, `items[3].key: invalid UTF-8`},
		{"batch/set key, lone high surrogate", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"x\ud800","value":"1"}]}`, `items[0].key: an unpaired surrogate escape \ud800`},
		{"batch/set key, lone low surrogate", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"x\uDC00\uD800","value":"1"}]}`, `items[0].key: an unpaired surrogate escape \uDC00`},
		{"batch/set key, high surrogate then a non-low escape", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"x\ud800\u0041","value":"1"}]}`, `items[0].key: an unpaired surrogate escape \ud800`},
		{"batch/set value", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"a","value":"v` + "\xc3" + `"}]}`, `items[0].value: invalid UTF-8`},
		{"batch/set content type", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"a","value":"v","content_type":"text/x\udfff"}]}`, `items[0].content_type: an unpaired surrogate escape`},
		{"batch/set member name", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"a","value":"v","` + "\xfe" + `":1}]}`, `items[0]: a member name holds invalid UTF-8`},
		{"batch/get", "POST", batchPath + "get?db=app", `{"keys":["ok","\ud83d"]}`, `keys[1]: an unpaired surrogate escape \ud83d`},
		{"batch/delete", "POST", batchPath + "delete?db=app", `{"keys":["doc` + "\x80" + `"]}`, `keys[0]: invalid UTF-8`},
		{"table rollback keys", "POST", rollback, `{"keys":["doc","\udead"]}`, `keys[1]: an unpaired surrogate escape \udead`},
		{"table rollback exclude_keys", "POST", rollback, `{"exclude_keys":["` + "\xed\xa0\x80" + `"]}`, `exclude_keys[0]: invalid UTF-8`},
		{"push", "POST", kv("doc/push", q+"&path=list"), `{"name":"\ud800"}`, `name: an unpaired surrogate escape \ud800`},
		{"push, a bare string", "POST", kv("doc/push", q+"&path=list"), "\"\xff\"", `body: invalid UTF-8`},
		{"remove by value", "POST", kv("doc/remove", q+"&path=list"), `[1,"\udc00"]`, `[1]: an unpaired surrogate escape \udc00`},
		{"batch key with a control character", "POST", batchPath + "set?" + q,
			`{"items":[{"key":"a\u0000b","value":"1"}]}`, `items[0].key: Key must not contain control characters`},
		{"batch key too long", "POST", batchPath + "delete?db=app", `{"keys":["` + strings.Repeat("k", 1025) + `"]}`, `keys[0]: Key is longer than 1024 bytes`},
		{"put under a path", "PUT", kv("doc", q+"&path=name"), `"\ud800"`, `body: an unpaired surrogate escape \ud800`},
		{"batch/set, a misspelt member", "POST", batchPath + "set?" + q, `{"items":[{"key":"k3","value":"v","tll":60}]}`, `unknown member "tll"`},
		{"batch/delete, a member it does not take", "POST", batchPath + "delete?db=app", `{"keys":["doc"],"prefix":"d"}`, `unknown member "prefix"`},
		{"batch/get, no object", "POST", batchPath + "get?db=app", `null`, `expected a JSON object`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ts.do(t, c.method, c.path, c.body)
			wantError(t, r, 400, "INVALID_PARAMETERS")
			if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, c.want) {
				t.Fatalf("message: got %q, want it to name %q", msg, c.want)
			}
		})
	}
	// Nothing was written: the document is as it was and no key holds U+FFFD.
	if got := string(ts.do(t, "GET", kv("doc", "db=app"), "").Body); got != `{"list":[]}` {
		t.Fatalf("doc after the refused bodies: got %s", got)
	}
	list := ts.do(t, "GET", "/api/v1/sqlite/kv?db=app", "").JSON(t)
	if keys := list["keys"].([]any); len(keys) != 1 {
		t.Fatalf("keys after the refused bodies: got %v, want only doc", keys)
	}
	// A surrogate pair written as escapes is a real character: accepted,
	// and stored as its UTF-8 bytes.
	wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"smile\ud83d\ude00","value":"\uD83D\uDE00"}]}`), 200)
	if got := string(ts.do(t, "GET", kv("smile%F0%9F%98%80", "db=app"), "").Body); got != "\U0001F600" {
		t.Fatalf("value of the key with a surrogate pair: got %q", got)
	}
}

// TestTableRollback_AnEmptyKeyListSelectsNothing: {"keys":[]} or
// {"keys":null} is refused (a client that built an empty list did not
// mean "every key"), and so is a misspelt list; {"exclude_keys":[]} excludes nothing, so it rolls the
// whole table back.
func TestTableRollback_AnEmptyKeyListSelectsNothing(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	t0 := ts.Clock.Now().Unix()
	ts.do(t, "PUT", kv("a", q), "a1")
	ts.do(t, "PUT", kv("b", q), "b1")
	ts.Clock.Advance(10 * time.Second)
	ts.do(t, "PUT", kv("a", q), "a2")
	ts.do(t, "PUT", kv("b", q), "b2")
	rollback := "/api/v1/sqlite/kv/rollback?db=app&confirm=yes&to_timestamp=" + strconv.FormatInt(t0, 10)
	// Nor is a body that names no list kvd knows, or is no object.
	for _, body := range []string{`{"keys":[]}`, `{"keys":null}`, `{"keys":[],"exclude_keys":["a"]}`, `{"kyes":["a"]}`, `{"excludeKeys":["a"]}`, `null`, `[]`} {
		wantError(t, ts.do(t, "POST", rollback, body), 400, "INVALID_PARAMETERS")
	}
	if msg := ts.do(t, "POST", rollback, `{"kyes":["a"]}`).JSON(t)["message"].(string); !strings.Contains(msg, `unknown member "kyes"`) {
		t.Fatalf("message for a misspelt member: got %q", msg)
	}
	r := ts.do(t, "POST", rollback, `{"keys":[]}`)
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "keys is empty") {
		t.Fatalf("message: got %q", msg)
	}
	for key, want := range map[string]string{"a": "a2", "b": "b2"} {
		if got := string(ts.do(t, "GET", kv(key, "db=app"), "").Body); got != want {
			t.Fatalf("%s after the refused rollbacks: got %q, want %q", key, got, want)
		}
	}
	done := ts.do(t, "POST", rollback, `{"exclude_keys":[]}`)
	if m := done.JSON(t); m["count"] != 2.0 {
		t.Fatalf("rollback excluding nothing: got %s, want both keys", done.Body)
	}
	for key, want := range map[string]string{"a": "a1", "b": "b1"} {
		if got := string(ts.do(t, "GET", kv(key, "db=app"), "").Body); got != want {
			t.Fatalf("%s after the rollback: got %q, want %q", key, got, want)
		}
	}
}

// JSON is UTF-8: a path whose member name is not is refused, and a value
// with JSON's shape but other bytes in a string is stored as binary, so
// every answer that shows it stays JSON a client can parse.
func TestJSON_IsUTF8InPathsAndStoredValues(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantError(t, ts.do(t, "PUT", kv("doc", q+"&path=%FF"), `1`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("doc", q+"&path=a.%ED%A0%80"), `1`), 400, "INVALID_PARAMETERS")
	if r := ts.do(t, "GET", kv("doc", "db=app"), ""); r.Status != 404 {
		t.Fatalf("doc after refused path writes: status %d, want 404", r.Status)
	}
	wantStatus(t, ts.do(t, "PUT", kv("odd", q), "{\"\xff\":1}"), 200)
	if ct := ts.do(t, "GET", kv("odd", "db=app"), "").Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Fatalf("Content-Type of JSON-shaped bytes that are not UTF-8: %q", ct)
	}
	wantError(t, ts.do(t, "GET", kv("odd", "db=app&path=%24"), ""), 400, "INVALID_PARAMETERS")
	for _, path := range []string{batchPath + "get?db=app", "/api/v1/sqlite/kv/odd/history?db=app"} {
		body := `{"keys":["odd"]}`
		method := "POST"
		if strings.Contains(path, "history") {
			method, body = "GET", ""
		}
		r := ts.do(t, method, path, body)
		if !utf8.Valid(r.Body) || !json.Valid(r.Body) || !strings.Contains(string(r.Body), base64.StdEncoding.EncodeToString([]byte("{\"\xff\":1}"))) {
			t.Fatalf("%s: got %q, want JSON with the value in base64", path, r.Body)
		}
	}
}

// A document that names a member twice is read by JavaScript's JSON.parse
// and Go's encoding/json with the last one. A path reads and writes that
// one too: before, it took the first, so an incr at the path answered 11
// while every client still read 2.
func TestJSONPath_OfANameGivenTwiceIsTheLast(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("doc", q), `{"a":1,"b":{"c":0},"a":2}`), 200)
	if got := string(ts.do(t, "GET", kv("doc", "db=app&path=a"), "").Body); got != "2" {
		t.Fatalf("GET at a: got %s, want 2", got)
	}
	if m := ts.do(t, "POST", kv("doc/incr", "db=app&path=a&delta=10"), "").JSON(t); m["previous"] != 2.0 || m["value"] != 12.0 {
		t.Fatalf("incr at a: got %v, want previous 2, value 12", m)
	}
	wantStatus(t, ts.do(t, "PUT", kv("doc", "db=app&path=b.c"), `5`), 200)
	var decoded struct {
		A int
		B struct{ C int }
	}
	if err := json.Unmarshal(ts.do(t, "GET", kv("doc", "db=app"), "").Body, &decoded); err != nil || decoded.A != 12 || decoded.B.C != 5 {
		t.Fatalf("the document as encoding/json reads it: %+v, %v", decoded, err)
	}
}
