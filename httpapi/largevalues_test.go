package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

// A value of 4 KiB or more is kept once, in the history row of the write
// that stored it, and its values row holds that row's op number
// (sqlitekv/largevalues.go). Every way of reading and writing the key
// sees what it saw before; small values keep their value in the values
// row.
func TestLargeValue_IsKeptOnceInItsHistoryRowAndReadsAsBefore(t *testing.T) {
	ts := newTestServer(t, withStore(func(o *sqlitekv.Options) { o.HistoryKeep = 2 }))
	q := "db=app&create_db_if_missing=true"
	v1, v2 := strings.Repeat("a", 64<<10), strings.Repeat("b", 64<<10)
	t0 := ts.Clock.Now().Unix()
	wantStatus(t, ts.do(t, "PUT", kv("big", q), v1), 200)
	ts.Clock.Advance(10 * time.Second)
	wantStatus(t, ts.do(t, "PUT", kv("big", q), v2), 200)
	wantStatus(t, ts.do(t, "PUT", kv("small", q), strings.Repeat("s", 4<<10-1)), 200)
	wantStatus(t, ts.do(t, "PUT", kv("unrecorded", q+"&history=false"), v1), 200)
	doc := `{"n":1,"pad":"` + strings.Repeat("p", 8<<10) + `"}`
	wantStatus(t, ts.do(t, "PUT", kv("doc", q), doc, "Content-Type", "application/json"), 200)

	where := map[string]string{"big": "history", "small": "values", "unrecorded": "history", "doc": "history"}
	if got := valuesKeptWhere(t, ts); fmt.Sprint(got) != fmt.Sprint(where) {
		t.Fatalf("where values are kept: got %v, want %v", got, where)
	}

	get := ts.do(t, "GET", kv("big", "db=app"), "")
	if get.Status != 200 || string(get.Body) != v2 {
		t.Fatalf("GET big: %d, %d bytes, want v2", get.Status, len(get.Body))
	}
	if got := ts.do(t, "GET", kv("big", fmt.Sprintf("db=app&at_timestamp=%d", t0)), ""); string(got.Body) != v1 {
		t.Fatalf("GET big at t0: %d bytes, want v1", len(got.Body))
	}
	batch := ts.do(t, "POST", batchPath+"get?db=app", `{"keys":["big","unrecorded"]}`)
	if !strings.Contains(string(batch.Body), `"value":"`+v2+`"`) || !strings.Contains(string(batch.Body), `"value":"`+v1+`"`) {
		t.Fatalf("batch/get of big and unrecorded: %d, %d bytes", batch.Status, len(batch.Body))
	}
	history := ts.do(t, "GET", strings.Replace(kv("big", "db=app"), "?", "/history?", 1), "")
	for _, v := range []string{v1, v2} {
		if !strings.Contains(string(history.Body), base64.StdEncoding.EncodeToString([]byte(v))) {
			t.Fatalf("history of big lacks a version: %d, %d bytes", history.Status, len(history.Body))
		}
	}

	// A write that builds on the value reads it from history.
	if r := ts.do(t, "POST", kv("doc/incr", "db=app&path=n"), ""); r.Status != 200 || r.JSON(t)["value"] != 2.0 {
		t.Fatalf("incr of doc's n: %d %s", r.Status, r.Body)
	}
	if got := string(ts.do(t, "GET", kv("doc", "db=app"), "").Body); got != strings.Replace(doc, `"n":1`, `"n":2`, 1) {
		t.Fatalf("doc after incr: %.40q..., want n 2 and the rest kept", got)
	}
	wantStatus(t, ts.do(t, "PUT", kv("big", "db=app"), v1, "If-Match", get.Header.Get("ETag")), 200)
	wantError(t, ts.do(t, "PUT", kv("big", "db=app"), v2, "If-Match", get.Header.Get("ETag")), 412, "CAS_MISMATCH")
	// The key rollback restores v2, by a new history row; retention (two
	// versions a key) has pruned v1's first row meanwhile.
	if r := ts.do(t, "POST", kv("big/rollback", "db=app"), ""); r.Status != 200 || r.JSON(t)["value"] != v2 {
		t.Fatalf("rollback of big: %d, %d bytes", r.Status, len(r.Body))
	}
	if got := ts.do(t, "GET", kv("big", "db=app"), ""); string(got.Body) != v2 {
		t.Fatalf("GET big after its rollback: %d bytes, want v2", len(got.Body))
	}
	// A small write over a large value, and a large one over a small value.
	wantStatus(t, ts.do(t, "PUT", kv("big", "db=app"), "now small"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("small", "db=app"), v2), 200)
	where["big"], where["small"] = "values", "history"
	if got := valuesKeptWhere(t, ts); fmt.Sprint(got) != fmt.Sprint(where) {
		t.Fatalf("where values are kept after the small and large writes: got %v, want %v", got, where)
	}
	if got := string(ts.do(t, "GET", kv("small", "db=app"), "").Body); got != v2 {
		t.Fatalf("GET small: %d bytes, want v2", len(got))
	}
	wantStatus(t, ts.do(t, "DELETE", kv("small", "db=app"), ""), 200)
	wantError(t, ts.do(t, "GET", kv("small", "db=app"), ""), 404, "KEY_NOT_FOUND")
	// The server's close checks every values row that names a history row
	// (sqlitekv.CheckIntegrity).
}

// A large value written with history=false is kept in its write's gap
// marker, which holds it only while it is the key's present value: the
// next write of the key takes it out, whether in the same group, in a
// later one, or after the database was closed and opened again (the
// server's close checks that no gap marker keeps a value it should not).
// History still shows the write as unrecorded.
func TestLargeValue_WrittenWithoutHistoryIsLentByItsGapMarker(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true&history=false"
	v1, v2 := strings.Repeat("a", 8<<10), strings.Repeat("b", 8<<10)
	wantStatus(t, ts.do(t, "PUT", kv("k", q), v1), 200)
	where := map[string]string{"k": "history"}
	if got := only(valuesKeptWhere(t, ts), where); fmt.Sprint(got) != fmt.Sprint(where) {
		t.Fatalf("where k's value is kept: got %v, want %v", got, where)
	}
	if got := ts.do(t, "GET", kv("k", "db=app"), ""); string(got.Body) != v1 {
		t.Fatalf("GET k: %d, %d bytes, want v1", got.Status, len(got.Body))
	}
	history := ts.do(t, "GET", strings.Replace(kv("k", "db=app"), "?", "/history?", 1), "")
	if ops := history.JSON(t)["operations"].([]any); len(ops) != 1 || strings.Contains(string(history.Body), base64.StdEncoding.EncodeToString([]byte(v1))) ||
		ops[0].(map[string]any)["operation"].(map[string]any)["unrecorded"] != true {
		t.Fatalf("history of k: %.300s, want one unrecorded write without its value", history.Body)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k", q), v2), 200) // takes it from the first marker
	if got := ts.do(t, "GET", kv("k", "db=app"), ""); string(got.Body) != v2 {
		t.Fatalf("GET k after the second write: %d bytes, want v2", len(got.Body))
	}
	// Two writes of one key in one group.
	twice := `{"items":[{"key":"t","value":"` + v1 + `"},{"key":"t","value":"` + v2 + `"}]}`
	wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, twice), 200)
	// Closed and opened again, the writer learns from the row that it lends.
	ts.Registry.CloseDB(filepath.Join(ts.DataDir, "app.db"))
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"), "small, recorded"), 200)
	wantStatus(t, ts.do(t, "DELETE", kv("t", "db=app"), ""), 200)
	where = map[string]string{"k": "values"}
	if got := only(valuesKeptWhere(t, ts), where); fmt.Sprint(got) != fmt.Sprint(where) {
		t.Fatalf("where k's value is kept at last: got %v, want %v", got, where)
	}
}

// valuesKeptWhere reads app.db's default table: for each key, "history"
// when its values row holds the op number of its own newest history row,
// "values" when it holds the value.
func valuesKeptWhere(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	conn, err := sqlite3.OpenFlags(filepath.Join(ts.DataDir, "app.db"), sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmt, _, err := conn.Prepare(`SELECT v.key, typeof(v.value), v.value = v.version AND length(h.value) >= 4096
FROM kv_store v LEFT JOIN "kv_store:history" h ON h.op_number = v.version`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	where := map[string]string{}
	for stmt.Step() {
		switch key := stmt.ColumnText(0); {
		case stmt.ColumnText(1) == "integer" && stmt.ColumnBool(2):
			where[key] = "history"
		case stmt.ColumnText(1) == "blob":
			where[key] = "values"
		default:
			where[key] = stmt.ColumnText(1) + " not naming its newest history row"
		}
	}
	if err := stmt.Err(); err != nil {
		t.Fatal(err)
	}
	return where
}

// The large values a kvd before this one kept in their values rows move
// to their history rows as the sweep passes over the table, a page of
// 1,000 keys or 16 MiB of values a round, one round queued after another
// until the end: reads see the same values before and after. A value
// history did not record, or recorded otherwise, stays where it is. The
// writer, which compared megabytes of values, is renewed (renew.go).
func TestLargeValue_AnOlderKvdsValuesMoveToHistoryOnTheSweep(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	for b := range 15 { // 1,500 small keys: two pages
		items := make([]string, 100)
		for i := range items {
			items[i] = fmt.Sprintf(`{"key":"k%d-%02d","value":"small"}`, b, i)
		}
		wantStatus(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[`+strings.Join(items, ",")+`]}`), 200)
	}
	large := map[string]string{"k0-big": strings.Repeat("a", 8<<10), "zz-big": strings.Repeat("z", 8<<10), "unrecorded": strings.Repeat("u", 8<<10), "edited": strings.Repeat("e", 8<<10),
		"m1-big": strings.Repeat("1", 9<<20), "m2-big": strings.Repeat("2", 9<<20)} // the two cross 16 MiB
	for key, v := range large {
		extra := ""
		if key == "unrecorded" {
			extra = "&history=false"
		}
		wantStatus(t, ts.do(t, "PUT", kv(key, q+extra), v), 200)
	}
	// The layout an older kvd wrote: each value in its values row. And a
	// history row that no longer holds its write's value.
	path := filepath.Join(ts.DataDir, "app.db")
	ts.Registry.CloseDB(path)
	conn, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(`UPDATE kv_store AS v SET value = (SELECT value FROM "kv_store:history" WHERE op_number = v.value) WHERE typeof(value) = 'integer';
UPDATE "kv_store:history" SET value = NULL WHERE NOT recorded;
UPDATE "kv_store:history" SET value = x'00' || value WHERE key = 'edited'`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	where := map[string]string{"k0-big": "values", "m1-big": "values", "m2-big": "values", "zz-big": "values", "unrecorded": "values", "edited": "values"}
	if got := only(valuesKeptWhere(t, ts), where); fmt.Sprint(got) != fmt.Sprint(where) {
		t.Fatalf("the older layout: got %v, want %v", got, where)
	}
	readsAll := func() {
		for key, v := range large {
			if got := ts.do(t, "GET", kv(key, "db=app"), ""); got.Status != 200 || string(got.Body) != v {
				t.Fatalf("GET %s: %d, %d bytes, want its %d", key, got.Status, len(got.Body), len(v))
			}
		}
	}
	readsAll()

	db, err := ts.Registry.Open(context.Background(), "app", false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	renewed := func() float64 {
		return metricValue(t, string(ts.do(t, "GET", "/metrics", "").Body), "kvd_sqlite_connections_renewed_total")
	}
	before := renewed()
	for more, rounds := true, 0; more; rounds++ { // the actor queues rounds too
		if rounds == 10 {
			t.Fatal("the sweep still had more after 10 rounds over 1,506 keys")
		}
		res, err := db.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		more = res.More
	}
	after := renewed()
	for deadline := time.Now().Add(5 * time.Second); after == before && time.Now().Before(deadline); after = renewed() {
		time.Sleep(10 * time.Millisecond)
	}
	if after == before {
		t.Fatalf("renewed connections stayed at %v after the sweep compared 9 MiB values, want the writer renewed", before)
	}
	for _, key := range []string{"k0-big", "m1-big", "m2-big", "zz-big"} {
		where[key] = "history"
	}
	if got := only(valuesKeptWhere(t, ts), where); fmt.Sprint(got) != fmt.Sprint(where) {
		t.Fatalf("after the sweep: got %v, want %v", got, where)
	}
	readsAll()
	// The server's close checks the rows that name history rows.
}

// only is what got says of the keys of want.
func only(got, want map[string]string) map[string]string {
	picked := map[string]string{}
	for key := range want {
		picked[key] = got[key]
	}
	return picked
}
