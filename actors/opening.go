package actors

import (
	"context"

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
	file *sqlitekv.FileID
}

// openPath leases the database at path, opening it unless it is open.
func (r *Registry) openPath(ctx context.Context, name, path string, create, dirMode bool) (*DB, error) {
	r.mu.Lock()
	file, err := r.settleLocked(ctx, path, dirMode)
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	db, ok := r.dbs[path]
	if !ok && file != nil {
		if other, taken := r.byFile[*file]; taken {
			r.mu.Unlock()
			return nil, r.openUnderAnotherName(other)
		}
	}
	if ok {
		r.rememberName(name, db)
		db.lease(r.cfg.Now())
		r.mu.Unlock()
		return db, nil
	}
	r.evictDownToLocked(r.cfg.MaxOpen - 1) // room for this one
	o := &opening{done: make(chan struct{}), file: file}
	r.opening[path] = o
	if file != nil {
		r.openingFile[*file] = o
	}
	r.mu.Unlock()
	db, err = r.openFiles(path, create, dirMode)
	if err == nil {
		r.warnOfOtherNames(db)
	}
	return r.finishOpening(name, path, o, db, err)
}

// settleFileLocked waits, with mu released meanwhile, until no other path
// of the file id (a hard link) is being opened or closed, and reports
// whether it found none at once (else path's state must be looked at
// again). One file is served by one name at a time: each name has a log
// (-wal) and shared memory (-shm) of its own, and in WAL mode SQLite's
// locks live in the -shm, so two names of a file exclude each other in
// nothing. Served under both at once, a file lost half of the increments
// sent to it (3,200 acknowledged, 1,600 counted); one actor for both
// names still mixed the two logs when a name was removed or replaced.
// So a name of a file open under another is refused (openUnderAnotherName).
func (r *Registry) settleFileLocked(ctx context.Context, id sqlitekv.FileID) (settled bool, err error) {
	done := r.closingFile[id]
	if o := r.openingFile[id]; o != nil {
		done = o.done
	}
	if done == nil {
		return true, nil
	}
	r.mu.Unlock()
	err = waitFor(ctx, done)
	r.mu.Lock()
	return false, err
}

// settleLocked settles path (settlePathLocked) and, in file mode, the file
// it names (settleFileLocked), which it returns (nil: none yet).
func (r *Registry) settleLocked(ctx context.Context, path string, dirMode bool) (*sqlitekv.FileID, error) {
	for {
		if err := r.settlePathLocked(ctx, path); err != nil || dirMode {
			return nil, err
		}
		id, ok := sqlitekv.FileIDOf(path)
		if !ok {
			return nil, nil
		}
		if db, ok := r.byFile[id]; ok && db.store.MustReopen() {
			r.evictLocked(db) // open at a path that names another file now
		}
		if settled, err := r.settleFileLocked(ctx, id); err != nil || settled {
			return &id, err
		}
	}
}

// settlePathLocked waits, with mu released meanwhile, until path is neither
// being closed (one owner at a time) nor being opened (one store per
// file), and evicts the open database there if its file was deleted or
// replaced. An open waited for that failed fails this request too: the
// clients of a database locked elsewhere learn so together, not one busy
// timeout after another.
func (r *Registry) settlePathLocked(ctx context.Context, path string) error {
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

// warnOfOtherNames logs a database file with hard links: a copy made
// with cp -al (rsnapshot) is changed by every write, so it is no backup,
// and two kvds, or one under two names, serving it at once lose writes
// (a tester's hard-linked copy of a directory-mode folder, served beside
// it, lost two acknowledged writes).
func (r *Registry) warnOfOtherNames(db *DB) {
	if n := db.store.Links(); n > 1 {
		r.cfg.Logger.Warn("database file has other names (hard links): every write changes them too, so such a copy is no backup; copy it with db/backup instead",
			"db", db.path, "links", n)
	}
}

// openElsewhere is the database open under another name of the file db
// (opened without error) opened, if any.
func (r *Registry) openElsewhere(db *DB, err error) *DB {
	if err != nil || db.dir != nil {
		return nil
	}
	return r.byFile[db.file]
}

// openUnderAnotherName refuses a name of a file open under another.
func (r *Registry) openUnderAnotherName(other *DB) error {
	return sqlitekv.Errorf(sqlitekv.CodeInvalidDBPath, "Database file is open under another name, %q (a hard link): kvd serves a file by one name at a time, since each name has a log of its own; use that name", r.cfg.Resolver.Name(other.path))
}

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
	store, err := sqlitekv.Open(path, create, r.cfg.Store)
	if err != nil {
		return nil, err
	}
	db.store = store
	db.file = store.FileID()
	return db, nil
}

// finishOpening makes an opened database its path's owner, leased to
// this request, and wakes the requests waiting for it. If the registry
// closed meanwhile, the files are closed again before they wake: Close
// waits for that.
func (r *Registry) finishOpening(name, path string, o *opening, db *DB, err error) (*DB, error) {
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
	if other := r.openElsewhere(db, err); other != nil {
		// The path named another file by the time it was opened: one open
		// under another name (a rename raced the open).
		r.mu.Unlock()
		if closeErr := db.closeFiles(); closeErr != nil {
			r.cfg.Logger.Error("closing database", "db", path, "err", closeErr)
		}
		r.mu.Lock()
		err = r.openUnderAnotherName(other)
	}
	if err == nil {
		r.startLocked(name, db)
	}
	delete(r.opening, path)
	if o.file != nil {
		delete(r.openingFile, *o.file)
	}
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
	if db.dir == nil {
		r.byFile[db.file] = db
	}
	r.rememberName(name, db)
	db.lease(r.cfg.Now())
}

func shuttingDown() error {
	return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Server is shutting down")
}
