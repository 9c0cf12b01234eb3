package sqlitekv

import (
	"errors"

	"golang.org/x/sys/unix"
)

// holdFolder makes the cache's writer the folder's only one for as long
// as it is open. Two writers of one folder (two kvds, or one kvd given it
// under two paths, a bind mount say) lose acknowledged writes: each
// imports a file the other has committed to the cache but not yet put in
// place, overwriting it. SQLite's locks keep only the cache consistent.
// So the writer's descriptor of the cache holds a flock(2), which the
// other's writer then cannot take; it goes with that descriptor, kill -9
// included. On Linux SQLite's own locks are fcntl(2) ones (the driver's
// open-file-description locks), which flock's do not touch: SQLite
// releasing every lock of the file at the end of a transaction leaves
// this one held.
func holdFolder(w *Writer) error {
	fd, err := osFileOf(w.conn)
	if err != nil {
		return nil // a test's VFS: nothing to lock
	}
	err = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return errFolderServed
	case err != nil:
		return fsError("Could not lock the directory's cache", err)
	}
	return nil
}
