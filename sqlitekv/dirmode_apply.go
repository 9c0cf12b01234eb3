package sqlitekv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// apply puts the committed group's files in place (owner only, after
// COMMIT): removals first, and the folders they leave empty up to the
// table's folder, since a removed file may stand where another key now
// needs a folder, and a removed folder where a key's file goes; then each
// key's last stored bytes are renamed into place, creating folders as
// needed; last, every folder whose entries changed is fsynced once, new
// folders' parents included.
//
// The cache has committed the whole group, so a failure does not stop the
// other keys: each file put in place agrees with the cache. The failed
// key keeps its old file (the cache is ahead of it until the next read or
// write imports the file back). Failed keys come back as *FileFailures, so
// the caller fails only the writes that touched them; a folder that could
// not be synced fails the whole group.
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
	failed := &FileFailures{byKey: map[string]error{}}
	keep := func(c fileChange, err error) {
		failure := appliedFailure(c.key, err)
		failed.byKey[stageKey(c.table, c.key)] = failure
		if failed.first == nil {
			failed.first = failure
		}
	}
	dirty := map[string]bool{}
	emptied := map[string]string{} // folder a removal may have left empty → its table's folder
	var stores []fileChange
	for i, c := range s.changes {
		idx := s.byKey[stageKey(c.table, c.key)]
		switch {
		case idx[len(idx)-1] != i: // a later change of the same key wins
			if c.tmp != "" {
				d.tree.remove(c.tmp)
			}
		case c.tmp != "":
			stores = append(stores, c)
		default:
			info, err := d.tree.lstatKeyFile(c.path, "Could not check the file to remove")
			if err != nil {
				keep(c, err)
				continue
			}
			if info == nil || info.IsDir() { // gone already; a folder in its place is not a key's file
				continue
			}
			if !Unchanged(c.was, info) {
				// Replaced by hand since the write found it (the sweep's
				// round and its COMMIT's fsync are long enough for a person
				// to rename a new file over an expired one): a new value,
				// which the next read or write imports.
				continue
			}
			if err := d.tree.remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				keep(c, fsError("Could not remove the file", err))
				continue
			}
			dirty[filepath.Dir(c.path)] = true
			emptied[filepath.Dir(c.path)] = filepath.Join(d.root, c.table)
		}
	}
	for folder, base := range emptied {
		d.tree.removeEmptyFolders(folder, base, dirty)
	}
	for _, c := range stores {
		if err := d.putInPlace(c, dirty); err != nil {
			d.tree.remove(c.tmp)
			keep(c, err)
		}
	}
	for folder := range dirty {
		if err := syncDir(folder); err != nil {
			return &Error{Code: CodeFileSystemError, Cause: err, Message: fmt.Sprintf("The cache committed and the files are in place, but a folder could not be synced (%s): a crash may still undo them", reasonOf(err))}
		}
	}
	if failed.first != nil {
		return failed
	}
	return nil
}

// FileFailures is Commit's error, in directory mode, when the cache
// committed but some keys' files could not be changed: the writes that
// touched those keys failed, the group's other writes landed.
type FileFailures struct {
	first error
	byKey map[string]error // stageKey(table, key) → the key's failure
}

func (f *FileFailures) Error() string { return f.first.Error() }
func (f *FileFailures) Unwrap() error { return f.first }

// For is the failure of a write to keys of table, or nil if every file it
// changed is in place. A write that does not say which keys it touched
// (table "") failed if any key did.
func (f *FileFailures) For(table string, keys []string) error {
	if table == "" {
		return f.first
	}
	for _, key := range keys {
		if err := f.byKey[stageKey(table, key)]; err != nil {
			return err
		}
	}
	return nil
}

// appliedFailure reports a file that could not be changed after the cache
// committed: a server-side failure whatever the cause (never the
// client's), saying which key and what became of it; a full disk stays
// STORAGE_FULL, since the write did not land and may once there is room.
func appliedFailure(key string, err error) *Error {
	code := CodeFileSystemError
	if CodeOf(err) == CodeStorageFull {
		code = CodeStorageFull
	}
	return &Error{
		Code:    code,
		Message: fmt.Sprintf("The cache committed but key %q's file could not be changed (%s); the file keeps its old bytes, which the next read or write imports back", key, reasonOf(err)),
		Cause:   err,
	}
}

// reasonOf is the client-facing message of a failure.
func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "unexpected failure"
}

// putInPlace renames c's temp file over its key's file, creating the
// missing folders first: the folders are checked to stay in the table's
// folder before anything is created (a link may have appeared since the
// write was staged), and again once they exist. The folders created for
// a rename that then failed are removed again. Empty folders where the
// file goes are removed first (staging let only those through), once the
// path is known to stay in the table's folder.
func (d *Dir) putInPlace(c fileChange, dirty map[string]bool) error {
	folder := filepath.Dir(c.path)
	if info, err := d.tree.lstat(c.path); err == nil && info.IsDir() {
		if err := d.confined(c.table, c.key, c.path); err != nil {
			return err
		}
		if err := d.tree.removeEmptyTree(c.path, dirty); err != nil {
			return fsError("Could not remove the folder where the key's file goes", err)
		}
		dirty[folder] = true
	}
	var created []string
	if _, statErr := d.tree.stat(folder); statErr != nil {
		err := d.confined(c.table, c.key, c.path)
		if err == nil {
			created, err = d.tree.mkdirs(folder)
			for _, f := range created {
				dirty[filepath.Dir(f)] = true // the new folder's own entry
			}
		}
		if err == nil {
			err = d.confined(c.table, c.key, c.path)
		}
		if err != nil {
			d.tree.removeCreated(created, dirty)
			return err
		}
	}
	if err := d.tree.rename(c.tmp, c.path); err != nil {
		d.tree.removeCreated(created, dirty)
		return fsError("Could not put the file in place", err)
	}
	dirty[folder] = true
	return nil
}

// removeCreated removes the folders mkdirs created, deepest first, as
// long as they are empty; their parents stay dirty, to be fsynced.
func (t *treeFS) removeCreated(created []string, dirty map[string]bool) {
	for i := len(created) - 1; i >= 0; i-- {
		if t.rmdir(created[i]) != nil {
			return
		}
		delete(dirty, created[i])
	}
}

// removeEmptyFolders removes folder and then its parents while they are
// empty, stopping below base (the table's folder, which stays): a folder
// left empty by a delete would otherwise keep its name from being a key.
// rmdir only removes an empty folder, so a file added meanwhile keeps its
// folder, and a link to a folder (which os.Remove would unlink) stays.
// The parent of each removed folder is fsynced with the rest.
func (t *treeFS) removeEmptyFolders(folder, base string, dirty map[string]bool) {
	for folder != base && strings.HasPrefix(folder, base+string(filepath.Separator)) {
		if t.rmdir(folder) != nil {
			return
		}
		delete(dirty, folder)
		folder = filepath.Dir(folder)
		dirty[folder] = true
	}
}

// removeEmptyTree removes folder and the folders in it, deepest first, as
// long as they hold nothing else; a removed folder needs no fsync of its
// own any more. Rmdir, unlike os.Remove, never removes a file, whatever
// appeared meanwhile.
func (t *treeFS) removeEmptyTree(folder string, dirty map[string]bool) error {
	entries, err := t.readDir(folder)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed by another program: nothing of it is in the way
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			return &fs.PathError{Op: "rmdir", Path: folder, Err: syscall.ENOTEMPTY}
		}
		if err := t.removeEmptyTree(filepath.Join(folder, e.Name()), dirty); err != nil {
			return err
		}
	}
	if err := t.rmdir(folder); err != nil {
		return err
	}
	delete(dirty, folder)
	return nil
}

// mkdirs creates folder and any missing parents, returning the folders it
// created, shallowest first, so their parents can be fsynced: a new folder
// is only durable once the folder holding it is.
func (t *treeFS) mkdirs(folder string) ([]string, error) {
	var missing []string
	for p := folder; ; p = filepath.Dir(p) {
		info, err := t.stat(p)
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
		// A folder made meanwhile by someone else (ErrExist) is not ours
		// to sync or to remove.
		switch err := t.mkdir(missing[i]); {
		case err == nil:
			created = append(created, missing[i])
		case !errors.Is(err, fs.ErrExist):
			return created, fsError("Could not create the key's folder", err)
		}
	}
	return created, nil
}

// syncDir fsyncs a folder; a variable so a test can see which folders a
// write made durable (no other test can observe an fsync).
var syncDir = syncFolder

// syncFolder fsyncs folder. One another program removed (or replaced by
// something else) since kvd put a file in it needs none: what kvd put
// there went with it, and the removal is that program's to make durable.
// It opens without waiting, as treeFS.openDir does.
func syncFolder(folder string) error {
	f, err := os.OpenFile(folder, openDirFlags, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fsError("Could not sync the folder", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fsError("Could not sync the folder", err)
	}
	return nil
}
