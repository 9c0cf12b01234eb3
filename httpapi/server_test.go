package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/client/clienttest"
	"github.com/kvd/kvd/httpapi"
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
	dataDir := tb.TempDir()
	resolver, err := sqlitekv.NewResolver(dataDir, nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	acfg := actors.Config{Resolver: resolver, Store: sqlitekv.Options{Now: clock.Now}, Now: clock.Now}
	hcfg := httpapi.Config{}
	for _, o := range opts {
		o(&acfg, &hcfg)
	}
	reg := actors.NewRegistry(acfg)
	hcfg.Registry = reg
	srv := httpapi.New(hcfg)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	dataDir = acfg.Resolver.DataDir() // an option may have pointed it elsewhere
	ts := &testServer{
		URL: "http://" + srv.Addr().String(), DataDir: dataDir, Clock: clock, Registry: reg,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}},
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
		if err := reg.Close(); err != nil {
			tb.Errorf("close registry: %v", err)
		}
		if err := clienttest.CheckIntegrity(dataDir); err != nil {
			tb.Error(err)
		}
	})
	return ts
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
		req.Header.Set(header[i], header[i+1])
	}
	res, err := ts.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
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
