package sqlitekv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// SQLite opens a database, its side files and a backup's copy by name,
// walking the path again each time. A local user who may change a folder
// on that path could swap a link in between kvd's checks and SQLite's
// open (renameat2 in a loop won within seconds), and so make kvd, which
// may run as root, read or create files outside its roots, or make a
// backup copy any file kvd can read. So, as sshd's StrictModes and
// PostgreSQL's data directory check do, kvd opens no database through a
// folder that users other than its own may change: writable by its
// group or others, or owned by another user (who could make it so). A
// directory-mode folder itself may be shared (people edit its files);
// kvd reaches its files through an os.Root.

// errSharedFolder refuses a database through a folder others may change.
func errSharedFolder(folder string) *Error {
	return Errorf(CodeInvalidDBPath, "Invalid database path: the folder %s can be changed by users other than kvd's (it is writable by its group or others, or another user owns it): a link swapped in there could lead outside the roots; make it writable by kvd's user alone", folder)
}

// checkFoldersPrivate applies that rule to the folders from root down to
// real's own folder (none when real is the root: a directory-mode folder
// an --allow-dir names); shown names them relative to the roots.
func checkFoldersPrivate(root, real string, shown func(string) string) error {
	for folder := filepath.Dir(real); real != root && strings.HasPrefix(folder, root); folder = filepath.Dir(folder) {
		if sharedFolder(folder) {
			return errSharedFolder(shown(folder))
		}
		if folder == root {
			break
		}
	}
	return nil
}

// sharedFolder reports whether users other than kvd's may change folder.
func sharedFolder(folder string) bool {
	var st syscall.Stat_t
	if syscall.Lstat(folder, &st) != nil {
		return false // what cannot be looked at is refused by the open itself
	}
	owner := int(st.Uid)
	return st.Mode&0o022 != 0 || (owner != 0 && owner != os.Geteuid())
}

// checkDataDirPrivate refuses, at start, a data dir others may change:
// every bare name is a database in it. (An --allow-dir may be a shared
// directory-mode folder; a database file in it is refused when opened.)
func checkDataDirPrivate(root string) error {
	if sharedFolder(root) {
		return fmt.Errorf("%s can be changed by users other than kvd's (writable by its group or others, or owned by another user): a link swapped into it could lead kvd outside its roots; make it writable by kvd's user alone (chmod go-w)", root)
	}
	return nil
}
