package actors

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

func roomRegistry(t *testing.T, maxOpen int, owner Owner) *Registry {
	t.Helper()
	resolver, err := sqlitekv.NewResolver(t.TempDir(), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// The sweep ticks from the very first instant of each actor (1µs),
	// which the race detector checks against the spawning.
	reg := NewRegistry(Config{Resolver: resolver, MaxOpen: maxOpen, Owner: owner, SweepInterval: time.Microsecond, Store: sqlitekv.Options{Sync: sqlitekv.SyncNormal}})
	t.Cleanup(func() { reg.Close() })
	return reg
}

// openLater opens name on a goroutine of its own, and releases it at once;
// the open's error comes on the channel.
func openLater(reg *Registry, name string) <-chan error {
	opened := make(chan error, 1)
	go func() {
		db, err := reg.Open(context.Background(), name, true, false)
		if err == nil {
			db.Release()
		}
		opened <- err
	}()
	return opened
}

// An open past MaxOpen while every open database is leased waits for a
// lease to end, and takes that database's room, or answers 503 once
// roomWait has passed; the count never goes past MaxOpen. (Opens went
// past it for as long as the burst lasted: 8,000 requests to as many new
// databases took every file descriptor.)
func TestRoom_AnOpenPastMaxOpenWaitsForALeaseToEnd(t *testing.T) {
	reg := roomRegistry(t, 2, nil)
	ctx := context.Background()
	var leased []*DB
	for _, name := range []string{"a", "b"} {
		db, err := reg.Open(ctx, name, true, false)
		if err != nil {
			t.Fatal(err)
		}
		leased = append(leased, db)
	}
	start := time.Now()
	if _, err := reg.Open(ctx, "c", true, false); sqlitekv.CodeOf(err) != sqlitekv.CodeOverloaded || time.Since(start) < roomWait {
		t.Fatalf("open of a third while two are leased: got %v after %v, want OVERLOADED after %v", err, time.Since(start), roomWait)
	}
	opened := openLater(reg, "c")
	time.Sleep(50 * time.Millisecond)
	if n := reg.OpenCount(); n != 2 {
		t.Fatalf("open while two are leased and a third waits: %d, want 2", n)
	}
	leased[0].Release()
	if err := <-opened; err != nil {
		t.Fatalf("open of a third once a lease ended: %v", err)
	}
	if n := reg.OpenCount(); n != 2 {
		t.Fatalf("open after the third took a room: %d, want MaxOpen (2)", n)
	}
	leased[1].Release()
}

// Two requests for one new database wait for room; a lease ends, one of
// them opens the database, and the other leases it too: it needs no room
// then. (It waited out the 2 s and answered 503: a successful open woke
// no waiter.)
func TestRoom_AWaiterLeasesTheDatabaseAnotherWaiterOpened(t *testing.T) {
	reg := roomRegistry(t, 2, nil)
	ctx := context.Background()
	a, err := reg.Open(ctx, "a", true, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Open(ctx, "b", true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	type opened struct {
		db  *DB
		err error
	}
	got := make(chan opened, 2)
	for range 2 {
		go func() {
			db, err := reg.Open(ctx, "c", true, false)
			got <- opened{db, err}
		}()
	}
	time.Sleep(100 * time.Millisecond) // both wait for room
	start := time.Now()
	a.Release()
	for range 2 {
		o := <-got
		if o.err != nil || time.Since(start) > time.Second {
			t.Errorf("open of c, which the other waiter opened: %v after %v", o.err, time.Since(start).Round(time.Millisecond))
		}
		if o.err == nil {
			defer o.db.Release() // both leases held until both are in
		}
	}
}

// flagOwner is a cluster Owner whose hand-over of a database is a flag.
type flagOwner struct{ held atomic.Bool }

func (o *flagOwner) Holds(string) bool          { return o.held.Load() }
func (o *flagOwner) Acquire(string, bool) error { o.held.Store(true); return nil }

// A request that waits for room to open its database, handed over to
// another node meanwhile, is told to retry; it does not open the database
// here after the hand-over closed it (reads would be served from this
// node's copy, older than the new owner's).
func TestRoom_AnOpenWaitingForRoomDoesNotOutliveAHandOver(t *testing.T) {
	owner := &flagOwner{}
	reg := roomRegistry(t, 1, owner)
	ctx := context.Background()
	a, err := reg.Open(ctx, "a", true, false)
	if err != nil {
		t.Fatal(err)
	}
	opened := openLater(reg, "c")
	time.Sleep(100 * time.Millisecond) // c acquired, waiting for room
	c, _ := reg.Resolve("c")
	owner.held.Store(false)
	reg.CloseDB(c.Path)
	a.Release()
	if err := <-opened; sqlitekv.CodeOf(err) != sqlitekv.CodeOverloaded {
		t.Errorf("a request for c, handed over while it waited for room: got %v, want OVERLOADED", err)
	}
	reg.mu.Lock()
	_, open := reg.dbs[c.Path]
	reg.mu.Unlock()
	if open {
		t.Errorf("c is open on this node after its hand-over")
	}
}

// Requests that each lease a database for a moment, over more databases
// than MaxOpen, all get room within the wait: a lease that ends while a
// waiter is between two looks still makes room for it.
func TestRoom_ShortLeasesOverManyDatabasesAllGetRoom(t *testing.T) {
	reg := roomRegistry(t, 2, nil)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				db, err := reg.Open(context.Background(), fmt.Sprintf("db%d", (w*40+i)%12), true, false)
				if err != nil {
					refused.Add(1)
					t.Errorf("open: %v", err)
					continue
				}
				db.Release()
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n > 0 {
		t.Errorf("%d opens of 320 found no room within %v", n, roomWait)
	}
}
