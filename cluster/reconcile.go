package cluster

import (
	"context"
	"time"
)

// reconcileReplication keeps the sidecar replicating the databases this
// node owns: it registers those created since they were claimed, all of
// them again after the sidecar restarted (it forgets its registrations),
// and unregisters, once shipped, those no longer owned.
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

func (n *Node) reconcileOnce(ctx context.Context) {
	registered, err := n.ls.registered(ctx)
	if err != nil {
		n.counts.replicating.Store(false)
		n.log.Warn("litestream sidecar unreachable: databases are not replicated", "err", err)
		return
	}
	n.mu.Lock()
	n.replicatedAt = time.Now()
	want := make(map[string]int64, len(n.held))
	for name, c := range n.held {
		if !c.releasing {
			want[n.path(name)] = c.epoch
		}
	}
	n.mu.Unlock()
	// A database the sidecar refuses to register (a replica it cannot
	// reach, say) is written here and shipped nowhere: that counts as not
	// replicating, as a silent sidecar does.
	refused := false
	for path, epoch := range want {
		if !registered[path] && fileExists(path) {
			name, _ := n.name(path)
			refused = n.replicate(ctx, name, path, epoch) != nil || refused
		}
	}
	n.counts.replicating.Store(!refused)
	for path := range registered {
		if _, ok := want[path]; !ok {
			if _, err := n.name(path); err == nil && !n.releasingPath(path) {
				n.stopReplicating(ctx, path)
			}
		}
	}
}

// stopReplicating unregisters a database this node no longer owns (its
// lease was lost, or its previous life's), but only once the sidecar has
// shipped all of it: a peer that took it over may restore those last
// writes yet, if they arrive within its replicationGrace.
func (n *Node) stopReplicating(ctx context.Context, path string) {
	err := n.ls.sync(ctx, path)
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
