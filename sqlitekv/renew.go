package sqlitekv

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ncruces/go-sqlite3"
)

// SQLite's memory in this driver is WebAssembly memory, one per
// connection, and it only grows: a connection keeps what its largest
// value once needed for as long as it is open. One PUT of 10 MiB leaves
// the writer at about 52 MB, one GET of it a reader at about 20 MB, so
// a client writing one large value to each of many databases could hold
// tens of megabytes per database until --idle-timeout closed them.
// Connections that held a large value are therefore closed and opened
// afresh once idle: a reader as it comes back to the pool, the writer
// after its group, when no write waits (RenewIfGrown).

// renewAfter is the size of a value that makes the connection it went
// through due for renewal.
const renewAfter = 1 << 20

// grown holds the connections that bound or read a value of renewAfter
// bytes or more since they were opened. The value binds and column reads
// that note them know only their statement, hence a set by connection.
var grown sync.Map // *sqlite3.Conn → struct{}

var renewed atomic.Int64

// ConnectionsRenewed counts the connections closed and opened afresh
// because they had held a large value.
func ConnectionsRenewed() int64 { return renewed.Load() }

// noteValue marks conn due for renewal if v is large.
func noteValue(conn *sqlite3.Conn, v []byte) { noteSize(conn, int64(len(v))) }

// noteSize marks conn due for renewal if it went through a value of n
// bytes that is large.
func noteSize(conn *sqlite3.Conn, n int64) {
	if n >= renewAfter {
		grown.Store(conn, struct{}{})
	}
}

// valueColumn reads a value (never nil: an empty one is no NULL) and
// notes its size.
func valueColumn(s *sqlite3.Stmt, i int) []byte {
	v := s.ColumnBlob(i, []byte{})
	noteValue(s.Conn(), v)
	return v
}

// tookLarge reports whether conn held a large value, and forgets it.
func tookLarge(conn *sqlite3.Conn) bool {
	_, ok := grown.LoadAndDelete(conn)
	return ok
}

// forgetLarge drops a closing connection from the set.
func forgetLarge(conn *sqlite3.Conn) { grown.Delete(conn) }

// RenewIfGrown opens the writer's connection afresh, outside a group, if
// it held a large value. Renewing only gives memory back: if the new
// connection cannot be had, the old one stays.
func (w *Writer) RenewIfGrown() {
	defer w.outlive()
	if w.faulted || w.inGroup || !tookLarge(w.conn) {
		return
	}
	fresh, version, err := w.openFresh()
	if err != nil {
		return
	}
	swapped := false
	defer func() {
		if p := recover(); p != nil {
			if !swapped { // a fault on the old connection: the fresh one closes
				guardedClose(fresh.conn, func() error { return fresh.close(true) })
			}
			panic(p) // outlive retires the old one
		}
	}()
	// Another process's commits up to the fresh connection's first look
	// are in its baseline: look for them on the old one first, or the
	// watchers and the readers' kept snapshots never hear of them.
	w.lookForOthers()
	w.forgetTables() // their statements are the old connection's
	old := w.writerConn
	// data_version numbers are each connection's own: the next Begin
	// compares with the new one's.
	w.writerConn, w.seenVersion = fresh, version
	swapped = true
	w.hookCommits()
	// Not the last connection (the checkpointer's is open), but its close
	// must not even try to checkpoint: that is the checkpointer's work. A
	// fault in it retires the old connection, not the writer's new one.
	guardedClose(old.conn, func() error { return old.close(true) })
	renewed.Add(1)
}

// openFresh opens and prepares another connection to the writer's file.
func (w *Writer) openFresh() (c writerConn, version int64, err error) {
	conn, err := openConn(bufferedWALURI(w.path, w.opts.Sync, w.opts.vfs), sqlite3.OPEN_READWRITE|sqlite3.OPEN_URI)
	if err != nil {
		return writerConn{}, 0, err
	}
	conn.SetInterrupt(w.work)
	// A fault here is the fresh connection's: it is retired, not the
	// writer's (which outlive would retire).
	faulted, err := guarded(conn, func() (err error) {
		if err = w.id.sameFile(conn); err == nil {
			err = setUpWriterConn(conn, w.opts)
		}
		if err == nil {
			c, err = prepareWriterConn(conn)
		}
		if err == nil {
			if version, err = c.fileVersion(); err != nil {
				c.ctl.close()
			}
		}
		return err
	})
	if faulted {
		w.id.shmLost.Store(true)
		return writerConn{}, 0, err
	}
	if err != nil {
		guardedClose(conn, conn.Close)
		return writerConn{}, 0, err
	}
	return c, version, nil
}

// putBack returns r to the pool; a reader that held a large value is
// closed instead, its slot left for a fresh one.
func (s *Store) putBack(r *reader) {
	if tookLarge(r.conn) && s.forget(r) {
		r.close()
		renewed.Add(1)
		s.slots <- struct{}{}
		return
	}
	s.readers <- r
}

// forget takes r off the readers Close waits for, unless Close has begun.
func (s *Store) forget(r *reader) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	s.all = slices.DeleteFunc(s.all, func(o *reader) bool { return o == r })
	return true
}
