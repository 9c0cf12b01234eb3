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

// FuzzParseKVPath: whatever the escaped path, decoding never panics, and
// a key it accepts satisfies the key contract.
func FuzzParseKVPath(f *testing.F) {
	for _, seed := range []string{"users%2Falice", "a/incr", "a%2Fincr", "batch/get", "x/y/z/history", "%", "%zz", "a%00b", "", "/", "snapshot", "%E2%82%AC/pop"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		target, err := parseKVPath(kvPrefix + rest)
		if err != nil {
			if sqlitekv.CodeOf(err) != sqlitekv.CodeInvalidParameters {
				t.Fatalf("rejection with code %q, want INVALID_PARAMETERS", sqlitekv.CodeOf(err))
			}
			return
		}
		if target.table {
			if target.key != "" || !tableOps[target.op] {
				t.Fatalf("table target %+v", target)
			}
			return
		}
		if err := sqlitekv.ValidateKey(target.key); err != nil {
			t.Fatalf("accepted key %q violates the contract: %v", target.key, err)
		}
		if target.op != "" && !keyOps[target.op] {
			t.Fatalf("unknown op %q accepted", target.op)
		}
	})
}

// FuzzBatchBodies sends arbitrary bodies to the batch endpoints of a real
// server on real SQLite files: never a 5xx, every rejection a JSON error
// with a code.
func FuzzBatchBodies(f *testing.F) {
	for _, seed := range []string{
		`{"items":[{"key":"a","value":"1"}]}`, `{"keys":["a","b"]}`, `{"items":[{"key":"a","value":"eA==","encoding":"base64","ttl":5}]}`,
		`{"items":[{"key":"a","value":{"x":1}}]}`, `[]`, `{`, `{"keys":[1,null,"\u0000"]}`, `{"items":[{"key":"","value":""}]}`,
	} {
		f.Add("set", seed)
		f.Add("get", seed)
		f.Add("delete", seed)
	}
	resolver, err := sqlitekv.NewResolver(f.TempDir(), nil, false)
	if err != nil {
		f.Fatal(err)
	}
	reg := actors.NewRegistry(actors.Config{Resolver: resolver, Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal}})
	f.Cleanup(func() { reg.Close() })
	srv := New(Config{Registry: reg, MaxValueBytes: 1 << 12, Metrics: NewMetrics()})
	f.Fuzz(func(t *testing.T, op, body string) {
		if op != "set" && op != "get" && op != "delete" {
			return
		}
		req := httptest.NewRequest(http.MethodPost, kvPrefix+"batch/"+op+"?db=fuzz&create_db_if_missing=true", strings.NewReader(body))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code >= 400 {
			var e errorBody
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code == "" || e.StatusCode != rec.Code {
				t.Fatalf("rejection without a JSON error: %d %s", rec.Code, rec.Body)
			}
		}
	})
}
