package actors

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
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
		db, err := reg.Open(name, true, false)
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

// A burst that leases more databases than MaxOpen goes past the limit;
// the leases' ends bring the count back under it. The sweep ticks from
// the very first instant of each actor (1µs), which the race detector
// checks against the spawning.
func TestRegistry_MaxOpenComesBackAfterABurst(t *testing.T) {
	dataDir := t.TempDir()
	resolver, err := sqlitekv.NewResolver(dataDir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver, MaxOpen: 2, SweepInterval: time.Microsecond, Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal}})
	defer reg.Close()
	var leased []*DB
	for i := range 5 {
		db, err := reg.Open(fmt.Sprintf("db%d", i), true, false)
		if err != nil {
			t.Fatal(err)
		}
		leased = append(leased, db)
	}
	if n := reg.OpenCount(); n != 5 {
		t.Fatalf("open while all are leased: %d, want 5", n)
	}
	for _, db := range leased {
		db.Release()
	}
	if n := reg.OpenCount(); n != 2 {
		t.Fatalf("open after the leases ended: %d, want MaxOpen (2)", n)
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
	db, err := reg.Open("app", true, false)
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
	tell(db, blockOp{release})
	if err := alive(); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("stuck actor: got %v, want an error naming it", err)
	}
	close(release)
	if err := alive(); err != nil {
		t.Fatalf("released actor: %v", err)
	}
}
