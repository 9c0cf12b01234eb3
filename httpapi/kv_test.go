package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

func TestPutGet_StoresBytesAndLabelsContentType(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name, body, contentType, wantType string
	}{
		{"json object with default header", `{"user":"alice","score":42}`, "application/json", "application/json"},
		{"json without header", `[1,2,3]`, "", "application/json"},
		{"text sent as json", `hello world`, "application/json", "text/plain"},
		{"text without header", `plain text`, "", "text/plain"},
		{"binary sent as json", "\xff\x00\xfe", "application/json", "application/octet-stream"},
		{"declared type kept", `<b>hi</b>`, "text/html; charset=utf-8", "text/html; charset=utf-8"},
		{"empty value", ``, "", "text/plain"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "k" + strconv.Itoa(i)
			var hdr []string
			if c.contentType != "" {
				hdr = []string{"Content-Type", c.contentType}
			}
			put := ts.do(t, "PUT", kv(key, "db=app&create_db_if_missing=true"), c.body, hdr...)
			wantStatus(t, put, 200)
			m := put.JSON(t)
			if m["status"] != "ok" || m["success"] != true || m["key"] != key || m["created"] != true {
				t.Fatalf("put body: got %s", put.Body)
			}
			get := ts.do(t, "GET", kv(key, "db=app"), "")
			wantStatus(t, get, 200)
			if string(get.Body) != c.body {
				t.Fatalf("value: got %q, want %q", get.Body, c.body)
			}
			if got := get.Header.Get("Content-Type"); got != c.wantType {
				t.Fatalf("Content-Type: got %q, want %q", got, c.wantType)
			}
		})
	}
}

func TestPut_ReportsCreatedOnlyTheFirstTime(t *testing.T) {
	ts := newTestServer(t)
	first := ts.do(t, "PUT", kv("users%2Falice", "db=app&create_db_if_missing=true"), `1`)
	second := ts.do(t, "PUT", kv("users%2Falice", "db=app"), `2`)
	if first.JSON(t)["created"] != true || second.JSON(t)["created"] != false {
		t.Fatalf("created: got %s then %s, want true then false", first.Body, second.Body)
	}
	if second.JSON(t)["key"] != "users/alice" {
		t.Fatalf("key: got %s, want users/alice", second.Body)
	}
}

func TestGet_MetadataHeaders(t *testing.T) {
	ts := newTestServer(t)
	created := ts.Clock.Now().Unix()
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), `v1`)
	ts.Clock.Advance(5 * time.Second)
	put := ts.do(t, "PUT", kv("a", "db=app&ttl=60"), `v2`)
	get := ts.do(t, "GET", kv("a", "db=app"), "")
	h := get.Header
	if got := h.Get("X-Created-At"); got != strconv.FormatInt(created, 10) {
		t.Errorf("X-Created-At: got %s, want %d", got, created)
	}
	if got := h.Get("X-Updated-At"); got != strconv.FormatInt(created+5, 10) {
		t.Errorf("X-Updated-At: got %s, want %d", got, created+5)
	}
	if got := h.Get("X-Expire-At"); got != strconv.FormatInt(created+65, 10) {
		t.Errorf("X-Expire-At: got %s, want %d", got, created+65)
	}
	if h.Get("ETag") == "" || h.Get("ETag") != put.Header.Get("ETag") {
		t.Errorf("ETag: got %q, want the PUT's %q", h.Get("ETag"), put.Header.Get("ETag"))
	}
	if h.Get("X-KV-Reference") != "" {
		t.Errorf("X-KV-Reference: got %q on a plain value", h.Get("X-KV-Reference"))
	}
	notModified := ts.do(t, "GET", kv("a", "db=app"), "", "If-None-Match", h.Get("ETag"))
	wantStatus(t, notModified, http.StatusNotModified)
}

func TestHead_AnswersWithoutBody(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true&ttl=10"), `{"x":1}`)
	head := ts.do(t, "HEAD", kv("a", "db=app"), "")
	wantStatus(t, head, 200)
	if len(head.Body) != 0 || head.Header.Get("ETag") == "" || head.Header.Get("X-Expire-At") == "" {
		t.Fatalf("HEAD: got body %q headers %v", head.Body, head.Header)
	}
	wantStatus(t, ts.do(t, "HEAD", kv("missing", "db=app"), ""), 404)
	ts.Clock.Advance(11 * time.Second)
	wantStatus(t, ts.do(t, "HEAD", kv("a", "db=app"), ""), 404)
}

func TestDelete_RemovesKeyAndReportsMissing(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), `x`)
	del := ts.do(t, "DELETE", kv("a", "db=app"), "")
	wantStatus(t, del, 200)
	if m := del.JSON(t); m["deleted"] != true || m["key"] != "a" || m["success"] != true || m["status"] != "ok" {
		t.Fatalf("delete body: got %s", del.Body)
	}
	wantError(t, ts.do(t, "GET", kv("a", "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantError(t, ts.do(t, "DELETE", kv("a", "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantError(t, ts.do(t, "DELETE", kv("a", "db=app&table=never_written"), ""), 404, "KEY_NOT_FOUND")
}

func TestTables_AreSeparateAndValidated(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true&table=first"), `1`)
	ts.do(t, "PUT", kv("a", "db=app&table=second"), `2`)
	if got := ts.do(t, "GET", kv("a", "db=app&table=first"), "").Body; string(got) != "1" {
		t.Fatalf("table first: got %q, want 1", got)
	}
	if got := ts.do(t, "GET", kv("a", "db=app&table=second"), "").Body; string(got) != "2" {
		t.Fatalf("table second: got %q, want 2", got)
	}
	wantError(t, ts.do(t, "GET", kv("a", "db=app&table=third"), ""), 404, "KEY_NOT_FOUND")
	for _, bad := range []string{"1abc", "a-b", "a%20b", "x;DROP%20TABLE%20kv_store", "", strings.Repeat("a", 64), "sqlite_master"} {
		wantError(t, ts.do(t, "PUT", kv("a", "db=app&table="+bad), `1`), 400, "INVALID_PARAMETERS")
	}
}

func TestKeys_EscapedSlashesAndOperationWords(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	// "a/incr" as a key needs its slash escaped; raw, it is the incr operation.
	wantStatus(t, ts.do(t, "PUT", kv("a%2Fincr", q), `stored`), 200)
	incr := ts.do(t, "POST", kv("a/incr", q), "")
	wantStatus(t, incr, 200)
	if got := string(ts.do(t, "GET", kv("a%2Fincr", "db=app"), "").Body); got != "stored" {
		t.Fatalf("key a/incr: got %q, want stored", got)
	}
	if got := string(ts.do(t, "GET", kv("a", "db=app"), "").Body); got != "1" {
		t.Fatalf("key a after incr: got %q, want 1", got)
	}
	// Hierarchical keys with raw slashes work when the last segment is no operation word.
	ts.do(t, "PUT", kv("users/bob/profile", q), `p`)
	if got := string(ts.do(t, "GET", kv("users%2Fbob%2Fprofile", "db=app"), "").Body); got != "p" {
		t.Fatalf("hierarchical key: got %q, want p", got)
	}
	// A key is its path segment unescaped once, however the client escaped it.
	for escaped, key := range map[string]string{"100%25": "100%", "a%252Fincr": "a%2Fincr", "%61%62": "ab", "a%20b": "a b"} {
		ts.do(t, "PUT", kv(escaped, q), key)
		if got := string(ts.do(t, "GET", kv(url.PathEscape(key), "db=app"), "").Body); got != key {
			t.Fatalf("key sent as %q: got %q, want it stored under %q", escaped, got, key)
		}
	}
	wantError(t, ts.do(t, "GET", kv("a/incr", "db=app"), ""), 405, "METHOD_NOT_ALLOWED")
	wantError(t, ts.do(t, "PUT", kv("", q), "x"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv(strings.Repeat("k", 1025), q), "x"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("a%01b", q), "x"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("a%ffb", q), "x"), 400, "INVALID_PARAMETERS")
	wantStatus(t, ts.do(t, "PUT", kv(strings.Repeat("k", 1024), q), "x"), 200)
}

// curl and other clients may send a key's UTF-8 unescaped, beside an
// escaped slash: the slash stays part of the key.
func TestKeys_RawUTF8BesideAnEscapedSlash(t *testing.T) {
	ts := newTestServer(t)
	c := dialRaw(t, ts)
	c.send(t, "PUT "+kv("café%2Fincr", "db=app&create_db_if_missing=true")+" HTTP/1.1\r\nHost: kvd\r\nContent-Length: 1\r\n\r\nv")
	wantStatus(t, c.answer(t), 200)
	if got := string(ts.do(t, "GET", kv(url.PathEscape("café/incr"), "db=app"), "").Body); got != "v" {
		t.Fatalf("key café/incr: got %q, want v", got)
	}
	wantError(t, ts.do(t, "GET", kv(url.PathEscape("café"), "db=app"), ""), 404, "KEY_NOT_FOUND")
}

func TestPut_PayloadTooLarge(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 1000 })
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), strings.Repeat("x", 1000)), 200)
	wantError(t, ts.do(t, "PUT", kv("a", "db=app"), strings.Repeat("y", 1001)), 413, "PAYLOAD_TOO_LARGE")
	if got := ts.do(t, "GET", kv("a", "db=app"), ""); len(got.Body) != 1000 || got.Body[0] != 'x' {
		t.Fatalf("value after refused write: got %d bytes, want the earlier 1000", len(got.Body))
	}
}

// The limit holds for the value a write leaves, not only for its body: a
// push, a PUT at a path and an incr at a path that would grow the stored
// value past it are refused and change nothing.
func TestPayloadTooLarge_ForTheValueAWriteBuilds(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 1000 })
	q := "db=app&create_db_if_missing=true"
	element := `"` + strings.Repeat("y", 400) + `"`
	wantStatus(t, ts.do(t, "PUT", kv("list", q), "[]"), 200)
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/list/push?"+q, element), 200)
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/list/push?"+q, element), 200)
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/list/push?"+q, element), 413, "PAYLOAD_TOO_LARGE")

	doc := `{"n":99,"pad":"` + strings.Repeat("p", 983) + `"}` // 1000 bytes: n=100 would take 1001
	wantStatus(t, ts.do(t, "PUT", kv("doc", q), doc), 200)
	wantError(t, ts.do(t, "PUT", kv("doc", q+"&path=more"), `"more"`), 413, "PAYLOAD_TOO_LARGE")
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/doc/incr?"+q+"&path=n", ""), 413, "PAYLOAD_TOO_LARGE")

	for key, want := range map[string]int{"list": 2*len(element) + 3, "doc": len(doc)} {
		if got := ts.do(t, "GET", kv(key, "db=app"), ""); len(got.Body) != want {
			t.Errorf("%s after refused writes: %d bytes, want %d", key, len(got.Body), want)
		}
	}
}

// Pop and remove only shrink an array, so the limit never refuses them,
// not even on an array stored before the limit was lowered.
func TestPayloadTooLarge_NeverForAShrinkingArray(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 1000 })
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("list", q), `["`+strings.Repeat("<", 300)+`","x","y"]`), 200) // json.Marshal would write each < as \u003c
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/list/pop?"+q, ""), 200)
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/list/remove?"+q, `"x"`), 200)

	// A file written by hand in directory mode may be past the limit: it is
	// no value kvd serves or imports (not even to shrink it), so pop is
	// refused like a read, and DELETE removes it.
	dir, root, dq := dirServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 1000 })
	wantStatus(t, dir.do(t, "PUT", kv("seed", dq), "1"), 200)
	if err := os.WriteFile(filepath.Join(root, "notes", "big"), []byte(`["`+strings.Repeat("a", 1500)+`","x"]`), 0o640); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, dir.do(t, "POST", "/api/v1/sqlite/kv/big/push?"+dq, `"y"`), 413)
	wantError(t, dir.do(t, "POST", "/api/v1/sqlite/kv/big/pop?"+dq, ""), 413, "PAYLOAD_TOO_LARGE")
	wantStatus(t, dir.do(t, "DELETE", kv("big", dq), ""), 200)
}

func TestParameters_BadValuesAnswer400(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), `1`)
	cases := []struct{ method, path, body string }{
		{"PUT", kv("a", "db=app&ttl=0"), "1"},
		{"PUT", kv("a", "db=app&ttl=-5"), "1"},
		{"PUT", kv("a", "db=app&ttl=1.5"), "1"},
		{"PUT", kv("a", "db=app&ttl=abc"), "1"},
		{"PUT", kv("a", "db=app&ttl=99999999999999"), "1"},
		{"PUT", kv("a", "db=app&history=maybe"), "1"},
		{"PUT", kv("a", "db=app&create_db_if_missing=true&auto_create=false"), "1"},
		{"PUT", kv("a", "db=app&create_db_if_missing=perhaps"), "1"},
		{"PUT", kv("a", "db=app&path=a..b"), "1"},
		{"PUT", kv("a", "db=app&path=x"), "not json"},
		{"GET", kv("a", "db=app&at_timestamp=yesterday"), ""},
		{"GET", kv("a", "db=app&at_timestamp=-1"), ""},
		{"GET", kv("a", "db=app&at_timestamp=NaN"), ""},
		{"GET", kv("a", "db=app&rebuild=sure"), ""},
		{"GET", kv("a", "db=app&path=%5B"), ""},
		{"POST", kv("a/incr", "db=app&delta=0"), ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, ts.do(t, c.method, c.path, c.body), 400, "INVALID_PARAMETERS")
		})
	}
	wantError(t, ts.do(t, "PUT", kv("a", "db=app"), "1", "If-Match", "nonsense"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("a", "db=app"), "1", "If-None-Match", `3`), 400, "INVALID_PARAMETERS")
	if got := string(ts.do(t, "GET", kv("a", "db=app"), "").Body); got != "1" {
		t.Fatalf("value after refused writes: got %q, want 1", got)
	}
}

// A key named like a table-level endpoint could never be read by a client
// that escapes keys with encodeURIComponent: no write may create one. One
// stored before that rule can still be read and deleted.
func TestKeys_NamedLikeTableEndpointsAreNotCreated(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("other", q), "x")
	for _, key := range []string{"snapshot", "diff", "rollback"} {
		escaped := "%" + fmt.Sprintf("%02X", key[0]) + key[1:] // reaches the key route
		wantError(t, ts.do(t, "PUT", kv(escaped, q), "x"), 400, "INVALID_PARAMETERS")
		wantError(t, ts.do(t, "POST", kv(escaped+"/incr", q), ""), 400, "INVALID_PARAMETERS")
		wantError(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"`+key+`","value":"x"}]}`), 400, "INVALID_PARAMETERS")
		wantError(t, ts.do(t, "GET", kv(escaped, "db=app"), ""), 404, "KEY_NOT_FOUND")
		wantError(t, ts.do(t, "DELETE", kv(escaped, q), ""), 404, "KEY_NOT_FOUND")
		wantStatus(t, ts.do(t, "POST", batchPath+"delete?"+q, `{"keys":["`+key+`"]}`), 200)
	}
	for _, key := range []string{"a%2Fsnapshot", "batch%2Fget", "snapshots"} {
		wantStatus(t, ts.do(t, "PUT", kv(key, q), "x"), 200)
	}
}

// HEAD answers have no body, so an error's code travels in X-Error-Code.
func TestHead_ErrorCodeInAHeader(t *testing.T) {
	ts := newTestServer(t)
	if h := ts.do(t, "HEAD", kv("k", "db=nowhere"), "").Header.Get("X-Error-Code"); h != "DATABASE_NOT_FOUND" {
		t.Fatalf("HEAD on a missing database: X-Error-Code %q", h)
	}
	ts.do(t, "PUT", kv("other", "db=app&create_db_if_missing=true"), "x")
	if h := ts.do(t, "HEAD", kv("k", "db=app"), "").Header.Get("X-Error-Code"); h != "KEY_NOT_FOUND" {
		t.Fatalf("HEAD on a missing key: X-Error-Code %q", h)
	}
}

func TestUnknownEndpoints_AnswerJSON404(t *testing.T) {
	ts := newTestServer(t)
	wantError(t, ts.do(t, "GET", "/nope", ""), 404, "NOT_FOUND")
	wantError(t, ts.do(t, "PATCH", kv("a", "db=app"), ""), 405, "METHOD_NOT_ALLOWED")
	// A /kv/ prefix sent escaped names no key: it once stored the whole path as one.
	for _, path := range []string{"/api/v1/sqlite/kv%2Fa", "/api/v1/sqlite/%6Bv/a", "/api/v1/sqlite%2Fkv/a", "/api/v1/sqlite/kv%2Fbatch%2Fset"} {
		wantError(t, ts.do(t, "PUT", path+"?db=app&create_db_if_missing=true", "v"), 404, "NOT_FOUND")
	}
	wantStatus(t, ts.do(t, "PUT", kv("b", "db=app&create_db_if_missing=true"), "v"), 200)
	wantError(t, ts.do(t, "GET", kv(url.PathEscape("/api/v1/sqlite/kv/a"), "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
	wantStatus(t, ts.do(t, "GET", "/readyz", ""), 200)
}

// kvd applies no content coding: a gzip body would be stored as its
// compressed bytes and served as the type it claimed, so it is refused.
// identity is no coding at all.
func TestPut_ContentEncodingOtherThanIdentityIsRefused(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("other", "db=app&create_db_if_missing=true"), "x"), 200)
	r := ts.do(t, "PUT", kv("k", "db=app"), "\x1f\x8b\x08", "Content-Encoding", "gzip", "Content-Type", "text/plain")
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if msg := r.JSON(t)["message"]; !contains(msg, "gzip") {
		t.Fatalf("message: got %q, want one naming gzip", msg)
	}
	wantError(t, ts.do(t, "GET", kv("k", "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "plain", "Content-Encoding", "identity"), 200)
	if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "plain" {
		t.Fatalf("after an identity PUT: got %q", got)
	}
}
