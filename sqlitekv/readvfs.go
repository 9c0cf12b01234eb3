package sqlitekv

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/ncruces/go-sqlite3/vfs"
)

// Read connections reach their files through a VFS that opens a -wal
// read-only when kvd may not write it (its mode, chattr +i), and no
// -journal that is not a plain file (OpenFilename). SQLite asks
// to open a WAL read-write even for a read-only connection, and reads it
// read-only when the VFS says it had to (wal.c, sqlite3WalOpen): SQLite's
// own unix VFS retries a refused read-write open read-only; the Go one
// kvd uses does not, and such a database could not be read at all.

// The read VFS over the OS's files.
const readVFS = "kvd-read"

func init() {
	registerReadVFS("", vfs.Find("os").(vfs.VFSFilename))
}

// registerReadVFS registers the read VFS over base, known as under (""
// for the OS's; a test's simulated disk otherwise).
func registerReadVFS(under string, base vfs.VFSFilename) {
	vfs.Register(vfsOver(readVFS, under), readOpener{base})
}

type readOpener struct{ vfs.VFSFilename }

// OpenFilename opens as the OS's VFS does, with two exceptions: a -wal
// kvd may not write is opened read-only (above); and a -journal that is
// not a plain file is not opened at all. A read transaction begun on a fresh
// connection looks for a hot journal, opening the -journal without
// O_NONBLOCK: a pipe another program put there while the database was
// open (refuseOddSideFiles looks only as it opens) held every read that
// looked for good. Refused, SQLite takes the journal for hot, and the
// read fails instead.
func (v readOpener) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	if flags&vfs.OPEN_MAIN_JOURNAL != 0 {
		if info, err := os.Lstat(name.String()); err == nil && !info.Mode().IsRegular() {
			return nil, flags, &fs.PathError{Op: "open", Path: name.String(), Err: syscall.EINVAL}
		}
	}
	f, got, err := v.VFSFilename.OpenFilename(name, flags)
	noteOpenFailure(err)
	if err != nil && flags&vfs.OPEN_WAL != 0 && flags&vfs.OPEN_READWRITE != 0 && mayNotWrite(err) {
		return v.VFSFilename.OpenFilename(name, flags&^(vfs.OPEN_READWRITE|vfs.OPEN_CREATE)|vfs.OPEN_READONLY)
	}
	return f, got, err
}

// mayNotWrite reports whether err refused a write for want of the right
// to it: the file's mode, an immutable file, a read-only mount.
func mayNotWrite(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}
