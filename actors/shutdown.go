package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Close is Shutdown without a deadline.
func (r *Registry) Close() error { return r.Shutdown(context.Background()) }

// Shutdown stops every actor after its queued writes commit, then closes
// the databases, side by side, and those being opened once their open
// ends. Later Opens fail.
//
// No close is cut short: checkpointing a large log takes a while, and
// that is progress. But an actor stuck for good (in a system call, on a
// FIFO put where a directory-mode file was) must not keep kvd from
// exiting: when ctx ends, Shutdown logs each database still closing and
// returns an error naming them, leaving them to the process's exit,
// which SQLite's log makes as safe as a crash.
func (r *Registry) Shutdown(ctx context.Context) error {
	open, pending, first := r.markClosed()
	if !first {
		return nil
	}
	var mu sync.Mutex
	var errs []error
	for _, db := range open {
		done := make(chan struct{})
		pending = append(pending, closingDB{path: db.path, done: done})
		go func() {
			defer close(done)
			if err := db.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	late := r.waitClosed(ctx, pending)
	r.system.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	if len(late) > 0 {
		errs = append(errs, fmt.Errorf("%d database(s) did not close in time: %s", len(late), strings.Join(late, ", ")))
	}
	return errors.Join(errs...)
}

// closingDB is a database Shutdown waits for.
type closingDB struct {
	path    string
	done    <-chan struct{}
	opening bool // still being opened: nothing of it was acknowledged yet
}

// markClosed refuses later Opens and hands Shutdown the open databases
// and those already being closed or opened (an opening sees the registry
// closed, and closes its files); first is false if it ran before.
func (r *Registry) markClosed() (open []*DB, pending []closingDB, first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, false
	}
	r.closed = true
	close(r.stop)
	r.roomMayHaveFreedLocked() // the opens waiting for room answer that kvd stops
	for _, db := range r.dbs {
		open = append(open, db)
	}
	r.dbs, r.byName = map[string]*DB{}, map[string]*DB{}
	for path, done := range r.closing {
		pending = append(pending, closingDB{path: path, done: done})
	}
	for path, o := range r.opening {
		pending = append(pending, closingDB{path: path, done: o.done, opening: true})
	}
	return open, pending, true
}

// waitClosed waits for each database until ctx ends, then logs those
// still closing and returns their paths. A database still being opened
// then (its file locked by another program, a long upgrade) is only
// logged: it holds no write kvd acknowledged, and its open, a
// transaction of SQLite's, is undone as by a crash.
func (r *Registry) waitClosed(ctx context.Context, pending []closingDB) (late []string) {
	for _, c := range pending {
		switch {
		case closedBy(ctx, c.done):
		case c.opening:
			r.cfg.Logger.Warn("database still opening at shutdown; left to the exit", "db", c.path)
		default:
			r.cfg.Logger.Error("database did not close in time; left to the exit", "db", c.path)
			late = append(late, c.path)
		}
	}
	return late
}

// closedBy waits for done until ctx ends; a done already closed counts
// even when ctx has ended too.
func closedBy(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
