package actors

import (
	"context"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// Open databases hold file descriptors (sqlitekv.FilesPerDatabase each),
// and MaxOpen is fitted to what the process may have. Opens past it used
// to go ahead while every open database was leased, on the view that a
// burst would pass: 8,000 requests to as many new databases at once took
// every descriptor (and 3 GB), so that requests to databases already open
// waited 15–30 s and thousands failed with "too many open files". Now a
// request that would open a database past MaxOpen, with none idle to
// close, waits for room (a lease's end, an open that failed) up to
// roomWait, then answers 503 OVERLOADED. Waiters are not served in order:
// one that arrives as room frees may take it first.
const roomWait = 2 * time.Second

// fullLocked: no database more may open or be opened now. Room for one
// beyond those kept open by watches is always left: under a file limit
// that fits one database, a watch would otherwise shut every other one
// out (MaxWatched is at least 1), and the spare files hold one more.
func (r *Registry) fullLocked() bool {
	return len(r.dbs)+len(r.opening) >= max(r.cfg.MaxOpen, r.watched+1)
}

// waitForRoomLocked waits, with mu released meanwhile, for the next
// change that may let the caller open its database (a database closed, an
// open ended), until by (a deadline), and returns with mu held: nil tells
// the caller to look again, from the start, for much may have changed
// (another request may have opened its database, or the cluster moved it).
// Waking costs a waiter a few map look-ups, no scan of the open databases:
// the change that made room evicted what it could (Release).
func (r *Registry) waitForRoomLocked(ctx context.Context, by time.Time) error {
	if r.closed {
		return shuttingDown()
	}
	if r.room == nil {
		r.room = make(chan struct{})
	}
	room := r.room
	r.mu.Unlock()
	defer r.mu.Lock()
	timer := time.NewTimer(time.Until(by))
	defer timer.Stop()
	select {
	case <-room:
		return nil
	case <-timer.C:
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many databases in use at once (--max-open-dbs %d, each leased by a request or being opened); retry", r.cfg.MaxOpen)
	case <-ctx.Done():
		return sqlitekv.Cancelled(ctx.Err())
	}
}

// roomMayHaveFreedLocked wakes the requests waiting for room (a database
// closed, or an open ended) to look again.
func (r *Registry) roomMayHaveFreedLocked() {
	if r.room != nil {
		close(r.room)
		r.room = nil
	}
}

// errMovedMeanwhile answers a request that waited for room to open a
// database this node stopped serving meanwhile (a cluster's hand-over).
var errMovedMeanwhile = sqlitekv.Errorf(sqlitekv.CodeOverloaded, "The database moved to another node while this request waited to open it; retry")
