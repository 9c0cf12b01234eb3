package sqlitekv

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// mirror keeps values outside SQLite in step with a Writer. stageFile and
// stageRemoval run inside a write's savepoint and only stage the change; the
// Writer then tells the mirror the fate of the SQLite side: mark and undo
// around each savepoint, apply once the transaction committed, discard
// when it rolled back. So no file changes unless the cache commits.
// leftOut tells a key the cache leaves out because its file is too
// large to import or unreadable (dirmode.go): a write that finds no entry
// learns that a file is there all the same. Sync brings the cache in line with a
// key's file before an expiry, which must not remove a file changed
// behind kvd's back. landing is held from before a COMMIT until apply is
// done, so that reads wait out a group's landing (dirmode_landing.go).
type mirror interface {
	stageFile(table, key string, value []byte) error
	stageRemoval(table, key string) error
	leftOut(table, key string) error
	Sync(table, key string) error
	mark() int
	undo(mark int)
	landing() (landed func())
	apply() error
	discard()
}

// A write's files follow its transaction by staging (redo), not by undo
// after the fact: stageFile writes the new bytes to a fsynced temp file and
// leaves the key's file alone; stageRemoval only notes the key. When the group's
// COMMIT has succeeded, apply renames each temp file over its key's file
// (the last change of each key wins), removes the removed keys' files and
// the folders that leaves empty, and fsyncs every folder it touched, and
// only then are the writes acknowledged. A failed savepoint drops its own staged changes (undo),
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
	path       string      // the key's file
	tmp        string      // the new bytes, fsynced; "" removes the file
	was        fs.FileInfo // a removal's: the file as the write found it (nil: none)
}

// staging is the open group's changes, in the order they were made.
type staging struct {
	changes []fileChange
	byKey   map[string][]int // table+NUL+key → its changes' indexes, oldest first
	under   map[string]int   // table+NUL+folder → keys beneath it whose latest change is a store
	tree    *treeFS          // where the temp files are
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

// ancestors yields each folder of key, shallowest first ("a", "a/b" for
// "a/b/c").
func ancestors(key string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := 0; i < len(key); i++ {
			if key[i] == '/' && !yield(key[:i]) {
				return
			}
		}
	}
}

// countUnder adds delta to the folders above c's key when c stores a file:
// under counts the keys whose latest change is a store, so a key stored
// and then removed in the same group no longer holds its folders.
func (s *staging) countUnder(c *fileChange, delta int) {
	if c == nil || c.tmp == "" {
		return
	}
	for folder := range ancestors(c.key) {
		f := stageKey(c.table, folder)
		if s.under[f] += delta; s.under[f] <= 0 {
			delete(s.under, f)
		}
	}
}

func (s *staging) add(c fileChange) {
	if s.byKey == nil {
		s.byKey, s.under = map[string][]int{}, map[string]int{}
	}
	s.countUnder(s.latest(c.table, c.key), -1)
	s.countUnder(&c, +1)
	k := stageKey(c.table, c.key)
	s.byKey[k] = append(s.byKey[k], len(s.changes))
	s.changes = append(s.changes, c)
}

// dropFrom forgets the changes from index mark on, deleting their temp
// files; each key's previous change becomes its latest again.
func (s *staging) dropFrom(mark int) {
	for i := len(s.changes) - 1; i >= mark; i-- {
		c := &s.changes[i]
		s.countUnder(c, -1)
		k := stageKey(c.table, c.key)
		if idx := s.byKey[k][:len(s.byKey[k])-1]; len(idx) > 0 {
			s.byKey[k] = idx
		} else {
			delete(s.byKey, k)
		}
		s.countUnder(s.latest(c.table, c.key), +1)
		if c.tmp != "" {
			s.tree.remove(c.tmp)
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

// stageFile stages value as key's new file: the bytes go to a fsynced temp
// file now, the rename happens in apply once the group has committed.
func (d *Dir) stageFile(table, key string, value []byte) error {
	if d.importing {
		return nil
	}
	p, err := d.filePath(table, key)
	if err != nil {
		return err
	}
	if err := d.tree.refuseDatabaseFile(p, value); err != nil {
		return err
	}
	tmp, tmpPath, err := d.createStagingFile(table, key, p)
	if err != nil {
		return err
	}
	werr := d.tree.takeOverMode(p, tmp)
	if werr == nil {
		_, werr = tmp.Write(value)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		d.tree.remove(tmpPath)
		return fsError("Could not write the file", werr)
	}
	d.staged.add(fileChange{table: table, key: key, path: p, tmp: tmpPath})
	return nil
}

// createStagingFile creates the temp file for key's new bytes, in the
// folder folderForStore picks. Should another program remove that folder
// in between, it picks again (a write makes missing folders), a few times
// at most: a folder removed over and over is a failure to report.
func (d *Dir) createStagingFile(table, key, p string) (*os.File, string, error) {
	for try := 0; ; try++ {
		tmpDir, err := d.folderForStore(table, key, p)
		if err != nil {
			return nil, "", err
		}
		tmp, tmpPath, err := createStagingTemp(d.tree, tmpDir)
		if errors.Is(err, fs.ErrNotExist) && try < 3 {
			continue
		}
		if err != nil {
			return nil, "", fsError("Could not write the file", err)
		}
		return tmp, tmpPath, nil
	}
}

// createStagingTemp creates a temp file in dir for a key's new bytes; a
// variable so that tests can remove dir just before.
var createStagingTemp = func(t *treeFS, dir string) (*os.File, string, error) {
	return t.createTemp(dir, tmpPrefix)
}

// stageRemoval stages the removal of key's file (a missing file is already
// removed). A file that cannot even be looked at fails the write now,
// before COMMIT, rather than the whole group after it.
func (d *Dir) stageRemoval(table, key string) error {
	if d.importing {
		return nil
	}
	p, err := d.filePath(table, key)
	if err != nil {
		return err
	}
	if err := d.tree.refuseDatabaseFile(p, nil); err != nil {
		return err
	}
	was, err := d.tree.lstatKeyFile(p, "Could not check the file to remove")
	if err != nil {
		return err
	}
	d.staged.add(fileChange{table: table, key: key, path: p, was: was})
	return nil
}

// refuseDatabaseFile keeps directory mode's hands off SQLite databases in
// a table's folder (a file-mode database opened by its absolute path, say):
// replacing or removing one, or one of its side files, would destroy what
// its owner acknowledged. So no key's file may be one, and no value written
// may become one (value: the new bytes, nil for a removal).
func (t *treeFS) refuseDatabaseFile(p string, value []byte) error {
	db := p
	for _, suffix := range sqliteSideFiles {
		if base, ok := strings.CutSuffix(p, suffix); ok {
			db = base
			break
		}
	}
	if bytes.HasPrefix(value, []byte(sqliteHeader)) || t.isSQLiteFile(db) {
		return Errorf(CodeInvalidParameters, "The key's file would be, or belongs to, a SQLite database: directory mode neither writes nor removes one")
	}
	return nil
}

// lstatKeyFile looks at a key's file: nil info and no error when there is
// none (nothing at the path, or a file where a folder on the way would be).
// what says what failed otherwise.
func (t *treeFS) lstatKeyFile(p, what string) (fs.FileInfo, error) {
	info, err := t.lstat(p)
	switch {
	case vanished(err):
		return nil, nil
	case err != nil:
		return nil, fsError(what, err)
	}
	return info, nil
}

// folderForStore checks that key can be a file once the group's earlier
// changes are applied, and returns the folder for its temp file: the
// deepest of the key's folders that already exists (the directory itself
// when even the table's folder is new); apply creates the rest, and the
// rename stays on one filesystem.
func (d *Dir) folderForStore(table, key, p string) (string, error) {
	tmpDir := filepath.Join(d.root, table)
	info, err := d.tree.stat(tmpDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tmpDir = d.root
	case err != nil:
		return "", fsError("Could not check the key's folder", err)
	case !info.IsDir():
		return "", Errorf(CodeInvalidParameters, "The folder of table %q is a file", table)
	}
	onDisk := tmpDir != d.root // the folders so far exist on disk
	for folder := range ancestors(key) {
		staged := d.staged.latest(table, folder)
		if staged != nil && staged.tmp != "" {
			return "", fileInTheWay(key) // a key stored in this group is a file there
		}
		if !onDisk {
			continue
		}
		next := filepath.Join(tmpDir, folder[strings.LastIndexByte(folder, '/')+1:])
		info, err := d.tree.stat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			onDisk = false
		case err != nil:
			return "", fsError("Could not check the key's folder", err)
		case info.IsDir():
			tmpDir = next
		case staged != nil: // a file removed in this group: the folder comes after it goes
			onDisk = false
		default:
			return "", fileInTheWay(key)
		}
	}
	if d.staged.under[stageKey(table, key)] > 0 {
		return "", Errorf(CodeInvalidParameters, "Key %q names the folder of other keys stored in this group", key)
	}
	if onDisk {
		if info, err := d.tree.lstat(p); err == nil && info.IsDir() {
			other, err := d.otherFileIn(table, key, p)
			if err != nil {
				return "", err
			}
			if other != "" {
				return "", Errorf(CodeInvalidParameters, "Key %q names a folder on disk that holds other files (%q among them); a key's file cannot replace it", key, other)
			}
		}
	}
	return tmpDir, nil
}

// openFolderInTheWay opens a folder where a key's file is to go, to see
// what it holds; a variable so that tests can remove it just before.
var openFolderInTheWay = (*treeFS).openDir

// otherFileIn names a file in folder p, the path of key, other than the
// files of keys whose removal this group has staged ("": none). With
// none, apply removes those files and the folders they leave, and an
// empty folder (made by hand, or left by a crash) too, before key's file
// takes the place. The walk reads a few entries at a time and stops at
// the first other file, which the refusal names (a file no key names may
// be what blocks a table's rollback), so a large folder costs little.
func (d *Dir) otherFileIn(table, key, p string) (string, error) {
	f, err := openFolderInTheWay(d.tree, p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return "", nil // removed, or no folder now, by another program's doing: nothing is in the way
	}
	if err != nil {
		return "", fsError("Could not check the key's folder", err)
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(64)
		if errors.Is(err, io.EOF) || errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fsError("Could not check the key's folder", err)
		}
		for _, e := range entries {
			sub := key + "/" + e.Name()
			if e.IsDir() {
				if other, err := d.otherFileIn(table, sub, filepath.Join(p, e.Name())); other != "" || err != nil {
					return other, err
				}
				continue
			}
			if c := d.staged.latest(table, sub); c == nil || c.tmp != "" {
				return sub, nil
			}
		}
	}
}

func fileInTheWay(key string) error {
	return Errorf(CodeInvalidParameters, "Key %q needs a folder where a file of another key is", key)
}
