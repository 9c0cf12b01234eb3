package httpapi_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// ask sends a request without a body and reads the answer, all within 5 s.
func (ts *testServer) ask(tb testing.TB, method, path string) response {
	tb.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// A 405 says which methods its path takes (Allow: a 405 must carry it,
// RFC 9110 §15.5.6), and so does OPTIONS: the methods of the operation
// the path names, not those of every /kv/ route. Each method listed is
// served; each other one is a 405 with the same Allow.
func TestMethodNotAllowed_AllowListsTheOperationsMethods(t *testing.T) {
	ts := newTestServer(t)
	for path, allow := range map[string]string{
		kv("k", "db=nope"):                    "DELETE, GET, HEAD, OPTIONS, PUT",
		kv("a%2Fincr", "db=nope"):             "DELETE, GET, HEAD, OPTIONS, PUT", // a key, not incr
		kv("k/incr", "db=nope"):               "OPTIONS, POST",
		kv("k/watch", "db=nope"):              "GET, OPTIONS",
		"/api/v1/sqlite/kv/batch/set?db=nope": "OPTIONS, POST",
		"/api/v1/sqlite/kv/watch?db=nope":     "GET, OPTIONS",
	} {
		options := ts.ask(t, http.MethodOptions, path)
		if options.Status != 200 || options.Header.Get("Allow") != allow || len(options.Body) != 0 {
			t.Errorf("OPTIONS %s: got %d, Allow %q, body %q; want 200, Allow %q, no body", path, options.Status, options.Header.Get("Allow"), options.Body, allow)
		}
		for _, method := range []string{"GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"} {
			r := ts.ask(t, method, path)
			if slices.Contains(strings.Split(allow, ", "), method) {
				if r.Status == 405 {
					t.Errorf("%s %s: 405, but Allow lists it", method, path)
				}
				continue
			}
			code := r.Header.Get("X-Error-Code") // HEAD: no body
			if method != "HEAD" {
				code, _ = r.JSON(t)["code"].(string)
			}
			if r.Status != 405 || code != "METHOD_NOT_ALLOWED" || r.Header.Get("Allow") != allow {
				t.Errorf("%s %s: got %d %s, Allow %q; want 405 METHOD_NOT_ALLOWED, Allow %q", method, path, r.Status, code, r.Header.Get("Allow"), allow)
			}
		}
	}
}

// Wherever GET is served, so is HEAD (RFC 9110 §9.1; uptime monitors send
// HEAD /healthz): the same status and headers, no body, and a label of its
// own in the metrics.
func TestHEAD_AnswersAsGETWithoutTheBody(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), `{"a":1}`), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), `{"a":2}`), 200)
	for path, status := range map[string]int{
		"/healthz":                             200,
		"/readyz":                              200,
		"/metrics":                             200,
		"/api/v1/openapi.json":                 200,
		"/api/v1/sqlite/kv?db=app":             200,
		kv("k/history", "db=app"):              200,
		kv("k/snapshot", "db=app&op_number=1"): 200,
		"/api/v1/sqlite/kv/snapshot?db=app&timestamp=1700000000": 200,
		"/api/v1/sqlite/kv/diff?db=app&from=1&to=1700000000":     200,
		kv("k/history", "db=nope"):                               404, // its code in X-Error-Code
	} {
		get, head := ts.ask(t, "GET", path), ts.ask(t, "HEAD", path)
		wantStatus(t, get, status)
		if head.Status != status || len(head.Body) != 0 {
			t.Errorf("HEAD %s: got %d with %d bytes, want %d (as GET) and no body", path, head.Status, len(head.Body), status)
		}
		for name := range get.Header {
			switch name {
			case "Date", "X-Request-Id", "Content-Length": // Content-Length: only when net/http has the whole body at hand
				continue
			}
			if got, want := head.Header.Values(name), get.Header.Values(name); !slices.Equal(got, want) {
				t.Errorf("HEAD %s: %s %q, want %q (as GET)", path, name, got, want)
			}
		}
		if get.Status >= 400 {
			code, _ := get.JSON(t)["code"].(string)
			if got := head.Header.Get("X-Error-Code"); got != code {
				t.Errorf("HEAD %s: X-Error-Code %q, want %q", path, got, code)
			}
		}
	}
	if body := string(ts.ask(t, "GET", "/metrics").Body); !strings.Contains(body, `kvd_http_requests_total{code="200",route="HEAD /healthz"} 1`) {
		t.Errorf("metrics lack HEAD /healthz under its own label")
	}
	// A path that takes GET alone lists HEAD with it.
	if r := ts.ask(t, "POST", "/healthz"); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("POST /healthz: got %d, Allow %q; want 405, Allow \"GET, HEAD, OPTIONS\"", r.Status, r.Header.Get("Allow"))
	}
}

// HEAD of a stream would start it (a watch, a backup) for no body: they
// answer 405 at once, naming GET.
func TestHEAD_OfAStreamIsRefused(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	for _, path := range []string{kv("k/watch", "db=app"), "/api/v1/sqlite/kv/watch?db=app", "/api/v1/sqlite/db/backup?db=app"} {
		r := ts.ask(t, "HEAD", path)
		if r.Status != 405 || r.Header.Get("X-Error-Code") != "METHOD_NOT_ALLOWED" || r.Header.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("HEAD %s: got %d %s, Allow %q; want 405 METHOD_NOT_ALLOWED, Allow \"GET, OPTIONS\"", path, r.Status, r.Header.Get("X-Error-Code"), r.Header.Get("Allow"))
		}
	}
}
