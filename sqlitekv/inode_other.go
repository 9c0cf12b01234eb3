//go:build !linux

package sqlitekv

// isInode reports whether path, its last element not followed, is inode
// ino on device dev.
func isInode(path string, dev, ino uint64) bool { return lstatIsInode(path, dev, ino) }
