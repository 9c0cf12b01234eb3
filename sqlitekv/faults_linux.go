package sqlitekv

import (
	"io"

	"golang.org/x/sys/unix"
)

// unlockAll lets go of every lock held through file, a -shm: the OS VFS
// takes open file description locks there, which last as long as the
// description, and a map of the file keeps the description.
func unlockAll(file any) {
	if f, ok := file.(interface{ Fd() uintptr }); ok {
		unlock := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
		unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unlock)
	}
}
