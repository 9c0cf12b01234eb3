package httpapi_test

import "testing"

// The hand-over endpoint belongs to cluster mode (the cluster drill
// exercises it); a kvd serving alone has nothing to hand over, and says so.
func TestReleaseDB_AloneIsNotFound(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", "/api/v1/sqlite/kv/k?db=app&create_db_if_missing=true", "1")
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/db/release?db=app", ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/db/release?db=app&table=x", ""), 400, "INVALID_PARAMETERS")
	wantStatus(t, ts.do(t, "GET", "/api/v1/sqlite/kv/k?db=app", ""), 200)
}
