package actors

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/kvd/kvd/sqlitekv"
)

// Rebuild rescans a table's folder (directory mode; elsewhere a no-op).
// The folder is read without the actor (sqlitekv.Dir.ScanChanges), so
// writes do not wait for it, however many files it holds; the actor only
// brings in what the scan found changed, a turn at a time
// (sqlitekv.Dir.ApplyRescan), serving the writes queued between turns.
func (d *DB) Rebuild(ctx context.Context, table string) error {
	if d.dir == nil {
		return nil
	}
	if err := d.store.ReadOnly(); err != nil {
		return err
	}
	return d.rescans.await(ctx, table, func() error {
		found, err := scanChanges(d.dir, ctx, table)
		for err == nil {
			if found, err = importTurn(ctx, d, found); err == nil && !found.More() {
				d.reg.cfg.Hooks.rescanned()
				return nil
			}
		}
		return err
	})
}

// scanChanges and importTurn are variables so that tests can hold a
// rescan up.
var (
	scanChanges = (*sqlitekv.Dir).ScanChanges
	importTurn  = func(ctx context.Context, d *DB, found sqlitekv.Rescan) (sqlitekv.Rescan, error) {
		return call(ctx, d, rebuildOp{found})
	}
)

// rescans shares one table's rescans among the rebuild requests that
// pile up (clients polling a listing with rebuild=true, say), so that
// they do not each read the whole folder; but a request is answered only
// by a rescan that began after it was sent, which alone is sure to see
// what the client changed before sending it.
type rescans struct {
	sent     atomic.Uint64 // rebuild requests so far, numbering them
	mu       sync.Mutex
	inFlight map[string]*rescan // by table
}

type rescan struct {
	began     uint64        // requests numbered up to here were sent before it began
	done      chan struct{} // closed once err and abandoned are set
	err       error
	abandoned bool // the request that ran it went away: its error is no answer for the others
}

// await answers a rebuild request of table with the result of run: its
// own, or that of a rescan in flight that began after it was sent.
func (s *rescans) await(ctx context.Context, table string, run func() error) error {
	seq := s.sent.Add(1)
	for {
		s.mu.Lock()
		r := s.inFlight[table]
		if r == nil {
			r = &rescan{began: s.sent.Load(), done: make(chan struct{})}
			if s.inFlight == nil {
				s.inFlight = map[string]*rescan{}
			}
			s.inFlight[table] = r
			s.mu.Unlock()
			r.err = run()
			r.abandoned = ctx.Err() != nil
			s.mu.Lock()
			delete(s.inFlight, table)
			s.mu.Unlock()
			close(r.done)
			return r.err
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return sqlitekv.Cancelled(ctx.Err())
		case <-r.done:
		}
		if r.began >= seq && !r.abandoned {
			return r.err
		}
	}
}
