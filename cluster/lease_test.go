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
