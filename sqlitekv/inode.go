package sqlitekv

import "syscall"

// lstatIsInode is isInode through lstat: syscall's, not os.Lstat, which
// allocates what is compared here and dropped, at every commit.
func lstatIsInode(path string, dev, ino uint64) bool {
	var got syscall.Stat_t
	for {
		err := syscall.Lstat(path, &got)
		if err == syscall.EINTR {
			continue
		}
		return err == nil && uint64(got.Dev) == dev && uint64(got.Ino) == ino
	}
}
