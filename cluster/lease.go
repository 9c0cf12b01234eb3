package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// The lease is this node's life in the cluster: every owners key it
// writes is attached to it, so when the node dies (or is cut off from
// etcd) for a whole TTL, etcd deletes them all at once and peers take its
// databases over.
//
// The node stops writing before that can happen: validUntil is when the
// last successful keep-alive was sent plus the TTL less a margin for
// clock drift, and Fence refuses every COMMIT after it. etcd counts the
// TTL from when it received that keep-alive, later than it was sent.
// The TTL is the one etcd answers, not the one asked for: etcd counts in
// whole seconds (2.9 s is granted as 2) and may grant more than asked.

// surelyAlive is how long after a keep-alive was sent a lease of ttl
// surely lives: the TTL less a fifth, the margin for clock drift.
func surelyAlive(ttl time.Duration) time.Duration { return ttl - ttl/5 }

// renewEvery is how often the lease is renewed: three times per TTL, so
// that two lost renewals in a row still leave it valid.
func (n *Node) renewEvery() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ttl == 0 {
		return n.cfg.LeaseTTL / 3 // none granted yet
	}
	return n.ttl / 3
}

// ensureLease returns this node's lease, granting a new one (and
// announcing the node under it) when there is none. One caller grants at
// a time: two leases granted at once would leave the node's address
// under the one dropped, to vanish with it.
func (n *Node) ensureLease(ctx context.Context) (int64, error) {
	if lease, ok := n.validLease(); ok {
		return lease, nil
	}
	n.granting.Lock()
	defer n.granting.Unlock()
	lease, ok := n.validLease()
	if ok {
		return lease, nil // granted while this caller waited
	}
	if lease != 0 {
		n.loseLease(lease, "lease expired") // its keys are gone or going
	}
	sent := time.Now()
	lease, ttl, err := n.etcd.grant(ctx, n.cfg.LeaseTTL)
	if err != nil {
		return 0, err
	}
	if err := n.announce(ctx, lease); err != nil {
		return 0, err
	}
	n.mu.Lock()
	n.lease, n.ttl, n.validUntil = lease, ttl, sent.Add(surelyAlive(ttl))
	n.mu.Unlock()
	n.log.Info("cluster lease granted", "lease", lease, "ttl", ttl)
	return lease, nil
}

// announce writes this node's address under lease, unless another kvd
// of the same name wrote it since this one last did: two of one name
// would both serve its databases (awaitOwnName). The write compares the
// key's revision, so of two kvds announcing at once one fails.
func (n *Node) announce(ctx context.Context, lease int64) error {
	key := nodesKey(n.cfg.Node)
	cur, err := n.etcd.get(ctx, key)
	if err != nil {
		return err
	}
	if !n.mayAnnounceOver(cur) {
		return n.twin(cur)
	}
	ok, rev, err := n.etcd.txn(ctx, []cmp{{key, revOf(cur)}}, []op{{key: key, value: []byte(n.cfg.Advertise), lease: lease}})
	if err == nil && !ok {
		err = fmt.Errorf("another kvd announced itself as cluster node %q just now: give each node its own --cluster-node", n.cfg.Node)
	}
	if err == nil {
		n.nodeRev = rev
	}
	return err
}

// mayAnnounceOver tells whether this kvd may write its address over cur,
// the node's address in etcd: none, the one it wrote last, or before it
// wrote any, one at its own address (its previous life's).
func (n *Node) mayAnnounceOver(cur *kv) bool {
	return cur == nil || revOf(cur) == n.nodeRev || n.nodeRev == 0 && string(cur.Value) == n.cfg.Advertise
}

// twin is the error of a kvd whose node name another kvd holds, at addr.
func (n *Node) twin(addr *kv) error {
	return fmt.Errorf("another kvd serves as cluster node %q, at %s: give each node its own --cluster-node", n.cfg.Node, addr.Value)
}

// validLease returns the lease and whether it is surely still alive.
func (n *Node) validLease() (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lease, n.lease != 0 && time.Now().Before(n.validUntil)
}

// keepAlive renews the lease, or takes a new one when it was lost, every
// renewEvery until Close.
func (n *Node) keepAlive() {
	defer n.done.Done()
	t := time.NewTimer(n.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-n.loops.Done():
			return
		case <-t.C:
		}
		every := n.renewEvery()
		t.Reset(every)
		ctx, cancel := context.WithTimeout(n.loops, every)
		n.renew(ctx)
		cancel()
	}
}

// renew sends one keep-alive for the lease, extending validUntil by the
// TTL etcd answers; with no lease it asks for one.
func (n *Node) renew(ctx context.Context) {
	n.mu.Lock()
	lease := n.lease
	n.mu.Unlock()
	if lease == 0 {
		// Lost: take a new one, or /readyz stays 503, the router
		// sends nothing, and nothing would ever ask for one.
		if _, err := n.ensureLease(ctx); err != nil {
			n.log.Warn("no cluster lease yet", "err", err)
		}
		return
	}
	sent := time.Now()
	ttl, err := n.etcd.keepAlive(ctx, lease)
	switch {
	case err == nil:
		n.mu.Lock()
		if n.lease == lease {
			n.ttl, n.validUntil = ttl, sent.Add(surelyAlive(ttl))
		}
		n.mu.Unlock()
	case errors.Is(err, errLeaseGone):
		n.loseLease(lease, "lease expired")
	default:
		n.log.Warn("cluster lease not renewed", "err", err)
		if _, ok := n.validLease(); !ok {
			n.loseLease(lease, "lease not renewed in time")
		}
	}
}

// loseLease gives up every database at once: lease, which owned them, is
// gone, or may be. Each is closed (Fence already refuses its commits);
// the next request for one claims it afresh, under a new lease, which
// keeps this node's copy only if no peer wrote it meanwhile. A lease
// already replaced is left alone.
func (n *Node) loseLease(lease int64, why string) {
	n.mu.Lock()
	if n.lease != lease {
		n.mu.Unlock()
		return
	}
	held := n.held
	n.held, n.lease, n.validUntil = map[string]*claim{}, 0, time.Time{}
	n.mu.Unlock()
	if len(held) > 0 {
		n.log.Warn("cluster lease lost: serving none of this node's databases until claimed again", "why", why, "databases", len(held))
	}
	var closing sync.WaitGroup // hundreds of databases: not one after another
	for name := range held {
		closing.Go(func() { n.closeDB(n.path(name)) })
	}
	closing.Wait()
}

// Close leaves the cluster, after kvd's registry closed every database:
// each database's last writes are pushed to the replica and its epoch
// marked released, then the lease is revoked, so that peers take the
// databases over at once instead of after a TTL. This node's copies stay
// current unless a peer writes them meanwhile.
//
// The lease is kept alive until the pushes are done: had it run out
// during a slow one (a sidecar that hangs), peers would have restored a
// replica without the last writes while this node still held them. When
// one failed, the lease is left to run out (two thirds of a TTL or more
// after kvd exits, and peers then give the sidecar replicationGrace): a
// sidecar that was only slow ships the last writes meanwhile.
func (n *Node) Close() error {
	n.cancel() // take-overs, retried hand-overs and syncs under way stop
	n.tasks.Wait()
	n.mu.Lock()
	held := maps.Clone(n.held)
	for _, c := range held {
		c.releasing, c.fenced = true, true // the reconcile loop leaves them to handOverAll
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pushed := n.handOverAll(ctx, held)
	n.stopLoops()
	n.done.Wait()
	n.mu.Lock()
	lease := n.lease // 0 if lost meanwhile
	n.held, n.lease = map[string]*claim{}, 0
	n.mu.Unlock()
	var err error
	if lease != 0 && pushed {
		err = n.etcd.revoke(ctx, lease)
	} // else some replica may lack last writes: peers wait for the lease to expire
	return errors.Join(err, n.lock.Close())
}

// handOverAll pushes each of held to the replica and marks it handed
// over, eight at a time; false if any push failed.
func (n *Node) handOverAll(ctx context.Context, held map[string]*claim) bool {
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		slots  = make(chan struct{}, 8)
	)
	for name, c := range held {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := n.pushToReplica(ctx, name, n.path(name), c); err != nil {
				n.log.Warn("last writes not pushed to the replica: peers will not take the database over until this node is back", "db", name, "err", err)
				failed.Store(true)
				if err := n.markUnshipped(ctx, name, c); err != nil {
					n.log.Error("database not marked unshipped: a peer may take it over from its replica, without its last writes", "db", name, "err", err)
				}
				return
			}
			if err := n.handOver(ctx, name, c); err != nil {
				n.log.Warn("database not marked handed over", "db", name, "err", err)
			}
		})
	}
	wg.Wait()
	return !failed.Load()
}
