package httpapi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// withCORS allows origins and requires the token "page-token".
func withCORS(tb testing.TB, origins ...string) serverOption {
	tb.Helper()
	tokenFile := filepath.Join(tb.TempDir(), "tokens")
	os.WriteFile(tokenFile, []byte("page-token\n"), 0o600)
	tokens, err := httpapi.LoadTokens(tokenFile)
	if err != nil {
		tb.Fatal(err)
	}
	return func(_ *actors.Config, h *httpapi.Config) { h.CORSOrigins, h.Tokens = origins, tokens }
}

// preflight is what a browser sends before a PUT with a token and a JSON body.
func preflight(origin string) []string {
	return []string{"Origin", origin, "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization,content-type,if-match"}
}

// TestCORS_AllowedOriginPreflightAndAnswers: a page from an allowed origin
// gets its preflight answered without a token, then reads kvd's answers
// and their headers, errors included.
func TestCORS_AllowedOriginPreflightAndAnswers(t *testing.T) {
	const origin = "https://app.example.com"
	ts := newTestServer(t, withCORS(t, "https://other.example.com", origin))
	put := kv("k", "db=app&create_db_if_missing=true")

	pre := ts.do(t, "OPTIONS", put, "", preflight(origin)...)
	wantStatus(t, pre, 204)
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":  origin,
		"Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, DELETE",
		"Access-Control-Max-Age":       "7200",
		"Vary":                         "Origin",
	} {
		if got := pre.Header.Get(name); got != want {
			t.Errorf("preflight %s: got %q, want %q", name, got, want)
		}
	}
	allowed := strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "if-match", "if-none-match", "last-event-id"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
		}
	}

	res := ts.do(t, "PUT", put, `{"a":1}`, "Origin", origin, "Authorization", "Bearer page-token", "Content-Type", "application/json")
	wantStatus(t, res, 200)
	get := ts.do(t, "GET", kv("k", "db=app"), "", "Origin", origin, "Authorization", "Bearer page-token")
	wantStatus(t, get, 200)
	if got := get.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("GET Access-Control-Allow-Origin: got %q, want %q", got, origin)
	}
	exposed := get.Header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"ETag", "X-Request-Id", "X-Created-At", "X-Updated-At", "X-Expire-At", "X-KV-Reference", "Retry-After"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
	// The page can read why it was refused.
	denied := ts.do(t, "GET", kv("k", "db=app"), "", "Origin", origin)
	wantError(t, denied, 401, "UNAUTHORIZED")
	if got := denied.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("401 Access-Control-Allow-Origin: got %q, want %q", got, origin)
	}
}

// TestCORS_NothingForOtherOriginsOrWithoutTheFlag: an origin not listed,
// or a kvd without --cors-origin, gets no CORS header and no preflight
// answer, so the browser keeps the page out.
func TestCORS_NothingForOtherOriginsOrWithoutTheFlag(t *testing.T) {
	for name, opt := range map[string]serverOption{
		"other origin": withCORS(t, "https://app.example.com"),
		"no flag":      withCORS(t),
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, opt)
			const evil = "https://evil.example.net"
			pre := ts.do(t, "OPTIONS", kv("k", "db=app"), "", preflight(evil)...)
			get := ts.do(t, "GET", kv("k", "db=app"), "", "Origin", evil, "Authorization", "Bearer page-token")
			for _, r := range []response{pre, get} {
				if r.Status == 204 {
					t.Errorf("%s: preflight answered 204", name)
				}
				for h := range r.Header {
					if strings.HasPrefix(h, "Access-Control-") {
						t.Errorf("%s: %s: %q sent", name, h, r.Header.Get(h))
					}
				}
			}
			wantError(t, get, 404, "DATABASE_NOT_FOUND") // served as ever: CORS binds browsers, not kvd
		})
	}
}

// TestCORS_AnyOrigin: "*" lets every page in, with the wildcard itself
// (no credentials are involved: the token is a header the page sets).
func TestCORS_AnyOrigin(t *testing.T) {
	ts := newTestServer(t, withCORS(t, "*"))
	pre := ts.do(t, "OPTIONS", "/api/v1/sqlite/kv/batch/get?db=app", "", preflight("http://localhost:5173")...)
	wantStatus(t, pre, 204)
	get := ts.do(t, "GET", "/healthz", "", "Origin", "http://localhost:5173")
	for _, r := range []response{pre, get} {
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin: got %q, want *", got)
		}
	}
}
