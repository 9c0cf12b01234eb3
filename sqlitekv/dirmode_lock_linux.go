//go:build linux && !sqlite3_flock

package sqlitekv

import (
	"errors"
	"os"
	"syscall"
	"time"

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
// are not SQLite's (on Linux, the driver's are fcntl(2) ones, unless it
// is built with sqlite3_flock: dirmode_lock_other.go), which SQLite
// releasing every lock of the file leaves alone.
func lockFolder(cache string) (*os.File, error) {
	f, err := os.OpenFile(cache, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0) // a FIFO swapped in would wait for a writer
	if err != nil {
		return nil, fsError("Could not lock the directory's cache", err)
	}
	// A store of this kvd's that had the folder under another path (one
	// moved, a link left in its place) may still be closing: a moment's
	// grace, rather than telling its clients another kvd serves it.
	for range 20 {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
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
