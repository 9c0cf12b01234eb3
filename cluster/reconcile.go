package cluster

import (
	"context"
	"sync"
	"time"
)

// reconcileReplication keeps the sidecar replicating the databases this
// node owns: it registers those created since they were claimed, all of
// them again after the sidecar restarted (it forgets its registrations),
// and unregisters, once shipped, those no longer owned. It also watches
// that the replica takes each database's writes (claim.shipped), which
// Fence requires.
func (n *Node) reconcileReplication() {
	defer n.done.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.reconcileOnce(ctx)
		cancel()
	}
}

// unshipped is how long a database may go without the sidecar saying
// the replica took it before kvd asks the sidecar to ship it now: the
// sidecar says so every second or two, idle databases included, and
// after a failure it may back off for minutes before it tries again.
const unshipped = 3 * time.Second

func (n *Node) reconcileOnce(ctx context.Context) {
	registered, err := n.ls.registered(ctx)
	if err != nil {
		n.counts.replicating.Store(false)
		n.log.Warn("litestream sidecar unreachable: databases are not replicated", "err", err)
		return
	}
	now := time.Now()
	n.mu.Lock()
	want := make(map[string]int64, len(n.held))
	var late []string // names
	for name, c := range n.held {
		if c.releasing {
			continue
		}
		path := n.path(name)
		want[path] = c.epoch
		l, ok := registered[path]
		switch {
		case ok && l.Status == "replicating" && l.LastSync.After(c.lastSync):
			c.lastSync, c.shipped, c.refused = l.LastSync, now, false
		case !ok && !fileExists(path):
			c.shipped = now // claimed, never created: nothing to ship
		}
		if now.Sub(c.shipped) > unshipped {
			late = append(late, name)
		}
	}
	n.mu.Unlock()
	// A database the sidecar refuses to register (a replica it cannot
	// reach, say) is written here and shipped nowhere: that counts as not
	// replicating, as a silent sidecar does.
	refused := false
	for path, epoch := range want {
		if _, ok := registered[path]; !ok && fileExists(path) {
			name, _ := n.name(path)
			refused = n.replicate(ctx, name, path, epoch) != nil || refused
		}
	}
	shipped := n.shipLate(ctx, late)
	n.counts.replicating.Store(!refused && shipped)
	for path := range registered {
		if _, ok := want[path]; !ok {
			if _, err := n.name(path); err == nil && !n.releasingPath(path) {
				n.stopReplicating(ctx, path)
			}
		}
	}
}

// shipLate asks the sidecar to ship each of names now, eight at a time,
// and wait for the replica to take it: done, the database is shipped;
// refused, the sidecar says why (no space left on the replica's disk,
// say), and its writes stop at once rather than when the replica is
// replicationTimeout behind. False if any was refused.
func (n *Node) shipLate(ctx context.Context, names []string) bool {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		refused []string
		why     error
		slots   = make(chan struct{}, 8)
	)
	for _, name := range names {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := n.ls.sync(ctx, n.path(name), 2*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused, why = append(refused, name), err
			}
			n.mu.Lock()
			if c := n.held[name]; c != nil {
				if c.refused = err != nil; !c.refused {
					c.shipped = time.Now()
				}
			}
			n.mu.Unlock()
		})
	}
	wg.Wait()
	if len(refused) > 0 {
		n.log.Warn("the replica takes no writes of these databases: they stop until it does", "databases", refused, "err", why)
	}
	return len(refused) == 0
}

// stopReplicating unregisters a database this node no longer owns (its
// lease was lost, or its previous life's), but only once the sidecar has
// shipped all of it: a peer that took it over may restore those last
// writes yet, if they arrive within its replicationGrace.
func (n *Node) stopReplicating(ctx context.Context, path string) {
	err := n.ls.sync(ctx, path, 30*time.Second)
	if err == nil {
		err = n.ls.unregister(ctx, path)
	}
	if err != nil {
		n.log.Warn("still replicating a database this node gave up", "path", path, "err", err)
	}
}

// releasingPath tells whether path is being handed over, when Release
// itself registers and unregisters it.
func (n *Node) releasingPath(path string) bool {
	name, _ := n.name(path)
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.held[name]
	return c != nil && c.releasing
}
