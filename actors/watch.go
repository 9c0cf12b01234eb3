package actors

import (
	"context"

	"github.com/kvd/kvd/watch"
)

// publish hands the group that just committed to the database's watchers,
// before its writes are answered: a client that saw its write
// acknowledged can count on every watcher having it or reading it from
// history. A group begun before anyone watched kept no events: the
// watchers then read history.
//
// The actor publishes what the group committed (the writer collected
// every history row it appended, so every kind of write is covered
// alike: puts, deletes, incr, batches, rollbacks, array ops, expiry,
// directory-mode imports), not a note to go and read history: with many
// watchers that would be a read each per group, where the events, shared
// and rendered once, cost a channel send each.
func (a *dbActor) publish() {
	writes := a.w.TakeChanges()
	switch {
	case !a.w.Committed():
	case a.watched:
		a.db.hub.Publish(writes)
	default:
		a.db.hub.Missed()
	}
}

// Watch follows the committed writes f selects, in op_number order,
// after op after (every later write is sent; -1: from now on). The
// caller holds its lease on d until it closes the Follower.
func (d *DB) Watch(ctx context.Context, f watch.Filter, after int64) (*watch.Follower, error) {
	return watch.Follow(ctx, d.hub, d.store, f, after)
}

// OpBefore is the newest op number of table written before ms (Unix
// milliseconds), 0 if none: a watch from a time starts after it.
func (d *DB) OpBefore(ctx context.Context, table string, ms int64) (int64, error) {
	return d.store.OpBefore(ctx, table, ms)
}
