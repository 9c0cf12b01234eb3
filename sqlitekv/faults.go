package sqlitekv

import (
	"runtime/debug"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// Every connection maps its database's -shm into memory, where SQLite
// keeps the WAL's index. When another program truncates that file, or
// makes it immutable, the kernel answers the next access to a page no
// longer there, or to a page SQLite may no longer write, with SIGBUS,
// which kills a Go program: kvd, and every database it serves, for one
// file changed underneath it. So each goroutine that runs SQLite asks for
// such a fault to panic instead (CatchFaults), and whatever recovers the
// panic retires the connection it hit: SQLite stopped halfway through
// what it was doing, so kvd calls into that connection no more, closes
// its files itself (which releases its locks, so that a new connection
// can rebuild the index), and leaves its memory behind, once per such
// event. Its store then counts as changed underneath (MustReopen), and
// the next request opens the database afresh: SQLite rebuilds a
// truncated index from the WAL, and an immutable -shm is served
// read-only (readonly.go).

// CatchFaults makes a memory fault on the calling goroutine panic instead
// of killing kvd. A database's actor calls it before each message it
// handles (the writer's recovers retire the connection, Writer.Recovered);
// this package's other goroutines call it themselves (guarded).
func CatchFaults() { debug.SetPanicOnFault(true) }

// isFault reports whether p, recovered, is a memory fault: the runtime
// error that carries the faulting address (debug.SetPanicOnFault).
func isFault(p any) bool {
	_, ok := p.(interface{ Addr() uintptr })
	return ok
}

var (
	errShmLost          = Errorf(CodeOverloaded, "The database's -shm file was changed underneath kvd (truncated, or made immutable): nothing was done; it is opened afresh; retry")
	errShmLostCommitted = Errorf(CodeOverloaded, "The database's -shm file was changed underneath kvd as the write committed: whether it was kept is unknown; read it back before retrying")
)

// retire closes conn's log and database files, and with the database file
// its -shm, without SQLite: the fault left SQLite's state as it was when
// it struck. The pointers to the files are all it asks SQLite for.
func retire(conn *sqlite3.Conn) { retireFiles(connFiles(conn)) }

// connFiles are conn's log (once SQLite opened it) and database files.
func connFiles(conn *sqlite3.Conn) (files []vfs.File) {
	defer func() { recover() }() // a fault on the way: what was found
	for _, which := range [...]sqlite3.FcntlOpcode{sqlite3.FCNTL_JOURNAL_POINTER, sqlite3.FCNTL_FILE_POINTER} {
		if f, err := conn.FileControl("main", which); err == nil {
			if f, ok := f.(vfs.File); ok {
				files = append(files, f)
			}
		}
	}
	return files
}

// retireFiles closes files. The -shm's locks are let go of first: SQLite's
// map of the file holds it open, and its locks with it, after the file is
// closed.
func retireFiles(files []vfs.File) {
	for _, f := range files {
		func() {
			defer func() { recover() }()
			if withShm, ok := f.(vfs.FileSharedMemory); ok && withShm.SharedMemory() != nil {
				unlockAll(withShm.SharedMemory())
			}
			f.Close()
		}()
	}
}

// guarded runs fn, which calls into conn, and retires conn if a fault
// interrupts it (faulted). Any other panic goes on.
func guarded(conn *sqlite3.Conn, fn func() error) (faulted bool, err error) {
	return retiringOnFault(fn, func() { retire(conn) })
}

// guardedClose is guarded for close, which closes conn: SQLite answers
// nothing about a connection it is closing, so its files are found first.
func guardedClose(conn *sqlite3.Conn, close func() error) error {
	files := connFiles(conn)
	_, err := retiringOnFault(close, func() { retireFiles(files) })
	return err
}

// retiringOnFault runs fn, and retire if a fault interrupts it.
func retiringOnFault(fn func() error, retire func()) (faulted bool, err error) {
	CatchFaults()
	defer func() {
		if p := recover(); p != nil {
			if !isFault(p) {
				panic(p)
			}
			retire()
			faulted, err = true, errShmLost
		}
	}()
	return false, fn()
}
