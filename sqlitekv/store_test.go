package sqlitekv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// history lists key's versions newest first: limit of them, plus the one
// before when there is one, so the old value of every listed write is known.
func (s *Store) history(ctx context.Context, table, key string, limit int) ([]Version, error) {
	p, err := s.HistoryPage(ctx, HistoryRequest{Table: table, Key: key, Limit: limit})
	return p.Versions, err
}

// mustOpenStore opens a store on a fresh file with a settable clock and
// checks the file's integrity when the test ends.
func mustOpenStore(tb testing.TB, opts Options) (*Store, *time.Time) {
	tb.Helper()
	now := time.Unix(1_700_000_000, 0)
	opts.Now = func() time.Time { return now }
	path := filepath.Join(tb.TempDir(), "test.db")
	s, err := Open(path, true, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
		conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close()
		checkIntegrity(tb, conn)
		checkAllChains(tb, conn)
	})
	return s, &now
}

func checkIntegrity(tb testing.TB, conn *sqlite3.Conn) {
	tb.Helper()
	if err := integrityOf(conn); err != nil {
		tb.Error(err)
	}
}

// fileStore opens a store on a file the test may change outside kvd
// (rewrite), with a fixed clock.
func fileStore(t *testing.T) (*Store, string) {
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := Open(path, true, fileStoreOptions)
	must(t, err)
	return s, path
}

var fileStoreOptions = Options{Now: func() time.Time { return time.Unix(1_700_000_000, 0) }}

// rewrite changes s's file outside kvd (changeOutside) and opens it again.
func rewrite(t *testing.T, s *Store, path, sql string) *Store {
	changeOutside(t, s, path, sql)
	s, err := Open(path, true, fileStoreOptions)
	must(t, err)
	return s
}

// changeOutside closes s, checks its file and runs sql on it.
func changeOutside(t *testing.T, s *Store, path, sql string) {
	must(t, s.Close())
	must(t, CheckIntegrity(path))
	conn, err := sqlite3.Open(path)
	must(t, err)
	must(t, conn.Exec(sql))
	must(t, conn.Close())
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func put(tb testing.TB, s *Store, key, value string) PutResult {
	tb.Helper()
	res, err := s.Writer().Put(PutRequest{Table: DefaultTable, Key: key, Value: []byte(value), ContentType: "text/plain"})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func TestWriter_FailedWriteInAGroupLeavesItsNeighbours(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "1")
	_, err := w.Put(PutRequest{Table: DefaultTable, Key: "b", Value: []byte("2"), IfMatch: []byte("x")})
	if CodeOf(err) != CodeCASKeyMissing {
		t.Fatalf("CAS on a missing key: got %v", err)
	}
	put(t, s, "c", "3")
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for key, want := range map[string]Code{"a": "", "b": CodeKeyNotFound, "c": ""} {
		if _, err := s.Get(ctx, GetRequest{Table: DefaultTable, Key: key}); CodeOf(err) != want {
			t.Errorf("%s: got %v, want code %q", key, err, want)
		}
	}
}

// Writes refused in a group change nothing, not even the expiry of the
// key they were refused on: the group's other writes commit around them.
func TestWriter_RefusedWritesInAGroupChangeNothing(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	put(t, s, "text", "abc")
	if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "old", Value: []byte("1"), TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(2 * time.Second)
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "1")
	if _, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "text", Delta: 1}); CodeOf(err) != CodeInvalidParameters {
		t.Fatalf("incr of text: got %v", err)
	}
	if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "old", Value: []byte("2"), IfMatch: []byte("1")}); CodeOf(err) != CodeCASKeyMissing {
		t.Fatalf("CAS on an expired key: got %v", err)
	}
	if err := w.Delete(DeleteRequest{Table: DefaultTable, Key: "a", Versions: Versions{Match: []int64{1}}}); CodeOf(err) != CodeCASMismatch {
		t.Fatalf("delete with a stale version: got %v", err)
	}
	put(t, s, "c", "3")
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for key, want := range map[string]int{"a": 1, "c": 1, "text": 1, "old": 1} {
		versions, err := s.history(ctx, DefaultTable, key, 10)
		if err != nil || len(versions) != want {
			t.Errorf("%s: %d versions (%v), want %d", key, len(versions), err, want)
		}
	}
}

// A write that fails after changing something (a database error) cannot
// be undone on its own without a savepoint, and neither can anything once
// SQLite has rolled the whole transaction back (as on a full disk): then
// the whole group fails, and none of it is left. A write whose very first
// change fails alone, statement undone, fails alone; a batch set fails
// on its second item, after its first was stored, so its group fails. A
// value row waits for the group's end (heldvalues.go): when writing it
// fails, the commit fails, and with it every write of the group.
func TestWriter_DatabaseErrorsFailTheGroupWhenTheyMust(t *testing.T) {
	failing := []struct {
		name        string
		write       func(w *Writer) error
		changeFirst bool // it changed something before it reached "boom"
	}{
		{"incr", func(w *Writer) error {
			_, err := w.Incr(IncrRequest{Table: DefaultTable, Key: "boom", Delta: 1})
			return err
		}, false},
		{"batch set", func(w *Writer) error {
			_, err := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: []BatchItem{{Key: "pre", Value: []byte("p")}, {Key: "boom", Value: []byte("2")}}})
			return err
		}, true},
	}
	for _, c := range []struct {
		name, trigger string
		groupFails    bool
		atCommit      bool // the value row fails, which is written when the group ends
	}{
		// The write records its history row; the update of its value fails.
		{"after a change", `BEFORE UPDATE ON kv_store WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`, true, true},
		{"transaction rolled back", `BEFORE UPDATE ON kv_store WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ROLLBACK, 'boom'); END`, true, true},
		{"first change, transaction rolled back", `BEFORE INSERT ON "kv_store:history" WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ROLLBACK, 'boom'); END`, true, false},
		{"first change, statement undone", `BEFORE INSERT ON "kv_store:history" WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`, false, false},
	} {
		for _, f := range failing {
			t.Run(f.name+", "+c.name, func(t *testing.T) {
				s, _ := mustOpenStore(t, Options{})
				w := s.Writer()
				put(t, s, "boom", "1")
				if err := w.conn.Exec(`CREATE TRIGGER boom ` + c.trigger); err != nil {
					t.Fatal(err)
				}
				if err := w.Begin(); err != nil {
					t.Fatal(err)
				}
				put(t, s, "a", "1")
				writeErr := f.write(w)
				_, putErr := w.Put(PutRequest{Table: DefaultTable, Key: "c", Value: []byte("3")})
				_, batchErr := w.BatchSet(BatchSetRequest{Table: DefaultTable, Items: []BatchItem{{Key: "d", Value: []byte("4")}}})
				commitErr := w.Commit()
				want, left := Code(""), 1
				if c.groupFails || f.changeFirst {
					want, left = CodeDatabaseError, 0
				}
				codes := map[string]Code{"the write": CodeDatabaseError, "put after the failure": want, "batch after the failure": want, "commit": want}
				if c.atCommit {
					codes = map[string]Code{"the write": "", "put after the failure": "", "batch after the failure": "", "commit": CodeDatabaseError}
				}
				for what, err := range map[string]error{"the write": writeErr, "put after the failure": putErr, "batch after the failure": batchErr, "commit": commitErr} {
					if CodeOf(err) != codes[what] {
						t.Errorf("%s: got %v, want code %q", what, err, codes[what])
					}
				}
				ctx := context.Background()
				for key, want := range map[string]int{"a": left, "c": left, "d": left, "boom": 1, "pre": 0} {
					versions, err := s.history(ctx, DefaultTable, key, 10)
					if CodeOf(err) == CodeKeyNotFound {
						err = nil
					}
					if err != nil || len(versions) != want {
						t.Errorf("%s: %d versions (%v), want %d", key, len(versions), err, want)
					}
				}
				put(t, s, "e", "5") // the next write starts clean
			})
		}
	}
}

func TestWriter_VersionsGrowAcrossDeleteAndRecreate(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	v1 := put(t, s, "k", "1").Version
	if err := s.Writer().Delete(DeleteRequest{Table: DefaultTable, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	v2 := put(t, s, "k", "2").Version
	if v2 <= v1 {
		t.Fatalf("version after delete and recreate: got %d, want more than %d", v2, v1)
	}
}

// Retention keeps at least keep versions of every key and, checking one
// write in keep/4 at random, about keep/4 more on average.
func TestRetention_KeepsAtLeastKeepAndAboutAQuarterMore(t *testing.T) {
	const keep, keys, writes = 40, 20, 120
	s, now := mustOpenStore(t, Options{HistoryKeep: keep})
	for i := range writes {
		*now = now.Add(time.Second)
		for k := range keys {
			put(t, s, fmt.Sprint("k", k), fmt.Sprint(i))
		}
	}
	total := 0
	for k := range keys {
		versions, err := s.history(context.Background(), DefaultTable, fmt.Sprint("k", k), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(versions); n < keep {
			t.Fatalf("k%d: %d versions kept with keep=%d, want at least %d", k, n, keep, keep)
		}
		if string(versions[0].Entry.Value) != fmt.Sprint(writes-1) {
			t.Fatalf("k%d: newest version %q, want %d", k, versions[0].Entry.Value, writes-1)
		}
		total += len(versions)
	}
	if avg := float64(total) / keys; avg > keep+keep/2 {
		t.Fatalf("versions per key on average: got %.1f, want about %d (keep + keep/4)", avg, keep+keep/4)
	}
}

func TestSweep_RemovesExpiredKeysInBoundedBatches(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	for i := range sweepBatch + 10 {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: fmt.Sprint(i), Value: []byte("x"), TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	*now = now.Add(2 * time.Second)
	first, err := w.Sweep()
	if err != nil || first.Expired != sweepBatch || !first.More {
		t.Fatalf("first sweep: got %+v, %v; want %d expired and more to do", first, err, sweepBatch)
	}
	second, err := w.Sweep()
	if err != nil || second.Expired != 10 || second.More {
		t.Fatalf("second sweep: got %+v, %v; want 10 expired and nothing more", second, err)
	}
}

// A sweep whose group is rolled back has pruned nothing, so the next one
// starts from the oldest rows again instead of where the lost one stopped.
func TestSweep_PrunesAgainWhatARolledBackGroupPruned(t *testing.T) {
	s, now := mustOpenStore(t, Options{HistoryMaxAge: time.Second})
	w := s.Writer()
	for i := range sweepBatch + 10 {
		put(t, s, "k", fmt.Sprint(i))
	}
	*now = now.Add(2 * time.Second)
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if res, err := w.Sweep(); err != nil || res.Pruned != sweepBatch {
		t.Fatalf("first sweep: got %+v, %v; want %d pruned", res, err, sweepBatch)
	}
	w.abandon()
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Sweep(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	versions, err := s.history(context.Background(), DefaultTable, "k", 1000)
	if err != nil || len(versions) != 10 {
		t.Fatalf("versions left: got %d (%v), want 10", len(versions), err)
	}
}

// A sweep that fails on one key still reports the keys it removed before
// it: each went in a savepoint of its own and stays removed.
func TestSweep_CountsWhatItRemovedBeforeAFailure(t *testing.T) {
	s, now := mustOpenStore(t, Options{})
	w := s.Writer()
	for i, key := range []string{"a", "b"} {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: key, Value: []byte("x"), TTL: time.Duration(i+1) * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.conn.Exec(`CREATE TRIGGER stuck BEFORE DELETE ON kv_store WHEN OLD.key = 'b' BEGIN SELECT RAISE(ABORT, 'stuck'); END`); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(5 * time.Second)
	res, err := w.Sweep()
	if CodeOf(err) != CodeDatabaseError || res.Expired != 1 {
		t.Fatalf("sweep: got %+v, %v; want 1 expired and a database error", res, err)
	}
	if _, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "a"}); CodeOf(err) != CodeKeyNotFound {
		t.Fatalf("a after the sweep: got %v, want KEY_NOT_FOUND (removed)", err)
	}
}

func TestTimeline_KeysSeekByPrefix(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	for _, k := range []string{"a", "b/1", "b/2", "b/2/x", "c"} {
		put(t, s, k, "v")
	}
	s.Writer().Delete(DeleteRequest{Table: DefaultTable, Key: "b/1"})
	asOf, err := s.TableAt(context.Background(), DefaultTable, 1<<62, Candidates{Prefix: "b/", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(asOf.Keys) != "[b/2]" || !asOf.Truncated || asOf.Next != "b/2" {
		t.Fatalf("table at now under b/ with limit 2: got %v truncated=%v next=%q, want [b/2] truncated, next b/2", asOf.Keys, asOf.Truncated, asOf.Next)
	}
	rest, err := s.TableAt(context.Background(), DefaultTable, 1<<62, Candidates{Prefix: "b/", After: asOf.Next, Limit: 2})
	if err != nil || fmt.Sprint(rest.Keys) != "[b/2/x]" || rest.Truncated || rest.Next != "" {
		t.Fatalf("next page: got %v truncated=%v next=%q, %v; want [b/2/x], the last page", rest.Keys, rest.Truncated, rest.Next, err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for prefix, want := range map[string]string{"": "", "a": "b", "a/": "a0", "a\xff": "b", "\xff\xff": ""} {
		if got := prefixEnd(prefix); got != want {
			t.Errorf("prefixEnd(%q): got %q, want %q", prefix, got, want)
		}
	}
}

func TestOpen_WriterPageCache(t *testing.T) {
	for _, tc := range []struct {
		set  int64
		want int64 // PRAGMA cache_size: negative KiB
	}{{0, -DefaultCacheBytes >> 10}, {3 << 20, -3 << 10}} {
		s, _ := mustOpenStore(t, Options{CacheBytes: tc.set})
		var got int64
		stmt, _, err := s.Writer().conn.Prepare(`PRAGMA cache_size`)
		if err != nil {
			t.Fatal(err)
		}
		if stmt.Step() {
			got = stmt.ColumnInt64(0)
		}
		stmt.Close()
		if got != tc.want {
			t.Errorf("CacheBytes %d: cache_size %d, want %d", tc.set, got, tc.want)
		}
	}
}

// A file removed by another program after the resolver looked, before the
// open, is no database (404 above), not a failure.
func TestOpen_AFileRemovedBeforeTheOpenIsNotFound(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "gone.db"), false, Options{})
	if CodeOf(err) != CodeDatabaseNotFound {
		t.Fatalf("open of a missing file without create: got %v, want %s", err, CodeDatabaseNotFound)
	}
}

// A connection keeps statements for at most maxPreparedTables tables
// (and the one a read or the sweep is on): a database of more tables
// costs preparing them again, not memory that grows with them until
// SQLite runs out (about 2,800 tables did).
func TestTables_AConnectionKeepsStatementsForBoundedlyMany(t *testing.T) {
	s, _ := mustOpenStore(t, Options{MaxTables: maxPreparedTables + 20, HistoryMaxAge: time.Hour})
	w := s.Writer()
	tables := maxPreparedTables + 8
	for i := range tables {
		if _, err := w.Put(PutRequest{Table: fmt.Sprint("t", i), Key: "k", Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, w.Begin())
	if len(w.tables) != 0 {
		t.Fatalf("tables prepared after Begin: %d, want none of %d", len(w.tables), tables)
	}
	if _, err := w.Sweep(); err != nil {
		t.Fatal(err)
	}
	must(t, w.Commit())
	if len(w.tables) > maxPreparedTables {
		t.Fatalf("tables prepared after a sweep over %d: %d, want at most %d", tables, len(w.tables), maxPreparedTables)
	}
	for range 2 {
		for i := range tables {
			if e, err := s.Get(context.Background(), GetRequest{Table: fmt.Sprint("t", i), Key: "k"}); err != nil || string(e.Value) != "v" {
				t.Fatalf("t%d/k: %q, %v", i, e.Value, err)
			}
		}
	}
	for _, r := range s.all {
		if len(r.tables) > maxPreparedTables+1 {
			t.Fatalf("tables a reader keeps prepared: %d, want at most %d", len(r.tables), maxPreparedTables+1)
		}
	}
}
