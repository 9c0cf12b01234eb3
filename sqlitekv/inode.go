package sqlitekv

import (
	"io/fs"
	"syscall"
)

// inode is what a path names, as kvd checks it: which file (device and
// inode), and what decides whether kvd may write that file.
type inode struct {
	dev, ino uint64
	size     int64
	access   fileAccess
}

// fileAccess is what most often decides whether kvd may write a file:
// its mode and owners and, on Linux, its immutable and append-only
// attributes. (An ACL changed alone goes unseen, as does a remount: one
// read-only waits for the open files to close anyway.)
type fileAccess struct {
	mode, uid, gid uint32
	attrs          uint64
}

// is reports whether i is the file that file describes.
func (i inode) is(file fs.FileInfo) bool {
	want, ok := file.Sys().(*syscall.Stat_t)
	return ok && uint64(want.Dev) == i.dev && uint64(want.Ino) == i.ino
}

// lstatInode is lookUp through lstat: syscall's, not os.Lstat, which
// allocates what is compared here and dropped, at every commit.
func lstatInode(path string) (inode, bool) {
	var got syscall.Stat_t
	for {
		err := syscall.Lstat(path, &got)
		if err == syscall.EINTR {
			continue
		}
		access := fileAccess{mode: uint32(got.Mode), uid: got.Uid, gid: got.Gid}
		return inode{dev: uint64(got.Dev), ino: uint64(got.Ino), size: got.Size, access: access}, err == nil
	}
}
