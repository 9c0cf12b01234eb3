package sqlitekv

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// SQLite opens a database, its side files and a backup's copy by name,
// walking the path again each time. A local user who may change a folder
// on that path could swap a link in between kvd's checks and SQLite's
// open (renameat2 in a loop won within seconds), and so make kvd, which
// may run as root, read or create files outside its roots, or make a
// backup copy any file kvd can read. So, as sshd's StrictModes does, kvd
// opens no database through a folder that a user other than its own (or
// root) owns, or that every user may write, on the whole path from / down
// (a world-writable folder with the sticky bit, such as /tmp, passes where
// the next folder down is kvd's or root's: no one else may rename that).
// kvd's group is trusted: a group-writable folder (umask 002, an ACL, a
// volume shared by its group) passes. A directory-mode folder itself may
// be shared (people edit its files); kvd reaches them through an os.Root.

// errSharedFolder refuses a database through a folder others may change.
func errSharedFolder(folder string) *Error {
	return Errorf(CodeInvalidDBPath, "Invalid database path: the folder %s can be changed by other users (another user owns it, or every user may write it): a link swapped in there could lead outside the roots; make it kvd's or root's, not writable by others", folder)
}

// checkPathPrivate applies that rule to the folders on real's path, from
// real's own folder up to /; shown names a folder in the refusal.
func checkPathPrivate(real string, shown func(string) string) error {
	child := real
	for folder := filepath.Dir(real); ; folder = filepath.Dir(folder) {
		if othersMayChange(folder, child) {
			return errSharedFolder(shown(folder))
		}
		if folder == filepath.Dir(folder) {
			return nil
		}
		child = folder
	}
}

// othersMayChange reports whether a user other than kvd's (or root, or
// kvd's group) may change what child names in folder.
func othersMayChange(folder, child string) bool {
	f, ok := lstatInode(folder)
	if !ok {
		return false // what cannot be looked at is refused by the open itself
	}
	if !ours(f.access.uid) {
		return true
	}
	if f.access.mode&0o002 == 0 {
		return false
	}
	c, ok := lstatInode(child) // world-writable: only the sticky bit, and child being ours, keep others off
	return f.access.mode&syscall.S_ISVTX == 0 || !ok || !ours(c.access.uid)
}

func ours(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// checkDataDirPrivate refuses, at start, a data dir others may change,
// or one on such a path: every bare name is a database in it. (An
// --allow-dir may be a shared directory-mode folder; a database file in
// it is refused when opened.)
func checkDataDirPrivate(dir string) error {
	err := checkPathPrivate(dir, func(f string) string { return f })
	if err == nil && othersMayChange(dir, "") {
		err = errSharedFolder(dir)
	}
	if err != nil {
		return fmt.Errorf("data dir %s: %s (chmod o-w, or chown it to kvd's user)", dir, err.(*Error).Message)
	}
	return nil
}
