package cluster

import (
	"context"
	"errors"
	"time"
)

// reconcileReplication keeps the sidecar replicating the databases this
// node owns: it registers those created since they were claimed, all of
// them again after the sidecar restarted (it forgets its registrations),
// and unregisters, once shipped, those no longer owned. It also watches
// that the replica takes each database's writes (claim.shipped), which
// Fence requires. A pass only asks and registers: what waits for the
// replica (a sync) runs beside it, so that a slow one holds no other
// database's news up.
func (n *Node) reconcileReplication() {
	defer n.done.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.loops.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(n.loops, 5*time.Second)
		n.reconcileOnce(ctx)
		cancel()
	}
}

// unshipped is how long a database may go without the sidecar saying
// the replica took it before kvd asks the sidecar to ship it now: the
// sidecar says so every second or two, idle databases included, and
// after a failure it may back off for minutes before it tries again.
// Soon enough that a pass (every half second) and a sync of up to 2 s
// end before the replica is replicationTimeout behind.
const unshipped = 2500 * time.Millisecond

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
	refused := false // a database the sidecar will not replicate, or does not
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
		case !fileExists(path):
			c.shipped = now // claimed, not created yet: nothing to ship
		}
		if c.replicated < c.epoch && !c.noting && c.lastSync.After(c.noteTried) {
			c.noting, c.noteTried = true, c.lastSync
			n.tasks.Add(1)
			go n.noteReplicated(name, c)
		}
		if now.Sub(c.shipped) > unshipped && !c.shipping {
			c.shipping = true
			n.tasks.Add(1)
			go n.ship(name, c)
		}
		refused = refused || c.refused || now.Sub(c.shipped) > replicationTimeout
	}
	n.mu.Unlock()
	// A database the sidecar refuses to register (a replica it cannot
	// reach, say) is written here and shipped nowhere: that counts as not
	// replicating, as a silent sidecar does.
	for path, epoch := range want {
		if _, ok := registered[path]; !ok { // a database not created yet too (take)
			name, _ := n.name(path)
			refused = n.replicate(ctx, name, path, epoch) != nil || refused
		}
	}
	n.counts.replicating.Store(!refused)
	for path := range registered {
		if _, ok := want[path]; !ok {
			if _, err := n.name(path); err == nil && !n.releasingPath(path) {
				n.stopReplicating(path)
			}
		}
	}
}

// ship asks the sidecar to ship c now and to wait for the replica to take
// it: done, everything committed before the ask is shipped; refused, the
// sidecar says why (no space left on the replica's disk, say), and c's
// writes stop at once rather than when the replica is replicationTimeout
// behind. A sync that did not answer in time says neither.
func (n *Node) ship(name string, c *claim) {
	defer n.tasks.Done()
	asked := time.Now()
	ctx, cancel := context.WithTimeout(n.ctx, 3*time.Second)
	err := n.ls.sync(ctx, n.path(name), 2*time.Second)
	timedOut := ctx.Err() != nil
	cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	c.shipping = false
	switch {
	case err == nil:
		if asked.After(c.shipped) {
			c.shipped = asked
		}
		c.refused = false
	case !timedOut && !errors.Is(err, context.Canceled):
		if !c.refused {
			n.log.Warn("the replica takes no writes of this database: they stop until it does", "db", name, "err", err)
		}
		c.refused = true
	}
}

// stopReplicating unregisters, beside the pass, a database this node no
// longer owns (its lease was lost, or its previous life's), but only once
// the sidecar has shipped all of it: a peer that took it over may restore
// those last writes yet, if they arrive within its replicationGrace.
//
// The sync may take seconds, in which this node may claim the database
// again: then it is left registered, or its writes would be acknowledged
// and shipped by nobody until the next pass, lost to a kvd killed then.
// A claim's registration waits for an unregistration already under way
// (awaitUnregister), so the two cannot land in the wrong order.
func (n *Node) stopReplicating(path string) {
	name, _ := n.name(path)
	n.mu.Lock()
	if _, ok := n.unregistering[path]; ok {
		n.mu.Unlock()
		return
	}
	n.unregistering[path] = nil
	n.mu.Unlock()
	n.tasks.Add(1)
	go func() {
		defer n.tasks.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 35*time.Second)
		defer cancel()
		var err error
		if fileExists(path) { // never created (registered by take): nothing to ship, and Litestream fails its sync
			err = n.ls.sync(ctx, path, 30*time.Second)
		}
		if err == nil {
			err = n.unregisterUnlessClaimed(ctx, name, path)
		}
		if err != nil {
			n.log.Warn("still replicating a database this node gave up", "path", path, "err", err)
		}
		n.mu.Lock()
		delete(n.unregistering, path)
		n.mu.Unlock()
	}()
}

// unregisterUnlessClaimed unregisters path, unless this node holds or
// claims it now. A claim that begins meanwhile registers it only after
// (awaitUnregister).
func (n *Node) unregisterUnlessClaimed(ctx context.Context, name, path string) error {
	n.mu.Lock()
	if n.held[name] != nil || n.claiming[name] != nil {
		n.mu.Unlock()
		return nil
	}
	unregistered := make(chan struct{})
	n.unregistering[path] = unregistered
	n.mu.Unlock()
	defer close(unregistered)
	return n.ls.unregister(ctx, path)
}

// awaitUnregister returns once no unregistration of path is under way.
func (n *Node) awaitUnregister(ctx context.Context, path string) error {
	n.mu.Lock()
	unregistered := n.unregistering[path]
	n.mu.Unlock()
	if unregistered == nil {
		return nil
	}
	select {
	case <-unregistered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
