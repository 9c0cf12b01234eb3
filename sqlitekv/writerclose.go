package sqlitekv

import (
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
)

// close ends the writer: its checkpointer, then its connection, copying
// the log into the file first where that is safe.
func (w *Writer) close() error {
	w.ckpt.close()
	if w.faulted {
		return nil // retired: its files are closed (faults.go)
	}
	return guardedClose(w.conn, w.closeConn)
}

func (w *Writer) closeConn() error {
	w.forgetTables()
	// The last connection's close checkpoints the log: what is left of a
	// cut one would overwrite good pages with the cut commit's.
	cut := w.logCutAtClose()
	frozen := w.id.sharedMemoryFrozen() // a checkpoint writes the -shm: SIGBUS
	var err error
	atClose := false
	switch {
	case cut, frozen:
	case w.id.file != nil && !names(w.id.path, w.id.file):
		err = w.checkpointMovedFile()
	default:
		err, atClose = w.checkpointAtClose(), true
	}
	closeErr := w.writerConn.close(cut || frozen)
	if _, there := lookUp(w.id.walPath); atClose && !there {
		err = nil // SQLite's own checkpoint at close did it after all, and removed the log
	}
	return errors.Join(err, closeErr)
}

// checkpointAtClose copies the log into the database file before the
// close does: SQLite's close checkpoints too, but says nothing when that
// fails, and a full disk should not go unsaid at shutdown. Passive, so
// that a reader of another program (Litestream) delays nothing; its
// leftovers are the close's, or the next open's. Nothing is lost when it
// fails: the log stays beside the file and the next open replays it.
func (w *Writer) checkpointAtClose() error {
	_, _, err := w.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE)
	if err == nil || errors.Is(err, sqlite3.BUSY) || errors.Is(err, sqlite3.LOCKED) {
		return nil
	}
	return dbError(fmt.Errorf("%s: its log could not be copied into it at close, and stays beside it for the next open to replay: %w", w.id.path, err))
}

// checkpointMovedFile copies the whole log into the database file the
// writer opened, which its path no longer names (moved away, deleted, or
// replaced by a restore): SQLite's close checkpoints only a file still at
// its path. So a database moved away (mv app.db elsewhere, its -wal after
// it or not) holds every acknowledged write. The log left at the path,
// empty now, is removed at the store's close (removeOldLog), so that the
// next open does not replay it into the file that took its place; that
// happens even if this checkpoint failed (the error says so), since the
// file at the path is the one kvd serves from then on.
func (w *Writer) checkpointMovedFile() error {
	w.id.replaced.Store(true)
	if _, _, err := w.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_TRUNCATE); err != nil {
		return dbError(fmt.Errorf("%s was moved or replaced while open, and its log could not be copied into the file kvd had open: %w", w.id.path, err))
	}
	return nil
}

// logCutAtClose reports whether the log the writer's close would
// checkpoint was cut, looked for afresh: no read or write may have found
// the cut since it was made. Only while the path still names the writer's
// log: one removed (and maybe made anew by another program) is
// checkpointed whole from the writer's open file, as identity.go says.
func (w *Writer) logCutAtClose() bool {
	if w.id.logCut.Load() {
		return true
	}
	wal, err := openedFile(w.conn, sqlite3.FCNTL_JOURNAL_POINTER)
	if err != nil || wal == nil || !names(w.id.walPath, wal) {
		return false
	}
	return !w.id.logIntact()
}

func (c *writerConn) close(noCheckpoint bool) error {
	c.ctl.close()
	forgetLarge(c.conn)
	if noCheckpoint {
		c.conn.Config(sqlite3.DBCONFIG_NO_CKPT_ON_CLOSE, true)
	}
	if err := c.conn.Close(); err != nil {
		return dbError(err)
	}
	return nil
}
