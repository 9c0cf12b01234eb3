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
