package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// The OpenAPI document is judged by two outside tools, so that "valid" is
// not only kvd's own opinion: kin-openapi, a full OpenAPI 3 validator, in
// the test process; and Redocly CLI's recommended-strict ruleset (every
// warning an error), run under node by .ci/redocly.sh.

// servedAPIDoc is the document as a running kvd serves it.
func servedAPIDoc(t *testing.T) []byte {
	t.Helper()
	ts := newTestServer(t)
	r := ts.do(t, http.MethodGet, "/api/v1/openapi.json", "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", r.Status, r.Body)
	}
	return r.Body
}

// withoutOperationID is doc without the operationId of GET /healthz: a
// document every strict linter must refuse.
func withoutOperationID(t *testing.T, doc []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	delete(m["paths"].(map[string]any)["/healthz"].(map[string]any)["get"].(map[string]any), "operationId")
	broken, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return broken
}

func TestAPIDoc_IsValidOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(servedAPIDoc(t))
	if err != nil {
		t.Fatalf("kin-openapi cannot load the document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("kin-openapi: the document is not valid OpenAPI 3: %v", err)
	}
}

// lintReport is `redocly lint --format json`'s report on one file.
type lintReport struct {
	Problems []lintProblem `json:"problems"`
}

type lintProblem struct {
	RuleID   string                     `json:"ruleId"`
	Severity string                     `json:"severity"`
	Message  string                     `json:"message"`
	Location []struct{ Pointer string } `json:"location"`
}

func (p lintProblem) pointer() string {
	if len(p.Location) == 0 {
		return "?"
	}
	return p.Location[0].Pointer
}

// TestAPIDoc_PassesStrictLint lints the served document together with a
// copy missing one operationId. The served one must show no problem at
// all; the broken copy must be refused, so a linter that ran no rule (a
// ruleset not found, a changed option) cannot pass this test.
func TestAPIDoc_PassesStrictLint(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must lint the OpenAPI document, but npm (node) is missing: .ci/run installs it")
		}
		t.Skip("node and npm are not installed: the OpenAPI lint needs them")
	}
	script, err := filepath.Abs(filepath.Join("..", ".ci", "redocly.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // the working directory: no redocly.yaml there to change the rules
	served := servedAPIDoc(t)
	files := []string{"kvd.json", "broken.json"}
	for i, doc := range [][]byte{served, withoutOperationID(t, served)} {
		if err := os.WriteFile(filepath.Join(dir, files[i]), doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Minutes only the first time, when the script installs Redocly CLI.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{script, "lint", "--extends", "recommended-strict", "--format", "json"}, files...)
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exits 1: broken.json has an error

	// One JSON report per file, in the order given.
	var reports []lintReport
	for dec := json.NewDecoder(&stdout); dec.More(); {
		var r lintReport
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("redocly lint's report: %v", err)
		}
		reports = append(reports, r)
	}
	if len(reports) != len(files) {
		t.Fatalf("redocly lint gave %d reports for %d files (exit %v); stderr:\n%s", len(reports), len(files), runErr, stderr.String())
	}
	for _, p := range reports[0].Problems {
		t.Errorf("%s: %s at %s: %s", p.Severity, p.RuleID, p.pointer(), p.Message)
	}
	refused := false
	for _, p := range reports[1].Problems {
		refused = refused || (p.RuleID == "operation-operationId" && p.Severity == "error")
	}
	if !refused {
		t.Errorf("the linter did not refuse a document missing an operationId, so it checked nothing (exit %v); stderr:\n%s", runErr, stderr.String())
	}
}

// operations is every operation of the document: "METHOD path" to it.
func operations(t *testing.T, doc []byte) map[string]map[string]any {
	t.Helper()
	var m struct {
		Paths map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	ops := map[string]map[string]any{}
	for path, item := range m.Paths {
		for method, op := range item {
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return ops
}

// Generated clients call operations by these names: one renamed breaks
// them, so a change here is a change of the API.
func TestAPIDoc_OperationIDsAreStable(t *testing.T) {
	const kv = "/api/v1/sqlite/kv"
	want := map[string]string{
		"GET /healthz":                   "getHealthz",
		"GET /readyz":                    "getReadyz",
		"GET /metrics":                   "getMetrics",
		"GET /api/v1/openapi.json":       "getOpenapi",
		"GET /api/v1/sqlite/db/backup":   "backupDb",
		"POST /api/v1/sqlite/db/create":  "createDb",
		"POST /api/v1/sqlite/db/release": "releaseDb",
		"GET " + kv:                      "listKeys",
		"GET " + kv + "/{key}":           "getKey",
		"HEAD " + kv + "/{key}":          "headKey",
		"PUT " + kv + "/{key}":           "putKey",
		"DELETE " + kv + "/{key}":        "deleteKey",
		"POST " + kv + "/{key}/incr":     "incrKey",
		"POST " + kv + "/{key}/decr":     "decrKey",
		"GET " + kv + "/{key}/history":   "getKeyHistory",
		"GET " + kv + "/{key}/snapshot":  "getKeySnapshot",
		"POST " + kv + "/{key}/rollback": "rollbackKey",
		"POST " + kv + "/{key}/push":     "pushKey",
		"POST " + kv + "/{key}/pop":      "popKey",
		"POST " + kv + "/{key}/remove":   "removeKey",
		"POST " + kv + "/batch/get":      "batchGet",
		"POST " + kv + "/batch/set":      "batchSet",
		"POST " + kv + "/batch/delete":   "batchDelete",
		"GET " + kv + "/snapshot":        "getTableSnapshot",
		"GET " + kv + "/diff":            "getTableDiff",
		"POST " + kv + "/rollback":       "rollbackTable",
		"GET " + kv + "/{key}/watch":     "watchKey",
		"GET " + kv + "/watch":           "watchTable",
		// HEAD beside each GET that does not stream
		"HEAD /healthz":                  "headHealthz",
		"HEAD /readyz":                   "headReadyz",
		"HEAD /metrics":                  "headMetrics",
		"HEAD /api/v1/openapi.json":      "headOpenapi",
		"HEAD " + kv:                     "headListKeys",
		"HEAD " + kv + "/{key}/history":  "headKeyHistory",
		"HEAD " + kv + "/{key}/snapshot": "headKeySnapshot",
		"HEAD " + kv + "/snapshot":       "headTableSnapshot",
		"HEAD " + kv + "/diff":           "headTableDiff",
	}
	ops := operations(t, servedAPIDoc(t))
	for name, op := range ops {
		if got := op["operationId"]; got != want[name] {
			t.Errorf("%s: operationId %v, want %q", name, got, want[name])
		}
	}
	for name := range want {
		if ops[name] == nil {
			t.Errorf("%s: pinned here but not in the document", name)
		}
	}
}

// TestAPIDoc_SecurityMatchesTheServer asks a kvd run with a token file for
// every documented operation without a token: the operations the document
// leaves open must answer, every other one 401, and list it.
func TestAPIDoc_SecurityMatchesTheServer(t *testing.T) {
	doc := servedAPIDoc(t)
	var global struct {
		Security []map[string]any `json:"security"`
	}
	if err := json.Unmarshal(doc, &global); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := httpapi.LoadTokens(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.Tokens = tokens })
	open := 0
	for name, op := range operations(t, doc) {
		method, path, _ := strings.Cut(name, " ")
		r := ts.do(t, method, strings.ReplaceAll(path, "{key}", "k")+"?db=app", "")
		_, lists401 := op["responses"].(map[string]any)["401"]
		if isOpen(op, global.Security) {
			open++
			if r.Status == http.StatusUnauthorized || lists401 {
				t.Errorf("%s: documented open, but answered %d without a token (401 listed: %v)", name, r.Status, lists401)
			}
		} else if r.Status != http.StatusUnauthorized || !lists401 {
			t.Errorf("%s: documented as needing the token, but answered %d without one (401 listed: %v)", name, r.Status, lists401)
		}
	}
	if open != 8 {
		t.Errorf("%d operations documented open, want 8 (GET and HEAD of /healthz, /readyz, /metrics, the document)", open)
	}
}

// isOpen tells whether an operation needs no credentials: its security
// (else the document's) is empty, or one of its alternatives is.
func isOpen(op map[string]any, global []map[string]any) bool {
	alternatives := make([]any, len(global))
	for i, g := range global {
		alternatives[i] = g
	}
	if own, stated := op["security"].([]any); stated {
		alternatives = own
	}
	for _, a := range alternatives {
		if len(a.(map[string]any)) == 0 {
			return true
		}
	}
	return len(alternatives) == 0
}
