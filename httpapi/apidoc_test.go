package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

func newDocServer(t *testing.T) *Server {
	t.Helper()
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := actors.NewRegistry(actors.Config{Resolver: resolver})
	t.Cleanup(func() { reg.Close() })
	return New(Config{Registry: reg, Metrics: NewMetrics()})
}

// documented lists "METHOD path" of every operation in the document.
func documented(t *testing.T, doc map[string]any) map[string]bool {
	t.Helper()
	ops := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			ops[strings.ToUpper(method)+" "+path] = true
		}
	}
	return ops
}

// TestAPIDoc_MatchesTheRouter fails when a route is added without being
// documented, or documented without being served: both lists are read from
// the code the server routes with.
func TestAPIDoc_MatchesTheRouter(t *testing.T) {
	s := newDocServer(t)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["openapi"] != "3.0.3" {
		t.Fatalf("document: %v, openapi %v", err, doc["openapi"])
	}
	docOps := documented(t, doc)

	served := map[string]bool{}
	for _, r := range routes {
		served[r.method+" "+r.path] = true
	}
	for op := range served {
		if !docOps[op] {
			t.Errorf("served but not documented: %s", op)
		}
	}
	for op := range docOps {
		if !served[op] {
			t.Errorf("documented but not served: %s", op)
		}
	}
	// Every documented operation really answers (not the router's 404/405).
	for op := range docOps {
		method, path, _ := strings.Cut(op, " ")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, strings.ReplaceAll(path, "{key}", "k")+"?db=nope", nil))
		var e errorBody
		json.Unmarshal(rec.Body.Bytes(), &e)
		if method == http.MethodHead { // no body: the code travels in a header
			e.Code = sqlitekv.Code(rec.Header().Get("X-Error-Code"))
		}
		if e.Code == codeNotFound || e.Code == codeMethodNotAllowed {
			t.Errorf("%s: the router does not know it (%s)", op, e.Code)
		}
	}
	// Every $ref resolves.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, ref := range findRefs(doc) {
		if name := strings.TrimPrefix(ref, "#/components/schemas/"); schemas[name] == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func findRefs(v any) []string {
	var refs []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				refs = append(refs, s)
			}
			refs = append(refs, findRefs(x)...)
		}
	case []any:
		for _, x := range v {
			refs = append(refs, findRefs(x)...)
		}
	}
	return refs
}

func TestAPIDoc_NeedsNoToken(t *testing.T) {
	tokens := &Tokens{}
	tokens.hashes.Store(&[][32]byte{})
	s := newDocServer(t)
	s.cfg.Tokens = tokens
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != 200 {
		t.Fatalf("openapi.json with auth on and no token: %d", rec.Code)
	}
}
