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
