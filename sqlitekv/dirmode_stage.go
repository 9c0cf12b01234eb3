package sqlitekv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Mirror keeps values outside SQLite in step with a Writer. Store and
// Remove run inside a write's savepoint and only stage the change; the
// Writer then tells the mirror the fate of the SQLite side: mark and undo
// around each savepoint, apply once the transaction committed, discard
// when it rolled back. So no file changes unless the cache commits.
type Mirror interface {
	Store(table, key string, value []byte) error
	Remove(table, key string) error
	mark() int
	undo(mark int)
	apply() error
	discard()
}

// A write's files follow its transaction by staging (redo), not by undo
// after the fact: Store writes the new bytes to a fsynced temp file and
// leaves the key's file alone; Remove only notes the key. When the group's
// COMMIT has succeeded, apply renames each temp file over its key's file
// (the last change of each key wins), removes the removed keys' files and
// fsyncs every folder it touched, and only then are the writes
// acknowledged. A failed savepoint drops its own staged changes (undo),
// a failed group all of them (discard).
//
// Why staging: other readers never see a file the cache has not committed,
// and a rollback needs no old bytes kept anywhere. Crash-safety, per key:
// a crash before COMMIT leaves the old file (and an orphaned .kvd-tmp-
// file, which Rebuild deletes); a crash after COMMIT but before the rename
// also leaves the old file, with the cache ahead of it, and since the files
// are the truth the next read or write imports the old file back (that
// write was never acknowledged). The rename itself is atomic: old or new
// file, never a torn one. A group is not atomic across a crash: a crash
// midway through apply leaves some keys new and some old.

// fileChange is one staged change of a key's file.
type fileChange struct {
	table, key string
	path       string // the key's file
	tmp        string // the new bytes, fsynced; "" removes the file
}

// staging is the open group's changes, in the order they were made.
type staging struct {
	changes []fileChange
	byKey   map[string][]int // table+NUL+key → its changes' indexes, oldest first
	under   map[string]int   // table+NUL+folder → staged stores of keys beneath it
}

func stageKey(table, key string) string { return table + "\x00" + key }

// latest is key's newest staged change, or nil.
func (s *staging) latest(table, key string) *fileChange {
	idx := s.byKey[stageKey(table, key)]
	if len(idx) == 0 {
		return nil
	}
	return &s.changes[idx[len(idx)-1]]
}

// ancestors calls fn with each folder of key, shallowest first ("a", "a/b"
// for "a/b/c").
func ancestors(key string, fn func(folder string)) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			fn(key[:i])
		}
	}
}

func (s *staging) add(c fileChange) {
	if s.byKey == nil {
		s.byKey, s.under = map[string][]int{}, map[string]int{}
	}
	k := stageKey(c.table, c.key)
	s.byKey[k] = append(s.byKey[k], len(s.changes))
	if c.tmp != "" {
		ancestors(c.key, func(folder string) { s.under[stageKey(c.table, folder)]++ })
	}
	s.changes = append(s.changes, c)
}

// dropFrom forgets the changes from index mark on, deleting their temp files.
func (s *staging) dropFrom(mark int) {
	for i := len(s.changes) - 1; i >= mark; i-- {
		c := s.changes[i]
		k := stageKey(c.table, c.key)
		if idx := s.byKey[k][:len(s.byKey[k])-1]; len(idx) > 0 {
			s.byKey[k] = idx
		} else {
			delete(s.byKey, k)
		}
		if c.tmp != "" {
			os.Remove(c.tmp)
			ancestors(c.key, func(folder string) {
				if f := stageKey(c.table, folder); s.under[f] > 1 {
					s.under[f]--
				} else {
					delete(s.under, f)
				}
			})
		}
	}
	clear(s.changes[mark:])
	s.changes = s.changes[:mark]
}

func (d *Dir) mark() int { return len(d.staged.changes) }

func (d *Dir) undo(mark int) { d.staged.dropFrom(mark) }

func (d *Dir) discard() { d.staged.dropFrom(0) }

// hasStaged reports whether the open group changed key's file: the cache
// already holds that change, the disk does not yet.
func (d *Dir) hasStaged(table, key string) bool { return d.staged.latest(table, key) != nil }

// Store stages value as key's new file: the bytes go to a fsynced temp
// file now, the rename happens in apply once the group has committed.
func (d *Dir) Store(table, key string, value []byte) error {
	if d.importing {
		return nil
	}
	p, err := d.filePath(table, key)
	if err != nil {
		return err
	}
	tmpDir, err := d.folderForStore(table, key, p)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tmpDir, reservedPrefix+"tmp-*")
	if err != nil {
		return fsError("Could not write the file", err)
	}
	_, werr := tmp.Write(value)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fsError("Could not write the file", werr)
	}
	d.staged.add(fileChange{table: table, key: key, path: p, tmp: tmp.Name()})
	return nil
}

// Remove stages the removal of key's file (a missing file is already
// removed).
func (d *Dir) Remove(table, key string) error {
	if d.importing {
		return nil
	}
	p, err := d.filePath(table, key)
	if err != nil {
		return err
	}
	d.staged.add(fileChange{table: table, key: key, path: p})
	return nil
}

// folderForStore checks that key can be a file once the group's earlier
// changes are applied, and returns the folder for its temp file: the key's
// own folder when it exists, else the deepest existing folder on the way
// (apply creates the rest; the rename stays on one filesystem).
func (d *Dir) folderForStore(table, key, p string) (string, error) {
	needsFolder := Errorf(CodeInvalidParameters, "Key %q needs a folder where a file of another key is", key)
	tmpDir := filepath.Join(d.root, table)
	info, err := os.Stat(tmpDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tmpDir = d.root
	case err != nil:
		return "", fsError("Could not check the key's folder", err)
	case !info.IsDir():
		return "", Errorf(CodeInvalidParameters, "The folder of table %q is a file", table)
	}
	onDisk := tmpDir != d.root // the folders so far exist on disk
	var failure error
	ancestors(key, func(folder string) {
		staged := d.staged.latest(table, folder)
		if failure != nil {
			return
		}
		if staged != nil && staged.tmp != "" {
			failure = needsFolder // a key stored in this group is a file there
			return
		}
		if !onDisk {
			return
		}
		next := filepath.Join(tmpDir, folder[strings.LastIndexByte(folder, '/')+1:])
		info, err := os.Stat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			onDisk = false
		case err != nil:
			failure = fsError("Could not check the key's folder", err)
		case info.IsDir():
			tmpDir = next
		case staged != nil: // a file removed in this group: the folder comes after it goes
			onDisk = false
		default:
			failure = needsFolder
		}
	})
	if failure != nil {
		return "", failure
	}
	if d.staged.under[stageKey(table, key)] > 0 {
		return "", Errorf(CodeInvalidParameters, "Key %q names a folder of other keys", key)
	}
	if onDisk {
		if info, err := os.Lstat(p); err == nil && info.IsDir() {
			return "", Errorf(CodeInvalidParameters, "Key %q names a folder of other keys", key)
		}
	}
	return tmpDir, nil
}

// apply puts the committed group's files in place (owner only, after
// COMMIT): removals first, since a removed file may stand where another
// key now needs a folder; then each key's last stored bytes are renamed
// into place, creating folders as needed; last, every folder whose
// entries changed is fsynced once, new folders' parents included. A
// failure does not stop the others; the first is returned, and the
// caller reports the whole group failed (the cache is then ahead of that
// file until a read imports it back).
func (d *Dir) apply() error {
	s := &d.staged
	if len(s.changes) == 0 {
		return nil
	}
	defer func() {
		clear(s.changes)
		s.changes = s.changes[:0]
		clear(s.byKey)
		clear(s.under)
	}()
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	dirty := map[string]bool{}
	var stores []fileChange
	for i, c := range s.changes {
		idx := s.byKey[stageKey(c.table, c.key)]
		switch {
		case idx[len(idx)-1] != i: // a later change of the same key wins
			if c.tmp != "" {
				os.Remove(c.tmp)
			}
		case c.tmp != "":
			stores = append(stores, c)
		default:
			// A folder in its place is not a key's file: leave it.
			if info, err := os.Lstat(c.path); err == nil && !info.IsDir() {
				if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					keep(fsError("Could not remove the file", err))
					continue
				}
				dirty[filepath.Dir(c.path)] = true
			}
		}
	}
	for _, c := range stores {
		folder := filepath.Dir(c.path)
		created, err := mkdirs(folder)
		for _, f := range created {
			dirty[filepath.Dir(f)] = true // the new folder's own entry
		}
		if err == nil && len(created) > 0 {
			err = d.confined(c.table, c.path) // the folders now exist: check again
		}
		if err == nil {
			if err = os.Rename(c.tmp, c.path); err != nil {
				err = fsError("Could not put the file in place", err)
			}
		}
		if err != nil {
			os.Remove(c.tmp)
			keep(err)
			continue
		}
		dirty[folder] = true
	}
	for folder := range dirty {
		if err := syncDir(folder); err != nil {
			keep(err)
		}
	}
	return first
}

// mkdirs creates folder and any missing parents, returning the folders it
// created, shallowest first, so their parents can be fsynced: a new folder
// is only durable once the folder holding it is.
func mkdirs(folder string) ([]string, error) {
	var missing []string
	for p := folder; ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err == nil {
			if !info.IsDir() {
				return nil, fsError("Could not create the key's folder", &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR})
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return nil, fsError("Could not create the key's folder", err)
		}
		missing = append(missing, p)
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return created, fsError("Could not create the key's folder", err)
		}
		created = append(created, missing[i])
	}
	return created, nil
}

// syncDir fsyncs a folder; a variable so a test can see which folders a
// write made durable (no other test can observe an fsync).
var syncDir = syncFolder

func syncFolder(folder string) error {
	f, err := os.Open(folder)
	if err != nil {
		return fsError("Could not sync the folder", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fsError("Could not sync the folder", err)
	}
	return nil
}
