package cluster

import (
	"net/url"
	"strings"
	"testing"
)

// TestNames_LitestreamCannotOpenAreRefused: Litestream opens a database's
// path as a SQLite URI, where ?, # and % mean something: q?x.db would be
// replicated as q, and every write to it lost with the node. Such names
// are refused as a client's mistake, before anything is written.
func TestNames_LitestreamCannotOpenAreRefused(t *testing.T) {
	_, base := testServer(t, newFakeEtcd(t), Config{})
	for _, db := range []string{"q?x", "h#x", "p%41x", "p%x"} {
		status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?create_db_if_missing=true&db="+url.QueryEscape(db), "v")
		if msg, _ := body["message"].(string); status != 400 || body["code"] != "INVALID_DB_PATH" || !strings.Contains(msg, "%") {
			t.Errorf("db %q: got %d %v, want 400 INVALID_DB_PATH naming the characters refused", db, status, body)
		}
	}
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?create_db_if_missing=true&db=plain", "v"); status != 200 {
		t.Fatalf("db plain: got %d %v, want 200", status, body)
	}
}
