package actors

import (
	"context"
	"time"

	"github.com/kvd/kvd/sqlitekv"
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
// after op after (every later write is sent; -1: from now on). A watch
// from a time passes it as since (Unix ms; else 0), after being OpBefore
// it. The caller holds its lease on d until it closes the Follower.
func (d *DB) Watch(ctx context.Context, f watch.Filter, after, since int64) (*watch.Follower, error) {
	return watch.Follow(ctx, d.hub, offStack{d.store}, f, after, since)
}

// Another process may write the file too (a second kvd, a sqlite3 shell):
// its writes reach history, but not this kvd's hub, and its watchers would
// miss them for good. So the actor looks for such commits at each group's
// Begin, and, while the database is watched, every othersLookEvery when no
// group is open; on finding some, its watchers read history (hub.Missed).
const othersLookEvery = time.Second

// lookForOthersMsg asks the actor to look for other processes' commits.
type lookForOthersMsg struct{}

// publishOthers sends the watchers to history if another process
// committed since the actor last looked.
func (a *dbActor) publishOthers() {
	if a.w != nil && a.w.OthersCommitted() { // nil: a file kvd only reads
		a.db.hub.Missed()
	}
}

// lookForOthers asks the actor to look every othersLookEvery until stop
// is closed.
func (d *DB) lookForOthers(stop <-chan struct{}) {
	tick := time.NewTicker(othersLookEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			d.mu.RLock()
			if !d.closing {
				d.reg.system.Root.Send(d.pid, lookForOthersMsg{})
			}
			d.mu.RUnlock()
		case <-stop:
			return
		}
	}
}

// StartWatching counts the caller's lease as a watch's, which lasts as
// long as its stream and so keeps d open past MaxOpen and idleness. Each
// open database holds several file descriptors, so the databases watches
// keep open are bounded (MaxWatched, half of MaxOpen by default): past
// it, a watch of a database nobody watches yet is refused, 503
// OVERLOADED, and ordinary requests keep room to open theirs. Watches of
// a watched database cost no more files. StopWatching ends the count,
// before Release.
func (d *DB) StartWatching() error {
	r := d.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.watchers == 0 {
		if r.watched >= r.cfg.MaxWatched {
			return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many databases are being watched (%d, each kept open, holding file descriptors): retry later, or watch a database already watched", r.cfg.MaxWatched)
		}
		r.watched++
		d.stopLooking = make(chan struct{})
		go d.lookForOthers(d.stopLooking)
	}
	d.watchers++
	return nil
}

// StopWatching ends what StartWatching began.
func (d *DB) StopWatching() {
	r := d.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	d.watchers--
	if d.watchers == 0 {
		r.watched--
		close(d.stopLooking)
	}
}

// offStack reads history for a watcher on a goroutine of its own. A read
// through SQLite grows the stack of the goroutine that makes it to tens of
// KiB, and a watcher's goroutine, which lives as long as its stream and
// idles most of it, would keep that stack (the runtime shrinks it only at
// a GC, by half each time): with 10,000 idle watchers, that is what their
// memory would be.
type offStack struct{ store *sqlitekv.Store }

func (o offStack) ReadChanges(ctx context.Context, req sqlitekv.ChangesRequest) (p sqlitekv.ChangesPage, err error) {
	onOwnStack(func() { p, err = o.store.ReadChanges(ctx, req) })
	return p, err
}

// OpBefore is the newest op number of table written before ms (Unix
// milliseconds), 0 if none: a watch from a time starts after it.
func (d *DB) OpBefore(ctx context.Context, table string, ms int64) (op int64, err error) {
	onOwnStack(func() { op, err = d.store.OpBefore(ctx, table, ms) })
	return op, err
}

// Now is the time (Unix ms) by the database's clock.
func (d *DB) Now() int64 { return d.store.Now() }

// onOwnStack runs read on a new goroutine and waits for it (see offStack).
func onOwnStack(read func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		read()
	}()
	<-done
}
