package cluster

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestReplicating_ZeroWhileTheSidecarRefusesADatabase: a database the
// sidecar will not register is written and shipped nowhere, so
// kvd_cluster_replicating says so until it is registered.
func TestReplicating_ZeroWhileTheSidecarRefusesADatabase(t *testing.T) {
	n, sidecar := testNode(t, newFakeEtcd(t), Config{}, nil)
	sidecar.mu.Lock()
	sidecar.refuse = func(string) error { return errors.New("unknown replica type") }
	sidecar.mu.Unlock()
	path := n.path("app.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.Acquire(path, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.reconcileOnce(ctx)
	if n.counts.replicating.Load() {
		t.Fatal("replicating: got 1 while the sidecar refuses app.db, want 0")
	}
	sidecar.mu.Lock()
	sidecar.refuse = nil
	sidecar.mu.Unlock()
	n.reconcileOnce(ctx)
	if !n.counts.replicating.Load() {
		t.Fatal("replicating: got 0 once app.db is registered, want 1")
	}
}

// TestReconcile_ADatabaseClaimedAgainWhileItShipsStaysRegistered: a node
// that lost its lease unregisters its databases once they are shipped,
// which may take seconds. A database it claims again meanwhile is served
// at once, so it must stay registered: before, the sync's end unregistered
// it anyway, and its writes went unshipped until the next pass registered
// it again (a window of up to half a second, lost to a kvd killed then).
func TestReconcile_ADatabaseClaimedAgainWhileItShipsStaysRegistered(t *testing.T) {
	n, sidecar := testNode(t, newFakeEtcd(t), Config{}, nil)
	path := n.path("app.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.Acquire(path, false); err != nil {
		t.Fatal(err)
	}
	registered := func() bool {
		sidecar.mu.Lock()
		defer sidecar.mu.Unlock()
		_, ok := sidecar.registered[path]
		return ok
	}
	unregistering := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		_, ok := n.unregistering[path]
		return ok
	}
	// Syncs end between two passes (every 500 ms, and the sync starts
	// with one), where a wrong unregistration would show longest.
	sidecar.syncTakes.Store(int64(1250 * time.Millisecond))
	n.mu.Lock()
	lease := n.lease
	n.mu.Unlock()
	n.loseLease(lease, "a test")
	for deadline := time.Now().Add(3 * time.Second); !unregistering(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a database given up with its lease was not unregistered within 3 s")
		}
	}
	if err := n.Acquire(path, false); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if !registered() {
			t.Fatalf("app.db, claimed again and served, is not registered with the sidecar (unregistering: %v)", unregistering())
		}
	}
	if !n.Holds(path) {
		t.Fatal("app.db is not served after it was claimed again")
	}
}
