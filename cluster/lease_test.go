package cluster

import (
	"context"
	"testing"
	"time"
)

// TestLease_FencesByTheTTLEtcdGranted: etcd counts a lease's TTL in
// whole seconds, so 2.9 s is granted as 2 s. Writes must stop a fifth of
// the granted TTL before it can expire, not of the one asked for, which
// would leave them committing after a peer may have taken over.
func TestLease_FencesByTheTTLEtcdGranted(t *testing.T) {
	n, _ := testNode(t, newFakeEtcd(t), Config{LeaseTTL: 2900 * time.Millisecond}, nil)
	granted := 2 * time.Second
	check := func(when string, sent time.Time) {
		t.Helper()
		n.mu.Lock()
		validUntil := n.validUntil
		n.mu.Unlock()
		if latest := sent.Add(surelyAlive(granted)); validUntil.After(latest) {
			t.Errorf("%s: writes allowed until %v after the keep-alive was sent, want at most %v (a %v lease)",
				when, validUntil.Sub(sent), surelyAlive(granted), granted)
		}
	}
	check("granted", time.Now()) // Start took the lease before now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.renew(ctx)
	check("renewed", time.Now())
	if _, ok := n.validLease(); !ok || n.renewEvery() != granted/3 {
		t.Errorf("after renewal: valid %v, renewed every %v; want valid, every %v", ok, n.renewEvery(), granted/3)
	}
}

// TestClose_KeepsTheLeaseWhileItPushesTheLastWrites: a node leaving
// pushes each database's last writes to the replica, which a slow
// sidecar may take longer than the lease's TTL over. Had its lease run
// out meanwhile, a peer would have restored the replica without them.
func TestClose_KeepsTheLeaseWhileItPushesTheLastWrites(t *testing.T) {
	f := newFakeEtcd(t)
	var before int
	t.Cleanup(func() { // runs after the node has left (cleanups run last first)
		if during := f.renewed() - before; during == 0 {
			t.Error("the lease was not renewed while the node pushed its last writes for 2.5 s (TTL 3 s)")
		}
	})
	_, base, sidecar := testServerAndSidecar(t, f, Config{})
	if status, body := call(t, "PUT", base+"/api/v1/sqlite/kv/a?db=app&create_db_if_missing=true", "1"); status != 200 {
		t.Fatalf("write: got %d %v", status, body)
	}
	sidecar.syncTakes.Store(int64(2500 * time.Millisecond))
	before = f.renewed()
}
