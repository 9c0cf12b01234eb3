package sqlitekv

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// treeFS does directory mode's file operations through an os.Root on the
// database's directory: whatever changes on disk between a check (confined,
// refuseDatabaseFile) and the act, a folder swapped for a symlink say, no
// open, rename or removal reaches outside the directory. The checks give
// clients their answers; the root makes them hold.
//
// Paths stay absolute, beneath dir, everywhere else in directory mode;
// each method makes them relative to the root. A path outside dir reaches
// the root as it is, and the root refuses it.
type treeFS struct {
	dir  string // the directory's real path
	root *os.Root
}

func openTree(dir string) (*treeFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fsError("Could not open the directory", err)
	}
	return &treeFS{dir: dir, root: root}, nil
}

func (t *treeFS) close() error { return t.root.Close() }

// rel is p relative to the root.
func (t *treeFS) rel(p string) string {
	if p == t.dir {
		return "."
	}
	if r, ok := strings.CutPrefix(p, t.dir+string(filepath.Separator)); ok {
		return r
	}
	return p
}

func (t *treeFS) lstat(p string) (fs.FileInfo, error) { return t.root.Lstat(t.rel(p)) }
func (t *treeFS) stat(p string) (fs.FileInfo, error)  { return t.root.Stat(t.rel(p)) }
func (t *treeFS) remove(p string) error               { return t.root.Remove(t.rel(p)) }
func (t *treeFS) mkdir(p string) error                { return t.root.Mkdir(t.rel(p), 0o750) }
func (t *treeFS) rename(from, to string) error        { return t.root.Rename(t.rel(from), t.rel(to)) }

// openToRead opens p for reading, following no symlink: neither p nor
// a folder on its way below the directory. The root would follow a link
// that stays inside it, so a link swapped in after confined looked would
// serve another key's file under this key; here the open fails with
// ELOOP instead. It opens without waiting: opening a FIFO to read would
// wait for a writer (for good, if none comes). A regular file reads as
// ever.
func (t *treeFS) openToRead(p string) (*os.File, error) {
	rel := t.rel(p)
	if rel == p || rel == "." {
		return nil, &fs.PathError{Op: "openat", Path: p, Err: syscall.EINVAL}
	}
	names := strings.Split(rel, string(filepath.Separator))
	// The walk starts at the directory itself, opened for the walk alone:
	// held open, it would be one more file per database than
	// FilesPerDatabase counts.
	top, err := t.root.Open(".")
	if err != nil {
		return nil, err
	}
	defer top.Close()
	conn, err := top.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	cerr := conn.Control(func(topFd uintptr) {
		dir := int(topFd)
		for i, name := range names {
			flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
			if i < len(names)-1 {
				flags |= unix.O_DIRECTORY
			}
			fd, err = unix.Openat(dir, name, flags, 0)
			if errors.Is(err, syscall.ENOTDIR) && isLinkAt(dir, name) {
				err = syscall.ELOOP // O_DIRECTORY answers ENOTDIR for a link to a folder
			}
			if dir != int(topFd) {
				unix.Close(dir)
			}
			if err != nil {
				return
			}
			dir = fd
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// isLinkAt reports whether name in folder dir is a symlink.
func isLinkAt(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// openDir opens folder p to read what it holds, never waiting: the
// root's Open of a folder another program swapped for a FIFO waited for a
// writer, holding the database's writer, or every later rescan, for good.
// Anything but a folder is ENOTDIR.
func (t *treeFS) openDir(p string) (*os.File, error) {
	return t.root.OpenFile(t.rel(p), openDirFlags, 0)
}

// openDirFlags open a folder, and nothing else, without waiting.
const openDirFlags = os.O_RDONLY | syscall.O_DIRECTORY | syscall.O_NONBLOCK

// readDir lists folder p in name order, as fs.ReadDir does.
func (t *treeFS) readDir(p string) ([]fs.DirEntry, error) {
	f, err := t.openDir(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// walkDir is filepath.WalkDir inside the root, with absolute paths, and
// like it does not follow p itself when p is a link. It is fs.WalkDir's
// walk over readDir rather than over the root's fs.FS, which takes no
// name that is not UTF-8 (a folder so named failed every rescan of its
// table) and opens folders as Open does.
func (t *treeFS) walkDir(p string, fn fs.WalkDirFunc) error {
	info, err := t.lstat(p)
	if err != nil {
		err = fn(p, nil, err)
	} else {
		err = t.walk(p, fs.FileInfoToDirEntry(info), fn)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func (t *treeFS) walk(p string, e fs.DirEntry, fn fs.WalkDirFunc) error {
	if err := fn(p, e, nil); err != nil || !e.IsDir() {
		if err == fs.SkipDir && e.IsDir() {
			err = nil
		}
		return err
	}
	entries, err := t.readDir(p)
	if err != nil {
		if err = fn(p, e, err); err != nil { // a second call, with the error
			if err == fs.SkipDir {
				err = nil
			}
			return err
		}
	}
	for _, child := range entries {
		if err := t.walk(filepath.Join(p, child.Name()), child, fn); err != nil {
			if err == fs.SkipDir {
				break // the rest of p
			}
			return err
		}
	}
	return nil
}

// createTemp is os.CreateTemp inside the root: a new file, named prefix
// and a random suffix, in folder dir; it returns the file and its path.
func (t *treeFS) createTemp(dir, prefix string) (*os.File, string, error) {
	for try := 0; ; try++ {
		p := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := t.root.OpenFile(t.rel(p), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		return f, p, err
	}
}

// takeOverMode gives tmp, the new bytes about to be renamed over p, the
// permission bits of the file at p and, where kvd may (it runs as root or
// owns p), its owner and group: a write changes a file's bytes, not who
// may read or edit it. But a file left kvd's own may always be read by
// it: one made unreadable (chmod 000) and replaced by a PUT would
// otherwise leave kvd unable to read back the value it acknowledged. A
// new file keeps createTemp's 0600.
func (t *treeFS) takeOverMode(p string, tmp *os.File) error {
	info, err := t.lstat(p)
	if err != nil || !info.Mode().IsRegular() {
		return nil
	}
	perm, owner := info.Mode().Perm(), os.Geteuid()
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		// Chown first: it may clear mode bits. EPERM: kvd may not give the
		// file away; it stays kvd's.
		switch err := tmp.Chown(int(st.Uid), int(st.Gid)); {
		case err == nil:
			owner = int(st.Uid)
		case !errors.Is(err, syscall.EPERM):
			return err
		}
	}
	if owner == os.Geteuid() {
		perm |= 0o400
	}
	return tmp.Chmod(perm)
}

// rmdir removes folder p if it is an empty folder, and never anything
// else, whatever took its place meanwhile (the root's Remove would remove
// a file as well).
func (t *treeFS) rmdir(p string) error {
	parent, err := t.openDir(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer parent.Close()
	conn, err := parent.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := conn.Control(func(fd uintptr) { err = unix.Unlinkat(int(fd), filepath.Base(p), unix.AT_REMOVEDIR) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return &fs.PathError{Op: "rmdir", Path: p, Err: err}
	}
	return nil
}

// isSQLiteFile is IsSQLiteFile inside the root.
func (t *treeFS) isSQLiteFile(p string) bool {
	f, err := t.root.OpenFile(t.rel(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return checkHeaderOf(f) == nil
}
