package sqlitekv

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// isInode reports whether path, its last element not followed, is inode
// ino on device dev.
//
// It asks statx for the inode alone, because a stat that returns the
// file's times marks them as seen. Since Linux 6.13 (multigrain
// timestamps) the file's next write then takes a fine-grained time, so
// every write changes the inode, and ext4's fdatasync then writes the
// inode's block as well and waits for it. Checked after every commit, an
// lstat of the WAL cost every WAL fsync that extra disk write
// (bench/README.md). Asked for the inode alone, the kernel leaves the
// times unseen, and writes within one clock tick leave the inode as it
// was.
func isInode(path string, dev, ino uint64) bool {
	var got unix.Statx_t
	for {
		err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, &got)
		switch err {
		case nil:
			return unix.Mkdev(got.Dev_major, got.Dev_minor) == dev && got.Ino == ino
		case syscall.EINTR:
			continue
		case syscall.ENOENT, syscall.ENOTDIR:
			return false
		default: // ENOSYS before Linux 4.11, EPERM in a sandbox that forbids statx
			return lstatIsInode(path, dev, ino)
		}
	}
}
