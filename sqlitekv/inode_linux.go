package sqlitekv

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// lookUp looks at what path names, its last element not followed.
//
// It asks statx for the inode and the file's access, never its times,
// because a stat that returns the file's times marks them as seen. Since
// Linux 6.13 (multigrain timestamps) the file's next write then takes a
// fine-grained time, so every write changes the inode, and ext4's
// fdatasync then writes the inode's block as well and waits for it.
// Checked at every commit, an lstat of the WAL cost every WAL fsync that
// extra disk write (bench/README.md). Asked for no times, the kernel
// leaves them unseen, and writes within one clock tick leave the inode as
// it was.
func lookUp(path string) (inode, bool) {
	const want = unix.STATX_INO | unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_UID | unix.STATX_GID | unix.STATX_SIZE
	var got unix.Statx_t
	for {
		err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, want, &got)
		switch err {
		case nil:
			access := fileAccess{
				mode:  uint32(got.Mode),
				uid:   got.Uid,
				gid:   got.Gid,
				attrs: got.Attributes & (unix.STATX_ATTR_IMMUTABLE | unix.STATX_ATTR_APPEND),
			}
			return inode{dev: unix.Mkdev(got.Dev_major, got.Dev_minor), ino: got.Ino, size: int64(got.Size), access: access}, true
		case syscall.EINTR:
			continue
		case syscall.ENOENT, syscall.ENOTDIR:
			return inode{}, false
		default: // ENOSYS before Linux 4.11, EPERM in a sandbox that forbids statx
			return lstatInode(path)
		}
	}
}
