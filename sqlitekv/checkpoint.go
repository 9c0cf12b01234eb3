package sqlitekv

import (
	"github.com/ncruces/go-sqlite3"
)

// A checkpoint copies the WAL's pages back into the database file. SQLite
// runs one inside the writer's commit every 1000 pages, which made it part
// of the single writer's serial work (11% of it under batch-set). Here a
// connection and goroutine of its own run them instead, so on a second core
// they overlap with the writer applying its next group.
//
// Passive checkpoints never block the writer, but they alone never let the
// WAL start over while writes keep coming: it restarts only when a write
// begins after every page was copied. So once the WAL reaches
// writerCheckpointPages the writer checkpoints itself (CheckpointIfLarge,
// after a group's writes are answered), which, with most pages already
// copied, is short.
//
// Variables, not constants, so tests can lower them.
var (
	backgroundCheckpointPages = 1000
	writerCheckpointPages     = 8000
)

// CheckpointIfLarge checkpoints on the writer's own connection once the WAL
// has passed writerCheckpointPages. As with SQLite's own checkpoints, an
// error leaves the pages in the WAL for the next one.
func (w *Writer) CheckpointIfLarge() {
	defer w.outlive()
	if !w.faulted && w.wal.pages.Load() >= int64(writerCheckpointPages) && w.id.logIntact() {
		_, _, err := w.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE)
		checkpointed(w.path, w.opts, err)
	}
}

// checkpointed tells opts.CheckpointFailed of a checkpoint's failure,
// unless a lock was in its way (another checkpoint, a reader of another
// program's), which the next one waits out.
func checkpointed(path string, opts Options, err error) {
	if err != nil && !LockedElsewhere(err) && opts.CheckpointFailed != nil {
		opts.CheckpointFailed(path, err)
	}
}

type checkpointer struct {
	conn   *sqlite3.Conn
	path   string
	opts   Options
	id     *fileIdentity
	before func()        // lets go of old snapshots that would stop the copy
	wake   chan struct{} // room for one: pokes while a checkpoint runs coalesce
	done   chan struct{}
	// A memory fault retired its connection (faults.go); set and read
	// by run alone until done.
	faulted bool
}

func startCheckpointer(path string, opts Options, id *fileIdentity, before func()) (*checkpointer, error) {
	name, flags := fileName(path, opts.vfs)
	conn, err := openConn(name, flags|sqlite3.OPEN_READWRITE)
	if err != nil {
		return nil, openError(path, err)
	}
	faulted, err := guarded(conn, func() error {
		if err := id.sameFile(conn); err != nil {
			return err // it would copy another file's log into that file
		}
		// The same synchronous level as the writer: with it SQLite fsyncs the
		// database file before the WAL may be reused.
		if err := conn.Exec(`PRAGMA synchronous = ` + syncPragma(opts.Sync)); err != nil {
			return dbError(err)
		}
		if err := conn.BusyTimeout(busyTimeout); err != nil {
			return dbError(err)
		}
		return checkSharedMemoryWritable(conn, path)
	})
	if faulted {
		return nil, err // conn is retired (faults.go)
	}
	if err != nil {
		guardedClose(conn, conn.Close)
		return nil, err
	}
	c := &checkpointer{conn: conn, path: path, opts: opts, id: id, before: before, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	for range c.wake {
		if c.faulted || !c.id.logIntact() || c.id.sharedMemoryFrozen() {
			continue
		}
		c.before()
		// An error leaves the pages in the WAL, where the next checkpoint,
		// or the writer's own, finds them.
		var err error
		if c.faulted, err = guarded(c.conn, c.checkpoint); c.faulted {
			c.id.shmLost.Store(true)
		}
		checkpointed(c.path, c.opts, err)
	}
}

func (c *checkpointer) checkpoint() error {
	_, _, err := c.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE)
	return err
}

// poke asks for a checkpoint without waiting for it.
func (c *checkpointer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) close() error {
	close(c.wake)
	<-c.done
	if c.faulted {
		return nil // retired: its files are closed (faults.go)
	}
	return guardedClose(c.conn, c.conn.Close)
}
