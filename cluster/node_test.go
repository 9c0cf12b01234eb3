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

// TestClaim_EtcdFailingAnswers503: a claim that etcd fails (no quorum, a
// record kvd cannot read) is a moment's unavailability, answered 503
// with Retry-After, not a database error.
func TestClaim_EtcdFailingAnswers503(t *testing.T) {
	f := newFakeEtcd(t)
	_, base := testServer(t, f, Config{})
	f.put(epochsKey("garbled.db"), "{not json")
	if status, body := call(t, "GET", base+"/api/v1/sqlite/kv/a?db=garbled", ""); status != 503 || body["code"] != "OVERLOADED" {
		t.Errorf("a garbled epoch record: got %d %v, want 503 OVERLOADED", status, body)
	}
	f.failing("/v3/kv/txn", true)
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?db=app&create_db_if_missing=true", "v"); status != 503 || body["code"] != "OVERLOADED" {
		t.Errorf("etcd failing the claim: got %d %v, want 503 OVERLOADED", status, body)
	}
	f.failing("/v3/kv/txn", false)
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?db=app&create_db_if_missing=true", "v"); status != 200 {
		t.Errorf("etcd answering again: got %d %v, want 200", status, body)
	}
}

// TestNames_TooLongForLitestreamAreRefused: Litestream keeps
// .<name>-litestream beside each database, 12 bytes longer than its
// name, and a file name is at most 255 bytes: a longer database name is
// the client's mistake (400), not a node that cannot serve it (503).
func TestNames_TooLongForLitestreamAreRefused(t *testing.T) {
	_, base := testServer(t, newFakeEtcd(t), Config{})
	for _, size := range []int{243, 244, 247} {
		db := strings.Repeat("a", size-len(".db")) + ".db"
		status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?create_db_if_missing=true&db="+db, "v")
		want, code := 200, ""
		if size > 243 {
			want, code = 400, "INVALID_DB_PATH"
		}
		if status != want || code != "" && body["code"] != code {
			t.Errorf("a name of %d bytes: got %d %v, want %d %s", size, status, body, want, code)
		}
	}
}
