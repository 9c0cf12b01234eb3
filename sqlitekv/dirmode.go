package sqlitekv

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

const (
	dirCacheFile   = ".kvd-cache.db"
	reservedPrefix = ".kvd-" // the cache and temp files; never a key segment
	tmpPrefix      = reservedPrefix + "tmp-"
	maxNameBytes   = 255 // NAME_MAX of Linux filesystems: the longest key segment
	OpImport       = "import"
)

// Dir is directory mode: each key of table t is the file <root>/<t>/<key>
// (hierarchy as folders), its bytes the value, so people and tools can read
// and edit the tree. Metadata and history live in a SQLite cache beside it.
// The files are the truth: reads serve a file's bytes even when the cache
// disagrees, and writes first import a file changed behind kvd's back.
type Dir struct {
	root      string  // real path
	tree      *treeFS // the file operations, confined to root
	cache     *Store
	lock      *os.File // held while the cache may be written: this kvd is the folder's only writer (lockFolder)
	importing bool     // the owner is copying files into the cache: do not write them back
	imported  int64    // bytes of files the owner's syncs read (ApplyRescan's turns)
	staged    staging  // the open group's file changes, applied after COMMIT (owner only)
	landings  landingGate
}

// OpenDir opens directory mode on root (a real, confined path).
func OpenDir(root string, opts Options) (*Dir, error) {
	tree, err := openTree(root)
	if err != nil {
		return nil, err
	}
	if err := refuseLinkedCache(tree); err != nil {
		tree.close()
		return nil, err
	}
	if err := refuseToEnclose(tree, root); err != nil {
		tree.close()
		return nil, err
	}
	// A new cache whose open fails is removed by Open itself: its absence
	// then tells nothing of another program.
	_, err = tree.root.Lstat(dirCacheFile)
	existed := err == nil
	cache, err := Open(filepath.Join(root, dirCacheFile), true, opts)
	if err != nil {
		if existed {
			err = cacheRemovedMeanwhile(tree, err)
		}
		tree.close()
		return nil, err
	}
	d := &Dir{root: root, tree: tree, cache: cache}
	d.staged.tree = tree
	if cache.writer != nil { // else a read-only cache (readonly.go): no write comes
		if d.lock, err = lockFolder(filepath.Join(root, dirCacheFile)); err != nil {
			err = cacheRemovedMeanwhile(tree, err)
			cache.Close()
			tree.close()
			return nil, err
		}
		cache.writer.mirror = d
	}
	return d, nil
}

// cacheRemovedMeanwhile is err, the failure to open a cache that was
// there, or a 503 when err found no file and the cache is not there now:
// another program removed it while it opened, and a retry makes a new
// one, as it does once the cache of an open database is removed. (They
// were 500s.)
func cacheRemovedMeanwhile(tree *treeFS, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, lerr := tree.root.Lstat(dirCacheFile); errors.Is(lerr, fs.ErrNotExist) {
		return Errorf(CodeOverloaded, "The directory's cache was removed while it opened; retry")
	}
	return err
}

// errFolderServed is a 503: the other writer may be a kvd on its way out
// (a restart that overlaps), after which a retry is served.
var errFolderServed = Errorf(CodeOverloaded, "Directory is served by another kvd, or by this one under another path: directory mode must be its folder's only writer; retry once that one stops")

// refuseLinkedCache refuses a cache (or a side file of it) that is not a
// plain file: through a symlink, the cache could be any database, inside
// the allowed roots or not, and SQLite would write into it.
func refuseLinkedCache(tree *treeFS) error {
	for _, suffix := range append([]string{""}, sqliteSideFiles...) {
		info, err := tree.root.Lstat(dirCacheFile + suffix)
		if err == nil && !info.Mode().IsRegular() {
			return Errorf(CodeInvalidDBPath, "The directory's %s%s is not a plain file", dirCacheFile, suffix)
		}
	}
	return nil
}

// refuseToEnclose refuses to make a directory-mode database of a folder
// that already holds one further down: with a cache of its own here, that
// one would lie in a table folder of this one and be refused from then on
// (Resolver.refuseInsideDirMode). Only a new database looks (no cache yet),
// so the walk is paid once.
func refuseToEnclose(tree *treeFS, root string) error {
	if _, err := tree.root.Lstat(dirCacheFile); err == nil {
		return nil
	}
	return tree.walkDir(root, func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil // what cannot be read holds nothing to refuse for
		case p != root && e.Name() == dirCacheFile:
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			return Errorf(CodeInvalidDBPath, "The directory holds the directory-mode database %q: made one itself, it would lock that one out", filepath.ToSlash(rel))
		case e.IsDir() && strings.HasPrefix(e.Name(), reservedPrefix):
			return filepath.SkipDir
		}
		return nil
	})
}

// Cache is the SQLite store of metadata and history.
func (d *Dir) Cache() *Store { return d.cache }

// filePath maps key to its file, refusing keys that cannot be plain file
// names inside the table's folder.
func (d *Dir) filePath(table, key string) (string, error) {
	segs := strings.Split(key, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.HasPrefix(s, reservedPrefix) || strings.ContainsAny(s, "\\\x00") {
			return "", Errorf(CodeInvalidParameters, "Key %q cannot be a file path in directory mode (an empty, '.', '..' or '.kvd-' segment, a backslash or a NUL)", key)
		}
		if len(s) > maxNameBytes {
			return "", Errorf(CodeInvalidParameters, "A key segment is longer than %d bytes, the longest file name in directory mode", maxNameBytes)
		}
	}
	p := filepath.Join(append([]string{d.root, table}, segs...)...)
	if err := d.confined(table, key, p); err != nil {
		return "", err
	}
	return p, nil
}

// confined checks that p stays in the table's folder and reaches its
// file through no symlink: neither p nor a folder on its way may be one.
// A link that points out of the folder would be a way out; one that
// points inside would make one file the value of two keys, each with
// its own version, TTL and history, and a write to either change the
// other behind the cache's back. A refusal names key, p's key, so that a
// batch or a rollback refused whole says which.
func (d *Dir) confined(table, key, p string) error {
	base := filepath.Join(d.root, table)
	existing, real, err := d.resolveExisting(p)
	var l linked
	if errors.As(err, &l) {
		return linkedKey(key, l)
	}
	if err != nil {
		return err
	}
	if real != existing { // the root is a real path: any difference is a link on the way
		if d.moved() { // no link on the key's way: the folder itself moved
			d.cache.folderMoved.Store(true) // the store is to be reopened (MustReopen)
			return errFolderMoved
		}
		return linkedKey(key, linkedPath)
	}
	// A folder on the way that holds a cache of its own is another
	// directory-mode database, whose files are its own (as Rebuild skips it).
	for folder := existing; folder == base || strings.HasPrefix(folder, base+string(filepath.Separator)); folder = filepath.Dir(folder) {
		if d.tree.holdsCache(folder) {
			return Errorf(CodeInvalidParameters, "Key lies in the folder of another directory-mode database: its files are its own")
		}
	}
	if info, err := d.tree.lstat(p); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		return linkedKey(key, linkedFile)
	}
	return nil
}

// moved reports whether the directory itself was moved and a link left
// at its path (mv notes notes2; ln -s notes2 notes). Every key would then
// seem to go through a link, and reads would record each one removed by
// hand; instead the store is to be reopened (a 503, then the path is
// resolved afresh), as when the directory is moved away or replaced. Its
// files are the same: unlike a replaced one's, its log stays.
func (d *Dir) moved() bool {
	real, err := resolveFolder(d.root)
	return err == nil && real != d.root
}

var errFolderMoved = Errorf(CodeOverloaded, "The database's folder was moved while open, and a link left in its place: retry")

// linked is the cause of a key refused for a symlink on its path: what
// the key does. A write is refused (400); a read finds no key there (404
// naming the link), as it finds none where a FIFO or socket is, and the
// cache learns that the key's file is gone (Sync), so listings drop it
// and an expiry leaves the link in place.
type linked string

const (
	linkedFile linked = "names a symlink"
	linkedPath linked = "goes through a symlink"
)

func (l linked) Error() string { return string(l) }

const followsNoLinks = "; directory mode serves plain files only and follows no links"

func linkedKey(key string, l linked) *Error {
	return &Error{Code: CodeInvalidParameters, Message: fmt.Sprintf("Key %q %s%s", key, l, followsNoLinks), Cause: l}
}

// resolveExisting finds the deepest of p's folders that exists, and its
// real path. Another program may remove that folder between the two
// steps; the search then starts over, and a tree that keeps changing
// under it leaves the key not found, as the steps run one at a time
// would have found it. A folder that is itself a link (dangling, or one
// that loops) is refused as a link.
func (d *Dir) resolveExisting(p string) (existing, real string, err error) {
	for range 3 {
		existing = filepath.Dir(p)
		for {
			info, err := d.tree.lstat(existing)
			if err == nil && info.Mode()&fs.ModeSymlink != 0 {
				return "", "", linkedPath
			}
			if err == nil || existing == d.root {
				break
			}
			existing = filepath.Dir(existing)
		}
		if real, err = resolveFolder(existing); !vanished(err) {
			break
		}
	}
	switch {
	case vanished(err):
		return "", "", Errorf(CodeKeyNotFound, "Key not found (its folder was removed while kvd looked)")
	case errors.Is(err, syscall.ELOOP):
		return "", "", linkedPath
	case err != nil:
		return "", "", fsError("Could not resolve the key's folder", err)
	}
	return existing, real, nil
}

// resolveFolder is filepath.EvalSymlinks; a variable so that tests can
// remove the folder just before it runs (export_test.go).
var resolveFolder = filepath.EvalSymlinks

// vanished reports whether err says a path (or a folder on the way) is
// not there: another program removed it, or put a file in a folder's place.
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// holdsCache reports whether folder is a directory-mode database's own:
// it holds a cache.
func (t *treeFS) holdsCache(folder string) bool {
	_, err := t.lstat(filepath.Join(folder, dirCacheFile))
	return err == nil
}

// fileKind names what a path holds that is neither a folder nor a plain file.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// fsError reports a filesystem failure by its kind, without paths. A
// path too long for the filesystem is the key's fault, not the disk's; a
// full disk (no space, no inodes, no quota left) is STORAGE_FULL; a
// read-only filesystem READ_ONLY; too many open files OVERLOADED.
func fsError(what string, err error) *Error {
	if errors.Is(err, syscall.ENAMETOOLONG) {
		return &Error{Code: CodeInvalidParameters, Message: "Key makes a file path longer than the filesystem allows", Cause: err}
	}
	reason := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		reason = errno.Error()
	}
	if NoFilesLeft(err) {
		return outOfFiles(what, err)
	}
	if errors.Is(err, fs.ErrClosed) {
		// The directory closed under the request (evicted, reopened after
		// a -shm fault): to retry, as a closing store's reads (ErrClosing).
		return &Error{Code: CodeOverloaded, Message: "Database is closing; retry shortly", Cause: err}
	}
	if errors.Is(err, syscall.EROFS) {
		return &Error{Code: CodeReadOnly, Message: what + ": read-only file system", Cause: err}
	}
	code := CodeFileSystemError
	if storageFull(err) {
		code = CodeStorageFull
	}
	return &Error{Code: code, Message: what + ": " + reason, Cause: err}
}

// Sync brings the cache in line with key's file (owner only): a file
// edited, added or removed behind kvd's back becomes an "import" write. A
// key the open group changed is in line already: its file is staged and
// lands on disk when the group commits.
func (d *Dir) Sync(table, key string) error {
	if d.hasStaged(table, key) {
		return nil
	}
	w := d.cache.writer
	t, err := w.table(table, true)
	if err != nil {
		return err
	}
	data, _, ferr := d.readFile(table, key)
	d.imported += int64(len(data))
	unreadable := errors.Is(ferr, fs.ErrPermission)
	leftOut := CodeOf(ferr) == CodePayloadTooLarge || unreadable
	if ferr != nil && CodeOf(ferr) != CodeKeyNotFound && !leftOut {
		return ferr
	}
	d.importing = true
	defer func() { d.importing = false }()
	return w.atomically(func() error {
		cur, exists, expired, err := t.current(key, w.writeNow())
		held := exists || expired // the cache has a row for key
		if err == nil && expired {
			expired, err = d.leftToExpiry(t, key, data, ferr)
		}
		switch {
		case err != nil:
			return err
		case expired: // the expiry removes it: the sweep, a read's follow-up or the write that asked
			return nil
		case unreadable && exists: // says nothing of its bytes (a chmod, a backup tool): the row stays as it was
			return nil
		case leftOut && held: // replaced by a file too large to import, or unreadable: what it holds is unknown, an unrecorded write
			if _, _, err := w.appendHistory(t, key, OpImport, nil, false); err != nil {
				return err
			}
			return t.delete(key)
		case leftOut:
			return nil
		case ferr != nil && held: // removed behind our back, or a FIFO or folder put in its place
			if _, _, err := w.appendHistory(t, key, OpImport, nil, true); err != nil {
				return err
			}
			return t.delete(key)
		case ferr != nil, exists && bytes.Equal(cur.Value, data):
			return nil
		case !held && !d.creatable(key): // a file no write could create is not a key
			return nil
		}
		_, err = w.writeVersion(t, key, OpImport, cur, exists, Entry{Value: data, ContentType: relabel(cur, data)}, true)
		return err
	})
}

// leftToExpiry reports whether key, past its expiry in the cache, is to
// be expired: its file (data, or the read's error ferr) still holds the
// expired value, or is gone. A file changed behind kvd's back is not: it
// is imported as a new value, without the old one's TTL.
func (d *Dir) leftToExpiry(t *writeTable, key string, data []byte, ferr error) (bool, error) {
	row, _, err := t.stored(key)
	if err != nil {
		return false, err
	}
	return d.holdsExpired(t.name.name, key, row, data, ferr), nil
}

// Close closes the cache, then the directory.
func (d *Dir) Close() error {
	err := errors.Join(d.cache.Close(), d.tree.close())
	if d.lock != nil {
		d.lock.Close()
	}
	return err
}

// reserved reports whether key is one of Options.ReservedKeys.
func (d *Dir) reserved(key string) bool { return slices.Contains(d.cache.opts.ReservedKeys, key) }

// creatable reports whether a write could create key.
func (d *Dir) creatable(key string) bool { return ValidateKey(key) == nil && !d.reserved(key) }
