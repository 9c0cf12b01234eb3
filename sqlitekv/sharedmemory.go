package sqlitekv

import (
	"errors"
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"golang.org/x/sys/unix"
)

// A connection that cannot open its database's shared memory (-shm) for
// writing, for want of a file descriptor say, is given it read-only by the
// SQLite driver, without an error, and keeps it so for its life: each of
// its writes then fails ("bad file descriptor", a 500) until the database
// closes, which under steady traffic is never. So the connections that
// write (the writer, the checkpointer) take the write lock once as they
// open, and one that cannot fails its open instead, for a later request
// to open it again.
func checkSharedMemoryWritable(conn *sqlite3.Conn, path string) error {
	// Without waiting: another program's write lock is no fault here, and
	// reads must not wait for it.
	conn.BusyTimeout(0)
	err := conn.Exec(`BEGIN IMMEDIATE; ROLLBACK`)
	conn.BusyTimeout(busyTimeout)
	switch {
	case err == nil || LockedElsewhere(err):
		return nil // another program's lock: the writes meet it as before
	case !errors.Is(err, sqlite3.READONLY) && !errors.Is(err, unix.EBADF): // EBADF: a write lock on a read-only descriptor
		return openError(path, err) // the -shm could not be opened at all, say
	}
	conn.Exec(`ROLLBACK`)
	// The causes below leave SQLite's READONLY out: Open would take it
	// for a read-only file, to be served without writes.
	const what = "Database's shared memory (-shm) could not be opened for writing"
	fd, openErr := unix.Open(path+"-shm", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	switch {
	case openErr == nil:
		unix.Close(fd)
		return outOfFiles(what, errors.New(err.Error())) // it can be now: most likely a descriptor was missing
	case NoFilesLeft(openErr):
		return outOfFiles(what, openErr)
	}
	return dbError(fmt.Errorf("%s: %w", what, openErr)) // immutable, say: Open serves it read-only
}
