package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
	"github.com/kvd/kvd/sqlitekv"
)

// testServer is a real kvd stack (HTTP, actors, SQLite files in a temp
// dir) listening on 127.0.0.1.
type testServer struct {
	URL      string
	DataDir  string
	Clock    *clienttest.Clock
	Registry *actors.Registry
	client   *http.Client
}

type serverOption func(*actors.Config, *httpapi.Config)

func withStore(fn func(*sqlitekv.Options)) serverOption {
	return func(c *actors.Config, _ *httpapi.Config) { fn(&c.Store) }
}

func newTestServer(tb testing.TB, opts ...serverOption) *testServer {
	tb.Helper()
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	configure := []kvdtest.Configure{func(a *actors.Config, _ *httpapi.Config) {
		a.Store.Now, a.Now = clock.Now, clock.Now
	}}
	for _, o := range opts {
		configure = append(configure, kvdtest.Configure(o))
	}
	srv, err := kvdtest.Start(tb.TempDir(), configure...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Error(err)
		}
	})
	return &testServer{
		URL: srv.URL, DataDir: srv.DataDir, Clock: clock, Registry: srv.Registry,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}},
	}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// do sends one request; path is everything after the host.
func (ts *testServer) do(tb testing.TB, method, path string, body string, header ...string) response {
	tb.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1]) // a name given twice is sent on two lines
	}
	res, err := ts.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") == "text/event-stream" {
		return response{Status: res.StatusCode, Header: res.Header} // a watch: it never ends (watchStream reads it)
	}
	data, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// kv builds /api/v1/sqlite/kv/<key>?<query>.
func kv(key, query string) string {
	return "/api/v1/sqlite/kv/" + key + "?" + query
}

// wantError checks status and the JSON error body's code.
func wantError(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status: got %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if !strings.Contains(r.Header.Get("Content-Type"), "application/json") {
		tb.Fatalf("error Content-Type: got %q, want application/json", r.Header.Get("Content-Type"))
	}
	m := r.JSON(tb)
	if m["code"] != code {
		tb.Fatalf("code: got %v, want %s (body %s)", m["code"], code, r.Body)
	}
	if m["statusCode"] != float64(status) || m["error"] != http.StatusText(status) || m["message"] == "" {
		tb.Fatalf("error body shape: got %s", r.Body)
	}
}

func wantStatus(tb testing.TB, r response, status int) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status: got %d, want %d (body %s)", r.Status, status, r.Body)
	}
}

func jsonUnmarshal(data []byte, into any) error { return json.Unmarshal(data, into) }

func contains(v any, sub string) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, sub)
}
