package httpapi_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The behaviour table: the same requests in file mode and in directory
// mode must answer alike, and in directory mode the files hold the values.

// step is one request of a behaviour table, run the same way in file mode
// and in directory mode; both must answer alike.
type step struct {
	method string // an HTTP method; VALUE checks a key's value; FILE checks a file (directory mode); TICK advances the clock 10 s
	target string // key[/op][?query], "?query" for the listing, or a table-level path like "batch/set"
	body   string // request body; for VALUE and FILE the expected bytes, "-" for none
	status int
	want   string   // an error code when status >= 400, else a part of the body ("" skips)
	header []string // request headers; "{etag}" is the newest ETag answered
	hdr    string   // "Name: value" the response must carry
}

// The targets' placeholders: {t0} is the clock when the table started,
// {t+N} N seconds later.
var stepTime = regexp.MustCompile(`\{t\+(\d+)\}`)

func runSteps(t *testing.T, steps []step, dirMode bool) {
	var ts *testServer
	var root, q string
	if dirMode {
		ts, root, q = dirServer(t)
	} else {
		ts = newTestServer(t)
		q = "db=app&table=notes"
		wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path=app&table=notes", ""), 200)
	}
	t0 := ts.Clock.Now().Unix()
	etagSeen := ""
	for i, s := range steps {
		target := strings.ReplaceAll(s.target, "{t0}", fmt.Sprint(t0))
		target = stepTime.ReplaceAllStringFunc(target, func(m string) string {
			n, _ := strconv.Atoi(stepTime.FindStringSubmatch(m)[1])
			return fmt.Sprint(t0 + int64(n))
		})
		path, extra, _ := strings.Cut(target, "?")
		u := "/api/v1/sqlite/kv/" + path + "?" + q
		if path == "" {
			u = "/api/v1/sqlite/kv?" + q
		}
		if extra != "" {
			u += "&" + extra
		}
		where := fmt.Sprintf("step %d (%s %s)", i, s.method, s.target)
		switch s.method {
		case "TICK":
			ts.Clock.Advance(10 * time.Second)
			continue
		case "FILE", "VALUE":
			key, _ := url.PathUnescape(path)
			if want := s.body; dirMode {
				if want == "-" {
					want = "<missing>"
				}
				if got := fileOf(t, root, key); got != want {
					t.Fatalf("%s: file %q, want %q", where, got, want)
				}
			}
			if s.method == "FILE" {
				continue
			}
			r := ts.do(t, "GET", u, "")
			if s.body == "-" {
				wantError(t, r, 404, "KEY_NOT_FOUND")
			} else if r.Status != 200 || string(r.Body) != s.body {
				t.Fatalf("%s: GET answered %d %q, want %q", where, r.Status, r.Body, s.body)
			}
			continue
		}
		header := slices.Clone(s.header)
		for j := range header {
			header[j] = strings.ReplaceAll(header[j], "{etag}", etagSeen)
		}
		r := ts.do(t, s.method, u, s.body, header...)
		if s.status >= 400 {
			if r.Status != s.status || s.want != "" && !strings.Contains(string(r.Body), `"code":"`+s.want+`"`) {
				t.Fatalf("%s: got %d %s, want %d %s", where, r.Status, r.Body, s.status, s.want)
			}
		} else if r.Status != s.status || !strings.Contains(string(r.Body), s.want) {
			t.Fatalf("%s: got %d %s, want %d with %s", where, r.Status, r.Body, s.status, s.want)
		}
		if name, value, ok := strings.Cut(s.hdr, ": "); ok && r.Header.Get(name) != value {
			t.Fatalf("%s: header %s: got %q, want %q", where, name, r.Header.Get(name), value)
		}
		if tag := r.Header.Get("ETag"); tag != "" {
			etagSeen = tag
		}
	}
}

// TestDirMode_SameBehaviourAsFileMode runs each table in both modes: the
// answers are the same, and in directory mode the files hold the values.
func TestDirMode_SameBehaviourAsFileMode(t *testing.T) {
	const notFound, casMismatch, casMissing, pathNotFound, invalid = "KEY_NOT_FOUND", "CAS_MISMATCH", "CAS_KEY_MISSING", "PATH_NOT_FOUND", "INVALID_PARAMETERS"
	tables := map[string][]step{
		"arrays": {
			{method: "POST", target: "lists%2Fl/push", body: `"a"`, status: 200, want: `"newLength":1`},
			{method: "POST", target: "lists%2Fl/push", body: `{"b":2}`, status: 200, want: `"newLength":2`},
			{method: "POST", target: "lists%2Fl/push", body: `3`, status: 200, want: `"newLength":3`},
			{method: "VALUE", target: "lists%2Fl", body: `["a",{"b":2},3]`},
			{method: "POST", target: "lists%2Fl/remove", body: `{"b":2}`, status: 200, want: `"removed":1`},
			{method: "POST", target: "lists%2Fl/remove?index=0", status: 200, want: `"newLength":1`},
			{method: "POST", target: "lists%2Fl/pop", status: 200, want: `"value":3`},
			{method: "VALUE", target: "lists%2Fl", body: `[]`},
			{method: "POST", target: "lists%2Fl/pop", status: 200, want: `"value":null`},
			{method: "PUT", target: "doc", body: `{"tags":["a"]}`, status: 200},
			{method: "POST", target: "doc/push?path=tags", body: `"b"`, status: 200, want: `"newLength":2`},
			{method: "VALUE", target: "doc", body: `{"tags":["a","b"]}`},
			{method: "POST", target: "missing/pop", status: 404, want: notFound},
			{method: "POST", target: "doc/pop?path=nothere", status: 404, want: pathNotFound},
			{method: "POST", target: "doc/push", body: `1`, status: 400, want: invalid},
			{method: "POST", target: "lists%2Fl/push", body: `not json`, status: 400, want: invalid},
			{method: "POST", target: "lists%2Fl/remove?index=9", status: 400, want: invalid},
			{method: "VALUE", target: "doc", body: `{"tags":["a","b"]}`},
		},
		"counters, TTL, batches, listing": {
			{method: "POST", target: "c/incr?delta=5", status: 200, want: `"value":5`},
			{method: "POST", target: "c/decr", status: 200, want: `"value":4`},
			{method: "VALUE", target: "c", body: "4"},
			{method: "PUT", target: "doc", body: `{"n":1}`, status: 200},
			{method: "POST", target: "doc/incr?path=n", status: 200, want: `"value":2`},
			{method: "VALUE", target: "doc", body: `{"n":2}`},
			{method: "PUT", target: "s?ttl=5", body: "short", status: 200},
			{method: "FILE", target: "s", body: "short"},
			{method: "TICK"},
			{method: "GET", target: "s", status: 404, want: "KEY_EXPIRED"},
			{method: "PUT", target: "after", body: "x", status: 200}, // the expiry is done once this is answered
			{method: "FILE", target: "s", body: "-"},
			{method: "POST", target: "batch/set", body: `{"items":[{"key":"b/1","value":"one"},{"key":"b/2","value":"{\"x\":2}"}]}`, status: 200, want: `"count":2`},
			{method: "VALUE", target: "b%2F2", body: `{"x":2}`},
			{method: "POST", target: "batch/get", body: `{"keys":["b/1","b/2","none"]}`, status: 200, want: `{"b/1":{"value":"one","content_type":"text/plain"},"b/2":{"value":{"x":2},"content_type":"application/json"},"none":null}`},
			{method: "GET", target: "?prefix=b%2F", status: 200, want: `"keys":["b/1","b/2"]`},
			{method: "GET", target: "?limit=2&offset=1", status: 200, want: `"keys":["b/1","b/2"]`},
			{method: "POST", target: "batch/delete", body: `{"keys":["b/1","b/2","none"]}`, status: 200, want: `"deleted":2`},
			{method: "VALUE", target: "b%2F1", body: "-"},
			{method: "GET", target: "?prefix=b%2F", status: 200, want: `"keys":[]`},
		},
		"key and table rollback": {
			{method: "PUT", target: "k", body: "v1", status: 200},
			{method: "PUT", target: "k", body: "v2", status: 200},
			{method: "PUT", target: "k", body: "v3", status: 200},
			{method: "POST", target: "k/rollback", status: 200, want: `"value":"v2"`},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "DELETE", target: "k", status: 200},
			{method: "FILE", target: "k", body: "-"},
			{method: "POST", target: "k/rollback", status: 200, want: `"value":"v2"`},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "POST", target: "never/rollback", status: 404, want: notFound},
			{method: "POST", target: "k/rollback?steps=0", status: 400, want: invalid},
			{method: "PUT", target: "a%2Fx", body: "a1", status: 200},
			{method: "TICK"},
			{method: "PUT", target: "a%2Fx", body: "a2", status: 200},
			{method: "DELETE", target: "k", status: 200},
			{method: "PUT", target: "new%2Fy", body: "n1", status: 200},
			{method: "POST", target: "rollback?to_timestamp={t0}", status: 200, want: `"dry_run":true`},
			{method: "VALUE", target: "new%2Fy", body: "n1"},
			{method: "POST", target: "rollback?to_timestamp={t0}&confirm=yes", status: 200, want: `"count":3`},
			{method: "VALUE", target: "a%2Fx", body: "a1"},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "VALUE", target: "new%2Fy", body: "-"},
		},
		"time travel": {
			{method: "PUT", target: "k", body: "v1", status: 200},
			{method: "TICK"},
			{method: "PUT", target: "k", body: "v2", status: 200},
			{method: "TICK"},
			{method: "DELETE", target: "k", status: 200},
			{method: "TICK"},
			{method: "PUT", target: "k?history=false", body: "v3", status: 200},
			{method: "GET", target: "k?at_timestamp={t0}", status: 200, want: "v1"},
			{method: "GET", target: "k?at_timestamp={t+15}", status: 200, want: "v2"},
			{method: "GET", target: "k?at_timestamp={t+20}", status: 404, want: notFound},
			{method: "GET", target: "k?at_timestamp={t+30}", status: 409, want: "TIME_TRAVEL_GAP"},
			{method: "GET", target: "?at_timestamp={t+10}", status: 200, want: `"keys":["k"]`},
			{method: "GET", target: "?at_timestamp={t+25}", status: 200, want: `"keys":[]`},
			{method: "GET", target: "k?at_timestamp=soon", status: 400, want: invalid},
			{method: "GET", target: "k/history", status: 200, want: `"op":"delete"`},
			{method: "VALUE", target: "k", body: "v3"},
		},
		"references": {
			{method: "PUT", target: "data%2Ftarget", body: `{"v":1}`, status: 200},
			{method: "PUT", target: "ref?ref=true", body: "data/target", status: 200},
			{method: "FILE", target: "ref", body: "data/target"},
			{method: "GET", target: "ref", status: 200, want: `{"v":1}`, hdr: "X-KV-Reference: true"},
			{method: "GET", target: "ref?path=v", status: 200, want: "1"},
			{method: "HEAD", target: "ref", status: 200, hdr: "X-KV-Reference-Target: data%2Ftarget"},
			{method: "PUT", target: "dangling?ref=true", body: "nowhere", status: 200},
			{method: "GET", target: "dangling", status: 404, want: notFound},
			{method: "PUT", target: "bad?ref=true&path=a", body: "data/target", status: 400, want: invalid},
			{method: "PUT", target: "data%2Ftarget", body: `{"v":2}`, status: 200},
			{method: "GET", target: "ref", status: 200, want: `{"v":2}`},
		},
		"ETags and CAS": {
			{method: "PUT", target: "k", body: "v1", header: []string{"If-None-Match", "*"}, status: 200},
			{method: "PUT", target: "k", body: "again", header: []string{"If-None-Match", "*"}, status: 412, want: casMismatch},
			{method: "PUT", target: "k", body: "v2", header: []string{"If-Match", "{etag}"}, status: 200},
			{method: "GET", target: "k", header: []string{"If-None-Match", "{etag}"}, status: 304},
			{method: "PUT", target: "k", body: "v3", header: []string{"If-Match", `"999999"`}, status: 412, want: casMismatch},
			{method: "PUT", target: "nope", body: "v3", header: []string{"If-Match", "{etag}"}, status: 412, want: casMissing},
			{method: "DELETE", target: "k", header: []string{"If-Match", `"1"`}, status: 412, want: casMismatch},
			{method: "PUT", target: "k", body: "v3", header: []string{"If-Match", "nonsense"}, status: 400, want: invalid},
			{method: "VALUE", target: "k", body: "v2"},
			{method: "PUT", target: "k?if_match=wrong", body: "v3", status: 412, want: casMismatch},
			{method: "PUT", target: "nope?if_match=v1", body: "v3", status: 412, want: casMissing},
			{method: "PUT", target: "k?if_match=v2", body: "v3", status: 200},
			{method: "PUT", target: "cfg", body: `{"theme":"dark"}`, status: 200},
			{method: "PUT", target: "cfg?path=theme&if_match=light", body: `"blue"`, status: 412, want: casMismatch},
			{method: "PUT", target: "cfg?path=theme&if_match=dark", body: `"blue"`, status: 200},
			{method: "VALUE", target: "cfg", body: `{"theme":"blue"}`},
			{method: "FILE", target: "nope", body: "-"},
			{method: "DELETE", target: "cfg", header: []string{"If-Match", "{etag}"}, status: 200},
			{method: "VALUE", target: "cfg", body: "-"},
		},
		"errors": {
			{method: "GET", target: "missing", status: 404, want: notFound},
			{method: "DELETE", target: "missing", status: 404, want: notFound},
			{method: "HEAD", target: "missing", status: 404},
			{method: "PUT", target: "cfg", body: `{"a":{"b":1}}`, status: 200},
			{method: "GET", target: "cfg?path=a.c", status: 404, want: pathNotFound},
			{method: "PUT", target: "text", body: "plain", status: 200},
			{method: "GET", target: "text?path=a", status: 400, want: invalid},
			{method: "POST", target: "text/incr", status: 400, want: invalid},
			{method: "POST", target: "n/incr?delta=0", status: 400, want: invalid},
			{method: "PUT", target: "k?ttl=-1", body: "x", status: 400, want: invalid},
			{method: "PUT", target: "cfg?path=a.b", body: "not json", status: 400, want: invalid},
			{method: "POST", target: "batch/set", body: `{"items":[]}`, status: 400, want: invalid},
			{method: "POST", target: "batch/set", body: `{"items":[{"key":"x","value":1}]}`, status: 400, want: invalid},
			{method: "POST", target: "batch/delete", body: `{"keys":["missing","text"]}`, status: 200, want: `"deleted":1`},
			{method: "VALUE", target: "text", body: "-"},
			{method: "VALUE", target: "n", body: "-"},
			{method: "VALUE", target: "cfg", body: `{"a":{"b":1}}`},
		},
	}
	for name, steps := range tables {
		for _, mode := range []string{"file", "dir"} {
			t.Run(name+"/"+mode, func(t *testing.T) { runSteps(t, steps, mode == "dir") })
		}
	}
}
