package httpapi_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

func listKeys(tb testing.TB, ts *testServer, query string) []string {
	tb.Helper()
	r := ts.do(tb, "GET", "/api/v1/sqlite/kv?db=app&"+query, "")
	wantStatus(tb, r, 200)
	m := r.JSON(tb)
	var keys []string
	for _, k := range m["keys"].([]any) {
		keys = append(keys, k.(string))
	}
	if m["count"] != float64(len(keys)) {
		tb.Fatalf("count: got %v, want %d", m["count"], len(keys))
	}
	return keys
}

func TestList_ByteOrderPrefixesAndPaging(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for _, k := range []string{"b", "a/2", "a/10", "a/1", "ab", "A", "a", "é", "a/b/c"} {
		ts.do(t, "PUT", kv(k, q), "x")
	}
	ts.do(t, "PUT", kv("a%2Fexpiring", q+"&ttl=5"), "x")
	if got := fmt.Sprint(listKeys(t, ts, "")); got != "[A a a/1 a/10 a/2 a/b/c a/expiring ab b é]" {
		t.Fatalf("all keys: got %s", got)
	}
	if got := fmt.Sprint(listKeys(t, ts, "prefix=a%2F")); got != "[a/1 a/10 a/2 a/b/c a/expiring]" {
		t.Fatalf("prefix a/: got %s", got)
	}
	if got := fmt.Sprint(listKeys(t, ts, "prefix=a%2Fb%2F")); got != "[a/b/c]" {
		t.Fatalf("prefix a/b/: got %s", got)
	}
	ts.Clock.Advance(5 * time.Second)
	if got := fmt.Sprint(listKeys(t, ts, "prefix=a%2F")); got != "[a/1 a/10 a/2 a/b/c]" {
		t.Fatalf("prefix a/ after expiry: got %s", got)
	}
	var paged []string
	for offset := 0; offset < 20; offset += 3 {
		paged = append(paged, listKeys(t, ts, fmt.Sprintf("limit=3&offset=%d", offset))...)
	}
	if got := fmt.Sprint(paged); got != "[A a a/1 a/10 a/2 a/b/c ab b é]" {
		t.Fatalf("paged: got %s", got)
	}
	r := ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&limit=2&offset=1&prefix=a", "").JSON(t)
	if r["limit"] != 2.0 || r["offset"] != 1.0 || r["prefix"] != "a" {
		t.Fatalf("echoed paging: got %v", r)
	}
	if got := listKeys(t, ts, "table=empty_table"); len(got) != 0 {
		t.Fatalf("unwritten table: got %v, want none", got)
	}
}

// Paging with after= (the previous page's next_after) misses no key that
// lived throughout, though keys before the cursor expire or are deleted
// between pages; offset would skip as many as went.
func TestList_PagingWithAfterMissesNothingWhenEarlierKeysGo(t *testing.T) {
	for _, c := range []struct{ query, first, rest string }{
		{"limit=2", "[a b]", "[c d e f p/2 p/3]"},
		{"limit=1&prefix=p%2F", "[p/1]", "[p/2 p/3]"},
	} {
		ts := newTestServer(t)
		q := "db=app&create_db_if_missing=true"
		for _, k := range []string{"a", "b", "p/1"} {
			ts.do(t, "PUT", kv(k, q+"&ttl=1"), "x")
		}
		for _, k := range []string{"c", "d", "e", "f", "p/2", "p/3"} {
			ts.do(t, "PUT", kv(k, q), "x")
		}
		page := func(after string) (keys []string, next string) {
			m := ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&"+c.query+"&after="+url.QueryEscape(after), "").JSON(t)
			for _, k := range m["keys"].([]any) {
				keys = append(keys, k.(string))
			}
			next, _ = m["next_after"].(string)
			return keys, next
		}
		first, next := page("")
		ts.Clock.Advance(2 * time.Second) // the first page's keys expire
		var rest []string
		for i := 0; next != "" && i < 10; i++ {
			var keys []string
			keys, next = page(next)
			rest = append(rest, keys...)
		}
		if fmt.Sprint(first) != c.first || fmt.Sprint(rest) != c.rest {
			t.Errorf("%s: pages %v then %v, want %s then %s", c.query, first, rest, c.first, c.rest)
		}
	}
}

func TestList_BadParameters(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), "x")
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1", "table=bad-name"} {
		wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=app&"+q, ""), 400, "INVALID_PARAMETERS")
	}
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=missing", ""), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "GET", "/api/v1/sqlite/kv?db=..%2Fx", ""), 400, "INVALID_DB_PATH")
	if got := listKeys(t, ts, "limit=1000"); len(got) != 1 {
		t.Fatalf("limit=1000: got %v", got)
	}
}
