package cluster

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestNewDatabase_IsRegisteredWithTheSidecarBeforeItsFirstWriteIsAcknowledged:
// a database created by a write is known to the Litestream sidecar by the
// time that write is acknowledged. The sidecar outlives a kvd killed with
// kill -9, and ships what kvd committed to the databases it knows of: a
// database it was never told of is shipped by nobody, and a peer taking it
// over once the lease ran out found no replica and served none of its
// acknowledged writes. Before, a new database was registered only by the
// next reconcile pass, up to half a second after its first writes were
// acknowledged (the loopback drill lost 15 of 20 such writes, acknowledged
// up to 0.36 s before the kill).
func TestNewDatabase_IsRegisteredWithTheSidecarBeforeItsFirstWriteIsAcknowledged(t *testing.T) {
	n, base, sidecar := testServerAndSidecar(t, newFakeEtcd(t), Config{})
	for i := range 5 {
		db := fmt.Sprintf("new%d", i)
		if code, out := call(t, http.MethodPut, base+"/api/v1/sqlite/kv/k?create_db_if_missing=true&db="+db, `"v"`); code != http.StatusOK {
			t.Fatalf("PUT to new database %s: %d %v", db, code, out)
		}
		path := filepath.Join(n.cfg.DataDir, db+".db")
		sidecar.mu.Lock()
		_, known := sidecar.registered[path]
		sidecar.mu.Unlock()
		if !known {
			t.Errorf("%s: its first write was acknowledged before the sidecar was told of the database", db)
		}
	}
}

// TestNewDatabase_NeverCreated_IsUnregisteredOnceGivenUp: a database
// claimed but never created (registered with the sidecar before its file
// exists) is unregistered once the node gives it up: Litestream cannot
// sync a file that never existed, and a sync is no prerequisite then.
func TestNewDatabase_NeverCreated_IsUnregisteredOnceGivenUp(t *testing.T) {
	n, sidecar := testNode(t, newFakeEtcd(t), Config{}, nil)
	path := n.path("ghost.db")
	if err := n.Acquire(path, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Release(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		sidecar.mu.Lock()
		_, known := sidecar.registered[path]
		sidecar.mu.Unlock()
		if !known {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a database given up, never created, is still registered with the sidecar after 3 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClaim_ADatabaseIsRegisteredBeforeItIsServed: a claim registers the
// database with the sidecar before it marks it held, since Acquire serves
// a held database at once: before, a request arriving while the claim's
// registration was on its way was served a database nobody shipped.
func TestClaim_ADatabaseIsRegisteredBeforeItIsServed(t *testing.T) {
	n, sidecar := testNode(t, newFakeEtcd(t), Config{}, nil)
	sidecar.regTakes.Store(int64(300 * time.Millisecond))
	path := n.path("app.db")
	claimed := make(chan error, 1)
	go func() { claimed <- n.Acquire(path, true) }()
	for {
		select {
		case err := <-claimed:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		if n.Holds(path) {
			sidecar.mu.Lock()
			_, known := sidecar.registered[path]
			sidecar.mu.Unlock()
			if !known {
				t.Fatal("app.db is served before the sidecar was told of it")
			}
		}
		time.Sleep(time.Millisecond)
	}
}
