package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/kvd/kvd/watch"
)

// opening is a database whose files are being opened, outside the
// registry's lock: an open can take seconds (a lock held by another
// program waits out SQLite's busy timeout; the first open after an
// upgrade rewrites the history), and every request, for every database,
// and the watchdog's Alive take that lock first. Requests for the same
// path wait for the opening instead, so a file never gets two stores
// (two writers).
type opening struct {
	done chan struct{} // closed once the open succeeded or failed
	err  error         // why it failed; written before done is closed
}

// openPath leases the database at path, opening it unless it is open.
func (r *Registry) openPath(ctx context.Context, name, path string, create, dirMode bool) (*DB, error) {
	return r.openPathBy(ctx, name, path, create, dirMode, time.Time{})
}

// openPathBy is openPath, waiting for room past MaxOpen until roomBy
// (zero: it has not waited yet).
func (r *Registry) openPathBy(ctx context.Context, name, path string, create, dirMode bool, roomBy time.Time) (*DB, error) {
	judged, err := r.upgradeRefused(path)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if err := r.settleLocked(ctx, path); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if db, ok := r.dbs[path]; ok {
		r.rememberName(name, db)
		db.lease(r.cfg.Now())
		r.mu.Unlock()
		return db, nil
	}
	if last, ok := r.failed[path]; ok && !last.at.Equal(judged) {
		// An open failed its upgrade since the failure judged above:
		// judge that one, rather than start another rewrite at once.
		r.mu.Unlock()
		return r.openPathBy(ctx, name, path, create, dirMode, roomBy)
	}
	if err := r.faults.reopenRefused(path, time.Now()); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if roomBy.IsZero() { // a waiter that looks again finds evicted what could be (Release)
		r.evictDownToLocked(r.cfg.MaxOpen - 1) // room for this one
	}
	if r.fullLocked() {
		if roomBy.IsZero() {
			roomBy = time.Now().Add(roomWait)
			r.roomWaiters++ // until this request is done, looks again included
			defer func() {
				r.mu.Lock()
				r.roomWaiters--
				r.mu.Unlock()
			}()
		}
		err := r.waitForRoomLocked(ctx, roomBy)
		if err == nil && !r.owns(path) {
			err = errMovedMeanwhile
		}
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return r.openPathBy(ctx, name, path, create, dirMode, roomBy)
	}
	o := &opening{done: make(chan struct{})}
	r.opening[path] = o
	r.mu.Unlock()
	// A panic in the open must still end the opening: else every later
	// request for path waits for it for good.
	finished := false
	defer func() {
		if !finished {
			r.finishOpening(name, path, o, nil, sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Opening the database failed; retry"))
		}
	}()
	db, err := r.openFiles(path, create, dirMode)
	finished = true
	if err == nil {
		r.warnOfOtherNames(db)
	}
	return r.finishOpening(name, path, o, db, err)
}

// upgradeRefused is the answer to a request for path while its last
// failed upgrade is not to be tried again yet (failedupgrades.go), nil
// when it may be, and the time of the failure it judged (zero: none).
func (r *Registry) upgradeRefused(path string) (time.Time, error) {
	r.mu.Lock()
	last, ok := r.failed[path]
	r.mu.Unlock()
	if !ok {
		return time.Time{}, nil
	}
	return last.at, last.refusal(path, time.Now(), sqlitekv.RoomFor)
}

// settleLocked waits, with mu released meanwhile, until path is neither
// being closed (one owner at a time) nor being opened (one store per
// file), and evicts the open database there if its file was deleted or
// replaced. An open waited for that failed fails this request too: the
// clients of a database locked elsewhere learn so together, not one busy
// timeout after another.
func (r *Registry) settleLocked(ctx context.Context, path string) error {
	for {
		if r.closed {
			return shuttingDown()
		}
		if db, ok := r.dbs[path]; ok && db.store.MustReopen() {
			r.evictLocked(db) // then open whatever the path names now
		}
		o, done := r.opening[path], r.closing[path]
		if o != nil {
			done = o.done
		}
		if done == nil {
			return nil
		}
		r.mu.Unlock()
		err := waitFor(ctx, done)
		r.mu.Lock()
		if err != nil {
			return err
		}
		if o != nil && o.err != nil {
			return o.err
		}
	}
}

// warnOfOtherNames logs a directory-mode cache with hard links (a
// database file with them is refused, errOtherNames): a copy of the folder
// made with cp -al (rsnapshot) is changed by every write, so it is no
// backup, and serving both at once loses writes (a tester's hard-linked
// copy of a directory-mode folder, served beside it, lost two
// acknowledged writes).
func (r *Registry) warnOfOtherNames(db *DB) {
	if n := db.store.Links(); n > 1 {
		r.cfg.Logger.Warn("database file has other names (hard links): every write changes them too, so such a copy is no backup, and serving two of them at once loses writes; copy it with db/backup instead",
			"db", db.path, "links", n)
	}
}

// errOtherNames refuses a database file with other names (hard links):
// SQLite keeps a log (-wal) and shared memory (-shm) per name, which
// exclude each other in nothing, and warns that a file with several
// names is one way to corrupt it. Served under two names, a file lost
// half of the increments sent to it; served under one name at a time, a
// name's log outlived it and was replayed over the other's writes, and
// the file was corrupted. A database opened before a link was made is
// served until it closes; no other name of it is.
var errOtherNames = sqlitekv.Errorf(sqlitekv.CodeInvalidDBPath, "Database file has other names (hard links): SQLite keeps a log for each name, so a file served by several loses writes or is corrupted, and kvd does not serve it; remove the other names (copy a database with db/backup)")

// waitFor waits until done is closed or the request's ctx ends.
func waitFor(ctx context.Context, done <-chan struct{}) error {
	if !closedBy(ctx, done) {
		return sqlitekv.Cancelled(ctx.Err())
	}
	return nil
}

// openFiles opens path's store (or directory), without an actor yet.
func (r *Registry) openFiles(path string, create, dirMode bool) (*DB, error) {
	db := &DB{reg: r, path: path, stopped: make(chan struct{}), hub: watch.NewHub()}
	if dirMode {
		dir, err := sqlitekv.OpenDir(path, r.cfg.Store)
		if err != nil {
			return nil, err
		}
		db.dir, db.store = dir, dir.Cache()
		return db, nil
	}
	if sqlitekv.LinksOf(path) > 1 {
		return nil, errOtherNames
	}
	store, err := sqlitekv.Open(path, create, r.cfg.Store)
	if err != nil {
		return nil, err
	}
	if store.Links() > 1 { // a name made while it opened
		store.Close()
		return nil, errOtherNames
	}
	db.store = store
	return db, nil
}

// finishOpening makes an opened database its path's owner, leased to
// this request, and wakes the requests waiting for it. If the registry
// closed meanwhile, the files are closed again before they wake: Close
// waits for that.
func (r *Registry) finishOpening(name, path string, o *opening, db *DB, err error) (*DB, error) {
	failed := failedUpgradeOf(path, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && r.closed { // for good: no need to look again after
		r.mu.Unlock()
		if closeErr := db.closeFiles(); closeErr != nil {
			r.cfg.Logger.Error("closing database", "db", path, "err", closeErr)
		}
		r.mu.Lock()
		err = shuttingDown()
	}
	if err == nil {
		r.startLocked(name, db)
	}
	delete(r.opening, path)
	// A waiter for path leases it now; a failed open left room.
	r.roomMayHaveFreedLocked()
	r.failed.note(path, failed, time.Now()) // wall-clock: it paces work, not data
	o.err = err
	close(o.done)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// startLocked spawns db's actor and hands db out, leased.
func (r *Registry) startLocked(name string, db *DB) {
	store := db.store
	props := actor.PropsFromProducer(func() actor.Actor {
		return &dbActor{db: db, w: store.Writer(), log: r.cfg.Logger}
	})
	db.mu.Lock() // send reads pid under mu: the sweep ticker may send before Spawn returns
	db.pid = r.system.Root.Spawn(props)
	db.mu.Unlock()
	r.dbs[db.path] = db
	r.rememberName(name, db)
	db.lease(r.cfg.Now())
}

func shuttingDown() error {
	return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Server is shutting down")
}
