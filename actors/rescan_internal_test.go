package actors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// A rebuild reads the folder without the actor: a write to the database
// is applied while the scan is under way, and the rescan still brings in
// the file added by hand before it was asked for.
func TestRebuild_WritesDoNotWaitForTheFolderScan(t *testing.T) {
	db, folder := openFolder(t)
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(folder, "by-hand"), []byte("1"), 0o640); err != nil {
		t.Fatal(err)
	}
	scanned, release := holdScan(t, nil)
	rebuilt := make(chan error, 1)
	go func() { rebuilt <- db.Rebuild(ctx, "t") }()
	<-scanned

	mustWriteMeanwhile(t, db, "written")
	release()
	if err := <-rebuilt; err != nil {
		t.Fatal(err)
	}
	keys, err := db.List(ctx, sqlitekv.ListRequest{Table: "t", Limit: 10})
	if err != nil || fmt.Sprint(keys) != "[by-hand written]" {
		t.Fatalf("listed %v (%v), want [by-hand written]", keys, err)
	}
}

// A rescan that found many files brings them in a turn at a time, and a
// write sent meanwhile is applied between two turns, not after them all.
func TestRebuild_ImportsManyFilesATurnAtATime(t *testing.T) {
	db, folder := openFolder(t)
	ctx := context.Background()
	const files = 600
	for i := range files {
		if err := os.WriteFile(filepath.Join(folder, fmt.Sprintf("f%04d", i)), []byte("1"), 0o640); err != nil {
			t.Fatal(err)
		}
	}

	turns := 0
	realTurn := importTurn
	importTurn = func(ctx context.Context, d *DB, found sqlitekv.Rescan) (sqlitekv.Rescan, error) {
		if turns++; turns == 2 {
			if _, err := db.Put(ctx, sqlitekv.PutRequest{Table: "t", Key: "written", Value: []byte("2")}); err != nil {
				return found, err
			}
			keys, err := db.List(ctx, sqlitekv.ListRequest{Table: "t", Limit: 2 * files})
			if err != nil {
				return found, err
			}
			if len(keys) < 2 || len(keys) > files {
				t.Errorf("%d keys listed between the first two turns, want the write and some of the %d files", len(keys), files)
			}
		}
		return realTurn(ctx, d, found)
	}
	t.Cleanup(func() { importTurn = realTurn })
	if err := db.Rebuild(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if turns < 2 {
		t.Errorf("%d files brought in %d turn", files, turns)
	}
	keys, err := db.List(ctx, sqlitekv.ListRequest{Table: "t", Limit: 2 * files})
	if err != nil || len(keys) != files+1 {
		t.Fatalf("%d keys listed (%v), want the %d files and the write", len(keys), err, files)
	}
}

// A confirmed table rollback in directory mode reads the folder without
// the actor too: a write is applied while its scan is under way. A file
// the rollback restores, edited by hand after that scan, is imported
// before the rollback overwrites it, so its history keeps the edit.
func TestRollbackTable_ScansTheFolderWithoutTheActor(t *testing.T) {
	db, folder := openFolder(t)
	ctx := context.Background()
	put := func(key, value string) {
		t.Helper()
		if _, err := db.Put(ctx, sqlitekv.PutRequest{Table: "t", Key: key, Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	put("k", "v1")
	time.Sleep(5 * time.Millisecond)
	at := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	put("k", "v2")

	scanned, release := holdScan(t, func() {
		if err := os.WriteFile(filepath.Join(folder, "k"), []byte("by hand"), 0o640); err != nil {
			t.Error(err)
		}
	})
	rolledBack := make(chan error, 1)
	go func() {
		_, err := db.RollbackTable(ctx, sqlitekv.RollbackTableRequest{Table: "t", At: at})
		rolledBack <- err
	}()
	select {
	case <-scanned:
	case <-time.After(5 * time.Second):
		t.Fatal("the rollback did not scan the folder without the actor")
	}
	mustWriteMeanwhile(t, db, "written")
	release()
	if err := <-rolledBack; err != nil {
		t.Fatal(err)
	}
	page, err := db.HistoryPage(ctx, sqlitekv.HistoryRequest{Table: "t", Key: "k", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range page.Versions {
		got = append(got, v.Op+" "+string(v.Entry.Value))
	}
	if want := "[rollback v1 import by hand set v2 set v1]"; fmt.Sprint(got) != want {
		t.Errorf("history of k: %v, want %s", got, want)
	}
	if data, err := os.ReadFile(filepath.Join(folder, "k")); err != nil || string(data) != "v1" {
		t.Errorf("k's file after the rollback: %q (%v), want v1", data, err)
	}
}

// openFolder opens a directory-mode database and makes the folder of its
// table t, for the length of the test.
func openFolder(t *testing.T) (db *DB, folder string) {
	t.Helper()
	root := t.TempDir()
	resolver, err := sqlitekv.NewResolver(t.TempDir(), []string{root}, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver})
	t.Cleanup(func() { reg.Close() })
	dir := filepath.Join(root, "notes")
	folder = filepath.Join(dir, "t")
	if err := os.MkdirAll(folder, 0o750); err != nil {
		t.Fatal(err)
	}
	db, err = reg.Open(context.Background(), dir, true, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Release)
	return db, folder
}

// holdScan holds the next rescan's folder scan, once done, until release:
// it runs then (if given) and closes scanned.
func holdScan(t *testing.T, then func()) (scanned <-chan struct{}, release func()) {
	done, released := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(released) })
	realScan := scanChanges
	scanChanges = func(d *sqlitekv.Dir, ctx context.Context, table string) (sqlitekv.Rescan, error) {
		found, err := realScan(d, ctx, table)
		if then != nil {
			then()
		}
		close(done)
		<-released
		return found, err
	}
	t.Cleanup(func() { release(); scanChanges = realScan })
	return done, release
}

// mustWriteMeanwhile puts key and fails the test if the write is not
// answered within 5 s.
func mustWriteMeanwhile(t *testing.T, db *DB, key string) {
	t.Helper()
	written := make(chan error, 1)
	go func() {
		_, err := db.Put(context.Background(), sqlitekv.PutRequest{Table: "t", Key: key, Value: []byte("w")})
		written <- err
	}()
	select {
	case err := <-written:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write waited for the folder scan")
	}
}
