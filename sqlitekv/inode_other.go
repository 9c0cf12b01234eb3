//go:build !linux

package sqlitekv

// lookUp looks at what path names, its last element not followed.
func lookUp(path string) (inode, bool) { return lstatInode(path) }
