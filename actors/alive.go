package actors

import (
	"context"
	"fmt"
)

// pingMsg asks an actor to show it still takes messages: it answers at
// once, outside any group, from behind the writes queued before it.
type pingMsg struct{ answered chan struct{} }

// Alive reports whether kvd can still answer: the registry's lock can be
// taken, and every open database's actor answers a message queued behind
// its writes before ctx ends, or is at work meanwhile (its writer runs
// SQL: a table rollback over many keys holds an actor for tens of
// seconds). systemd's watchdog is pinged only while this holds, so a
// wedged actor gets kvd restarted rather than left serving requests that
// never end. (A registry that deadlocked blocks Alive itself, which stops
// the pings just the same.)
func (r *Registry) Alive(ctx context.Context) error {
	r.mu.Lock()
	dbs := make([]*DB, 0, len(r.dbs))
	for _, db := range r.dbs {
		dbs = append(dbs, db)
	}
	r.mu.Unlock()
	pings := make([]pingMsg, len(dbs))
	work := make([]uint64, len(dbs))
	for i, db := range dbs {
		pings[i] = pingMsg{answered: make(chan struct{})}
		work[i] = db.store.WriterWork()
		db.sendPing(pings[i])
	}
	for i, ping := range pings {
		select {
		case <-ping.answered:
		case <-ctx.Done():
			if dbs[i].store.WriterWork() == work[i] {
				return fmt.Errorf("the actor of database %s did not answer in time, and did no work meanwhile", dbs[i].path)
			}
		}
	}
	return nil
}

// sendPing queues ping for the actor; a database that is closing answers
// for itself (its actor may already be gone, and closing is progress).
func (d *DB) sendPing(ping pingMsg) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closing {
		close(ping.answered)
		return
	}
	d.reg.system.Root.Send(d.pid, ping)
}
