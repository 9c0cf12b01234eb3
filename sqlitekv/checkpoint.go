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
	if w.wal.pages.Load() >= int64(writerCheckpointPages) && w.id.logIntact() {
		w.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE)
	}
}

type checkpointer struct {
	conn   *sqlite3.Conn
	id     *fileIdentity
	before func()        // lets go of old snapshots that would stop the copy
	wake   chan struct{} // room for one: pokes while a checkpoint runs coalesce
	done   chan struct{}
}

func startCheckpointer(path, vfsName, sync string, id *fileIdentity, before func()) (*checkpointer, error) {
	name, flags := fileName(path, vfsName)
	conn, err := sqlite3.OpenFlags(name, flags|sqlite3.OPEN_READWRITE)
	if err != nil {
		return nil, openError(path, err)
	}
	if err := id.sameFile(conn); err != nil {
		conn.Close() // it would copy another file's log into that file
		return nil, err
	}
	// The same synchronous level as the writer: with it SQLite fsyncs the
	// database file before the WAL may be reused.
	if err := conn.Exec(`PRAGMA busy_timeout = 5000; PRAGMA synchronous = ` + sync); err != nil {
		conn.Close()
		return nil, dbError(err)
	}
	c := &checkpointer{conn: conn, id: id, before: before, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	for range c.wake {
		if !c.id.logIntact() {
			continue
		}
		c.before()
		// An error (a busy lock, say) leaves the pages in the WAL, where the
		// next checkpoint, or the writer's own, finds them.
		c.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE)
	}
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
	return c.conn.Close()
}
