package actors

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

func newBareRegistry(tb testing.TB) *Registry {
	tb.Helper()
	resolver, err := sqlitekv.NewResolver(tb.TempDir(), nil, false)
	if err != nil {
		tb.Fatal(err)
	}
	return NewRegistry(Config{Resolver: resolver})
}

func mustOpen(tb testing.TB, reg *Registry, name string) *DB {
	tb.Helper()
	db, err := reg.Open(context.Background(), name, true, false)
	if err != nil {
		tb.Fatal(err)
	}
	db.Release()
	return db
}

// A close that takes a while, its actor busy, is waited for to the end
// while the deadline allows: Shutdown cuts nothing short.
func TestShutdown_WaitsForASlowCloseWithinTheDeadline(t *testing.T) {
	reg := newBareRegistry(t)
	db := mustOpen(t, reg, "slow")
	release := make(chan struct{})
	tell(db, blockOp{release})
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of a database busy for 200ms, deadline 10s: got %v, want nil", err)
	}
	select {
	case <-db.stopped:
	default:
		t.Fatal("Shutdown returned before the busy database's actor stopped")
	}
}

// An actor stuck for good does not hold Shutdown past its deadline; the
// other databases are closed all the same, their logs checkpointed, and
// the error names the stuck one alone.
func TestShutdown_GivesUpOnAStuckDatabaseAtTheDeadline(t *testing.T) {
	reg := newBareRegistry(t)
	healthy, stuck := mustOpen(t, reg, "healthy"), mustOpen(t, reg, "stuck")
	if _, err := healthy.Put(context.Background(), sqlitekv.PutRequest{Table: "kv_store", Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer func() { close(release); <-stuck.stopped }() // before the files' folder goes
	tell(stuck, blockOp{release})

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := reg.Shutdown(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown with a stuck database, deadline 300ms: took %v", took)
	}
	if err == nil || !strings.Contains(err.Error(), stuck.Path()) || strings.Contains(err.Error(), healthy.Path()) {
		t.Fatalf("shutdown: got %v, want an error naming %s alone", err, stuck.Path())
	}
	if info, err := os.Stat(healthy.Path() + "-wal"); err == nil && info.Size() > 0 {
		t.Fatalf("healthy database's log after shutdown: %d bytes, want it checkpointed", info.Size())
	}
	if err := sqlitekv.CheckIntegrity(healthy.Path()); err != nil {
		t.Fatal(err)
	}
}

// A database still being opened at the deadline (its file locked by
// another program) holds no acknowledged write: it is logged, not an
// error, so a stop during a slow first open is not a failed stop.
func TestShutdown_AnOpenStillUnderWayIsNoFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	reg := newBareRegistry(t)
	locker, opened := holdUpAnOpen(t, reg, "locked")
	defer locker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := reg.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown while an open is held up elsewhere: got %v, want nil", err)
	}
	<-opened // the open ends with the busy timeout, before the folder goes
}
