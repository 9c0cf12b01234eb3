package actors

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

// Only clean spellings of a database are remembered, so a client cannot
// grow the name cache by inventing spellings (a/./b, a//b, ...).
func TestRegistry_RemembersOnlyCleanSpellings(t *testing.T) {
	dataDir := t.TempDir()
	resolver, err := sqlitekv.NewResolver(dataDir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver})
	defer reg.Close()
	abs := filepath.Join(resolver.DataDir(), "app.db")
	spellings := []string{"app", "./app", abs, resolver.DataDir() + "//app.db", resolver.DataDir() + "/./app.db"}
	for i := range 50 {
		spellings = append(spellings, resolver.DataDir()+"/"+strings.Repeat("./", i+1)+"app.db")
	}
	for _, name := range spellings {
		db, err := reg.Open(context.Background(), name, true, false)
		if err != nil {
			t.Fatalf("Open(%q): %v", name, err)
		}
		db.Release()
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.dbs) != 1 || len(reg.byName) != 2 {
		t.Fatalf("after %d spellings: %d databases, %d names remembered; want 1 and 2 (app, %s)", len(spellings), len(reg.dbs), len(reg.byName), abs)
	}
}

// blockOp holds its actor until released.
type blockOp struct{ release chan struct{} }

func (o blockOp) apply(*dbActor) (none, error) { <-o.release; return none{}, nil }
func (blockOp) touches() (string, []string)    { return anyTable, nil }

func TestAlive_FailsWhileAnActorIsStuckAndRecovers(t *testing.T) {
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver})
	defer reg.Close()
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	alive := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return reg.Alive(ctx)
	}
	if err := alive(); err != nil {
		t.Fatalf("idle registry: %v", err)
	}
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // before the registry's Close, which waits for the actor
	tell(db, blockOp{release})
	time.Sleep(50 * time.Millisecond) // the actor has begun its group: that was work
	if err := alive(); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("stuck actor: got %v, want an error naming it", err)
	}
	unblock()
	if err := alive(); err != nil {
		t.Fatalf("released actor: %v", err)
	}
}

// openApp opens the database app in a registry of its own, both closed
// when the test ends.
func openApp(t *testing.T) (*Registry, *DB) {
	t.Helper()
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver, Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal}})
	t.Cleanup(func() { reg.Close() })
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Release)
	return reg, db
}

// workOp holds its actor for d, writing all the while, as a table
// rollback over many keys does.
type workOp struct{ d time.Duration }

func (o workOp) apply(a *dbActor) (none, error) {
	for end := time.Now().Add(o.d); time.Now().Before(end); {
		if _, err := a.w.Incr(sqlitekv.IncrRequest{Table: "kv_store", Key: "n", Delta: 1}); err != nil {
			return none{}, err
		}
	}
	return none{}, nil
}
func (workOp) touches() (string, []string) { return anyTable, nil }

// An actor that does not answer because it is at work (its writer runs
// SQL all along) is alive: a long table rollback must not get kvd
// restarted by the watchdog. One that does not answer and does nothing
// is stuck (the test above).
func TestAlive_HoldsWhileAnActorIsBusyWorking(t *testing.T) {
	reg, db := openApp(t)
	tell(db, workOp{time.Second})
	time.Sleep(50 * time.Millisecond) // the actor has taken it
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := reg.Alive(ctx); err != nil {
		t.Fatalf("an actor at work: %v", err)
	}
}

// Requests that open the same new database at once get one owner: one
// store, one writer on the file.
func TestRegistry_ConcurrentOpensOfOnePathShareOneOwner(t *testing.T) {
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver})
	defer reg.Close()
	dbs := make([]*DB, 32)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := reg.Open(context.Background(), "app", true, false)
			if err != nil {
				t.Error(err)
				return
			}
			dbs[i] = db
		}()
	}
	wg.Wait()
	for i, db := range dbs {
		if db != dbs[0] {
			t.Fatalf("Open %d: got another owner than Open 0", i)
		}
		db.Release()
	}
	if n := reg.OpenCount(); n != 1 {
		t.Fatalf("open databases: got %d, want 1", n)
	}
}

// While a database locked by another program waits out SQLite's busy
// timeout in its open, the registry goes on: another database opens,
// Alive answers, and a request for the locked one stops waiting when its
// client goes. The failed open leaves nothing behind: once the lock is
// gone, the database opens.
func TestRegistry_AnOpenHeldUpElsewhereHoldsUpNothingElse(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver})
	defer reg.Close()
	locker, opened := holdUpAnOpen(t, reg, "locked")
	defer locker.Close()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := reg.Open(ctx, "locked", false, false); sqlitekv.CodeOf(err) != sqlitekv.CodeOverloaded {
		t.Fatalf("second request for the locked database, gone after 100ms: got %v, want OVERLOADED (cancelled)", err)
	}
	other, err := reg.Open(context.Background(), "other", true, false)
	if err != nil {
		t.Fatal(err)
	}
	other.Release()
	if err := reg.Alive(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("while locked.db was opening, a cancelled wait, another open and Alive took %v; want well under 1s", took)
	}

	if err := <-opened; !strings.Contains(fmt.Sprint(err), "locked by another process") {
		t.Fatalf("open of the locked database: got %v, want it locked by another process", err)
	}
	locker.Close()
	db, err := reg.Open(context.Background(), "locked", false, false)
	if err != nil {
		t.Fatalf("open once the lock is gone: %v", err)
	}
	db.Release()
}

// holdUpAnOpen makes the database name in reg's data directory, holds it
// with an exclusive lock on another connection (locker, to close), and
// starts an open of it, which waits out SQLite's busy timeout and then
// sends its error to opened; it returns once that open is under way.
func holdUpAnOpen(tb testing.TB, reg *Registry, name string) (locker *sqlite3.Conn, opened <-chan error) {
	tb.Helper()
	path := filepath.Join(reg.cfg.Resolver.DataDir(), name+".db")
	locker, err := sqlite3.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := locker.Exec(`PRAGMA locking_mode = EXCLUSIVE; CREATE TABLE t(x); INSERT INTO t VALUES (1)`); err != nil {
		locker.Close()
		tb.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := reg.Open(context.Background(), name, false, false)
		result <- err
	}()
	for !reg.isOpening(path) {
		runtime.Gosched()
	}
	return locker, result
}

func (r *Registry) isOpening(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opening[path] != nil
}

// A table rollback's dry run reads on a read connection: it answers while
// the database's actor is busy, and holds none of its writes up.
func TestRollbackTable_ADryRunDoesNotWaitForTheActor(t *testing.T) {
	_, db := openApp(t)
	ctx := context.Background()
	if _, err := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock()
	tell(db, blockOp{release})
	planned := make(chan error, 1)
	go func() {
		res, err := db.RollbackTable(ctx, sqlitekv.RollbackTableRequest{Table: "kv_store", At: 1, DryRun: true})
		if err == nil && res.Count != 1 {
			err = fmt.Errorf("planned %+v, want k's delete", res)
		}
		planned <- err
	}()
	select {
	case err := <-planned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dry run waited for the busy actor")
	}
}
