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
// roomWait, then answers 503 OVERLOADED.
const roomWait = 2 * time.Second

// fullLocked: no database more may open or be opened now. Room for one
// beyond those kept open by watches is always left: under a file limit
// that fits one database, a watch would otherwise shut every other one
// out (MaxWatched is at least 1), and the spare files hold one more.
func (r *Registry) fullLocked() bool {
	return len(r.dbs)+len(r.opening) >= max(r.cfg.MaxOpen, r.watched+1)
}

// waitForRoomLocked waits, with mu released meanwhile, until a database
// may be opened or by (a deadline). It returns with mu held.
func (r *Registry) waitForRoomLocked(ctx context.Context, by time.Time) error {
	for r.fullLocked() {
		if r.closed {
			return shuttingDown()
		}
		if r.room == nil {
			r.room = make(chan struct{})
		}
		room := r.room
		r.mu.Unlock()
		timer := time.NewTimer(time.Until(by))
		var err error
		select {
		case <-room:
		case <-timer.C:
			err = sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many databases in use at once (--max-open-dbs %d, each leased by a request or being opened); retry", r.cfg.MaxOpen)
		case <-ctx.Done():
			err = sqlitekv.Cancelled(ctx.Err())
		}
		timer.Stop()
		r.mu.Lock()
		if err != nil {
			return err
		}
		r.evictDownToLocked(r.cfg.MaxOpen - 1)
	}
	return nil
}

// roomMayHaveFreedLocked wakes the requests waiting for room: a lease
// ended (its database may be closed for theirs), or an open failed.
func (r *Registry) roomMayHaveFreedLocked() {
	if r.room != nil {
		close(r.room)
		r.room = nil
	}
}
