package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

func newTestRegistry(tb testing.TB, sync sqlitekv.SyncMode, hooks actors.Hooks) *actors.Registry {
	tb.Helper()
	return registryWith(tb, actors.Config{Store: sqlitekv.Options{Sync: sync}, Hooks: hooks})
}

// registryWith starts a registry of cfg over a fresh data directory, and
// closes it when the test ends.
func registryWith(tb testing.TB, cfg actors.Config) *actors.Registry {
	tb.Helper()
	resolver, err := sqlitekv.NewResolver(tb.TempDir(), nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Resolver = resolver
	reg := actors.NewRegistry(cfg)
	tb.Cleanup(func() {
		if err := reg.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return reg
}

// openAppWith opens the database app in a registry of cfg, leased until
// the test ends.
func openAppWith(tb testing.TB, cfg actors.Config) *actors.DB {
	tb.Helper()
	db, err := registryWith(tb, cfg).Open(context.Background(), "app", true, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Release)
	return db
}

func TestRegistry_OneOwnerPerRealPath(t *testing.T) {
	reg := newTestRegistry(t, sqlitekv.SyncNormal, actors.Hooks{})
	a, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app.db", "./app", a.Path()} {
		b, err := reg.Open(context.Background(), name, false, false)
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
		if a != b {
			t.Fatalf("Open(%q): got another owner than Open(app)", name)
		}
	}
}

func TestGroupCommit_ConcurrentWritesShareCommits(t *testing.T) {
	var commits, writes atomic.Int64
	hooks := actors.Hooks{Committed: func(n int, _ time.Duration) { commits.Add(1); writes.Add(int64(n)) }}
	reg := newTestRegistry(t, sqlitekv.SyncFull, hooks)
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	const clients, each = 32, 50
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := db.Incr(context.Background(), sqlitekv.IncrRequest{Table: "kv_store", Key: "n", Delta: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if writes.Load() != clients*each {
		t.Fatalf("writes committed: got %d, want %d", writes.Load(), clients*each)
	}
	if commits.Load() >= writes.Load()/2 {
		t.Fatalf("commits: got %d for %d writes, want groups of more than two on average", commits.Load(), writes.Load())
	}
}

func TestGroupCommit_FailedCASDoesNotUndoNeighbours(t *testing.T) {
	reg := newTestRegistry(t, sqlitekv.SyncNormal, actors.Hooks{})
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := sqlitekv.PutRequest{Table: "kv_store", Key: "k" + string(rune('A'+i)), Value: []byte("v")}
			if i%2 == 1 {
				req.IfMatch = []byte("never") // fails: the key does not exist
			}
			_, errs[i] = db.Put(ctx, req)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		key := "k" + string(rune('A'+i))
		_, getErr := db.Get(ctx, sqlitekv.GetRequest{Table: "kv_store", Key: key})
		if i%2 == 0 && (err != nil || getErr != nil) {
			t.Fatalf("%s: put %v, get %v; want stored", key, err, getErr)
		}
		if i%2 == 1 && (sqlitekv.CodeOf(err) != sqlitekv.CodeCASKeyMissing || sqlitekv.CodeOf(getErr) != sqlitekv.CodeKeyNotFound) {
			t.Fatalf("%s: put %v, get %v; want CAS_KEY_MISSING and nothing stored", key, err, getErr)
		}
	}
}

func TestOverload_FullQueueAnswersOverloaded(t *testing.T) {
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := actors.NewRegistry(actors.Config{Resolver: resolver, MaxQueue: 1, Store: sqlitekv.Options{Sync: sqlitekv.SyncFull}})
	defer reg.Close()
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var overloaded atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Incr(context.Background(), sqlitekv.IncrRequest{Table: "kv_store", Key: "n", Delta: 1})
			if sqlitekv.CodeOf(err) == sqlitekv.CodeOverloaded {
				overloaded.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if overloaded.Load() == 0 {
		t.Fatal("64 simultaneous writes with a queue of 1: got no OVERLOADED, want some")
	}
}

// A write whose client has already gone is not queued; one queued before
// its client went is applied and answered with its real outcome, so its
// caller (and the request body it holds) stays until the actor is done.
func TestWrite_CancelledClientsAndQueuedWrites(t *testing.T) {
	reg := newTestRegistry(t, sqlitekv.SyncFull, actors.Hooks{})
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Put(gone, sqlitekv.PutRequest{Table: "kv_store", Key: "never", Value: []byte("x")}); err == nil {
		t.Fatal("put for a client already gone: got nil error, want it refused")
	}
	if _, err := db.Get(context.Background(), sqlitekv.GetRequest{Table: "kv_store", Key: "never"}); sqlitekv.CodeOf(err) != sqlitekv.CodeKeyNotFound {
		t.Fatalf("key of the refused put: got %v, want KEY_NOT_FOUND", err)
	}
	// Keep the actor busy so the next put waits in its queue, then cancel.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.Incr(context.Background(), sqlitekv.IncrRequest{Table: "kv_store", Key: fmt.Sprint("busy", i%8), Delta: 1})
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "queued", Value: []byte("x")})
		done <- err
	}()
	cancel()
	putErr := <-done
	wg.Wait()
	// The mailbox is FIFO: once this write is answered, everything queued
	// before it was applied. Whatever the answer said must be what happened.
	if _, err := db.Put(context.Background(), sqlitekv.PutRequest{Table: "kv_store", Key: "last", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	_, getErr := db.Get(context.Background(), sqlitekv.GetRequest{Table: "kv_store", Key: "queued"})
	if (putErr == nil) != (getErr == nil) {
		t.Fatalf("put cancelled around queueing answered %v, but the key reads %v", putErr, getErr)
	}
}

// The sweep's counts reach the metrics only once its group committed: a
// group that failed removed nothing.
func TestSweep_CountsOnlyWhatCommitted(t *testing.T) {
	var expired atomic.Int64
	reg := newTestRegistry(t, sqlitekv.SyncNormal, actors.Hooks{Swept: func(r sqlitekv.SweepResult) { expired.Add(int64(r.Expired)) }})
	db, err := reg.Open(context.Background(), "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	ctx := context.Background()
	for _, table := range []string{"first", "second"} { // swept in name order
		if _, err := db.Put(ctx, sqlitekv.PutRequest{Table: table, Key: "k", Value: []byte("v"), TTL: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	// Removing the second table's key makes SQLite roll the whole group
	// back, the first table's expiry (already swept) included.
	conn, err := sqlite3.Open(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(`CREATE TRIGGER boom BEFORE DELETE ON second BEGIN SELECT RAISE(ROLLBACK, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := db.Sweep(ctx); sqlitekv.CodeOf(err) != sqlitekv.CodeDatabaseError {
		t.Fatalf("sweep: got %v, want a database error", err)
	}
	if n := expired.Load(); n != 0 {
		t.Fatalf("expired keys counted after a failed sweep: %d, want 0", n)
	}
	if err := conn.Exec(`DROP TRIGGER boom`); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Sweep(ctx); err != nil || res.Expired != 2 {
		t.Fatalf("sweep: got %+v, %v; want 2 expired", res, err)
	}
	if n := expired.Load(); n != 2 {
		t.Fatalf("expired keys counted: %d, want 2", n)
	}
}

// A sweep that its group's Begin refused (another program held the write
// lock past the busy timeout) must not stop later ones: expiry and age
// pruning would end for as long as the database stays open.
func TestSweep_ResumesAfterABeginThatFailed(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Unix(1_700_000_000, 0).UnixNano())
	var expired atomic.Int64
	db := openAppWith(t, actors.Config{
		SweepInterval: 20 * time.Millisecond,
		Store:         sqlitekv.Options{Sync: sqlitekv.SyncNormal, Now: func() time.Time { return time.Unix(0, clock.Load()) }},
		Hooks:         actors.Hooks{Swept: func(r sqlitekv.SweepResult) { expired.Add(int64(r.Expired)) }},
	})
	ctx := context.Background()
	if _, err := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("v"), TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	other, err := sqlite3.Open(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// It waits its turn too: a sweep every 20 ms may hold the lock just then.
	if err := other.Exec("PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // a ticked sweep waits out the 5 s busy timeout in Begin
	if err := other.Exec("ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(2 * time.Second)) // k has expired
	for deadline := time.Now().Add(2 * time.Second); expired.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := expired.Load(); n != 1 {
		t.Errorf("keys the sweeps expired once the lock was free: %d, want 1", n)
	}
}

// kvd_group_commit_writes counts writes that committed: a group whose
// commit was refused (here by the cluster's fence) is not among them.
func TestGroupCommit_CountsOnlyGroupsThatCommitted(t *testing.T) {
	var fenced atomic.Bool
	var committed atomic.Int64
	db := openAppWith(t, actors.Config{
		Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal, Fence: func(string) error {
			if fenced.Load() {
				return errors.New("the lease ran out")
			}
			return nil
		}},
		Hooks: actors.Hooks{Committed: func(n int, _ time.Duration) { committed.Add(int64(n)) }},
	})
	ctx := context.Background()
	put := func() error {
		_, err := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("v")})
		return err
	}
	if err := put(); err != nil || committed.Load() != 1 {
		t.Fatalf("put: %v, %d writes counted; want nil, 1", err, committed.Load())
	}
	fenced.Store(true)
	if err := put(); err == nil {
		t.Fatal("a put past the fence succeeded")
	}
	if n := committed.Load(); n != 1 {
		t.Errorf("writes counted as committed after a refused commit: %d, want 1", n)
	}
}

// A commit that stalled past the cluster's fence (checked before and
// after it) is answered 503, not 500: the node lost its lease, and
// whether the write was kept is for the client to read back.
func TestGroupCommit_ACommitThatEndsPastTheFenceIsA503(t *testing.T) {
	var checks atomic.Int64
	db := openAppWith(t, actors.Config{
		Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal, Fence: func(string) error {
			if checks.Add(1) == 2 { // the look after the first commit
				return errors.New("the lease ran out")
			}
			return nil
		}},
	})
	_, err := db.Put(context.Background(), sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("v")})
	if code := sqlitekv.CodeOf(err); code != sqlitekv.CodeOverloaded || !strings.Contains(err.Error(), "read it back") {
		t.Fatalf("a commit that ended past the fence: %v (%s), want OVERLOADED saying to read it back", err, code)
	}
}

// A request whose database closes under its lease (CloseDB: a cluster's
// hand-over) is told to retry, a read as much as a write; never a 500.
func TestLease_ARequestOnADatabaseClosedUnderItIsToldToRetry(t *testing.T) {
	reg := newTestRegistry(t, sqlitekv.SyncNormal, actors.Hooks{})
	ctx := context.Background()
	db, err := reg.Open(ctx, "app", true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	if _, err := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	reg.CloseDB(db.Path())
	_, werr := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("w")})
	_, rerr := db.Get(ctx, sqlitekv.GetRequest{Table: "kv_store", Key: "k"})
	for what, err := range map[string]error{"write": werr, "read": rerr} {
		if sqlitekv.CodeOf(err) != sqlitekv.CodeOverloaded {
			t.Errorf("%s on a closed lease: %v, want OVERLOADED", what, err)
		}
	}
}

// A panic while a group commits (SQLite out of memory, say; here the
// fence) fails that group's writes, answered, and leaves the database
// taking writes: the next group does not begin inside the transaction
// the failed one left open.
func TestGroupCommit_APanicInTheCommitFailsOnlyItsGroup(t *testing.T) {
	var panics atomic.Int64
	panics.Store(1)
	db := openAppWith(t, actors.Config{
		Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal, Fence: func(string) error {
			if panics.Add(-1) >= 0 {
				panic("out of memory")
			}
			return nil
		}},
	})
	ctx := context.Background()
	put := func(value string) error {
		answered := make(chan error, 1)
		go func() {
			_, err := db.Put(ctx, sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte(value)})
			answered <- err
		}()
		select {
		case err := <-answered:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("a write was never answered")
			return nil
		}
	}
	if err := put("lost"); sqlitekv.CodeOf(err) != sqlitekv.CodeDatabaseError {
		t.Fatalf("put in the group that panicked: %v, want a database error", err)
	}
	if err := put("kept"); err != nil {
		t.Fatalf("put after it: %v", err)
	}
	if e, err := db.Get(ctx, sqlitekv.GetRequest{Table: "kv_store", Key: "k"}); err != nil || string(e.Value) != "kept" {
		t.Fatalf("k: %q, %v; want kept", e.Value, err)
	}
}
