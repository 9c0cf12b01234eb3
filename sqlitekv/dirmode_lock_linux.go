package sqlitekv

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockFolder makes this kvd the folder's only writer for as long as the
// descriptor it returns is open. Two writers of one folder (two kvds, or
// one kvd given it under two paths, a bind mount say) lose acknowledged
// writes: each imports a file the other has committed to its cache but
// not yet put in place, overwriting it. SQLite's locks keep only the
// cache consistent. So the cache is opened once more, for a flock(2) of
// its own: another kvd's then fails, and it goes with the descriptor,
// kill -9 included. A descriptor of its own, not the writer's: the writer's
// connection is renewed after large values (renew.go), and flock(2) locks
// are not SQLite's (on Linux, the driver's are fcntl(2) ones), which
// SQLite releasing every lock of the file leaves alone.
func lockFolder(cache string) (*os.File, error) {
	f, err := os.OpenFile(cache, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fsError("Could not lock the directory's cache", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, errFolderServed
	case err != nil:
		f.Close()
		return nil, fsError("Could not lock the directory's cache", err)
	}
	return f, nil
}
