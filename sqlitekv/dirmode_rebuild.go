package sqlitekv

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
)

// Rebuild rescans the table's folder (owner only): every file is synced,
// and so is every key the cache knows, so files added, changed or removed
// from outside are all picked up. A file whose name no write could create
// (control bytes, too long, a table endpoint's name) is skipped unless the
// cache already holds that key. Temp files a crash left behind are deleted
// (not those the open group has staged).
func (d *Dir) Rebuild(table string) error {
	if err := ValidateTable(table); err != nil {
		return err
	}
	keys := map[string]bool{}
	base := filepath.Join(d.root, table)
	staged := map[string]bool{}
	for _, c := range d.staged.changes {
		staged[c.tmp] = true
	}
	orphans, err := d.orphansInRoot()
	if err != nil {
		return err
	}
	err = d.tree.walkDir(base, func(p string, entry fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if entry.IsDir() && d.tree.holdsCache(p) {
			return filepath.SkipDir // another directory-mode database: its files are its own
		}
		if strings.HasPrefix(entry.Name(), reservedPrefix) {
			if entry.IsDir() {
				return filepath.SkipDir
			}
			if isTempFile(entry) {
				orphans = append(orphans, p)
			}
			return nil
		}
		if entry.Type().IsRegular() {
			rel, _ := filepath.Rel(base, p)
			keys[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		return fsError("Could not scan the folder", err)
	}
	for _, p := range orphans {
		if !staged[p] {
			d.tree.remove(p)
		}
	}
	for key := range keys {
		if !d.creatable(key) {
			delete(keys, key) // a file name no write can create; a key the cache holds is added back below
		}
	}
	t, err := d.cache.writer.table(table, true)
	if err != nil {
		return err
	}
	if err := t.eachKey(func(k string) error { keys[k] = true; return nil }); err != nil {
		return err
	}
	for key := range keys {
		if err := d.Sync(table, key); err != nil && CodeOf(err) != CodeInvalidParameters {
			return err
		}
	}
	return nil
}

// isTempFile tells a staged write's temp file (dirmode_stage.go) from the
// cache and anything else kvd's prefix marks.
func isTempFile(e fs.DirEntry) bool {
	return strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular()
}

// orphansInRoot lists the temp files in the directory itself (where a
// write to a table whose folder was new staged its bytes). A name prefix
// check, not a glob: the root's path may hold [ * or ?.
func (d *Dir) orphansInRoot() ([]string, error) {
	entries, err := d.tree.readDir(d.root)
	if err != nil {
		return nil, fsError("Could not scan the folder", err)
	}
	var orphans []string
	for _, e := range entries {
		if isTempFile(e) {
			orphans = append(orphans, filepath.Join(d.root, e.Name()))
		}
	}
	return orphans, nil
}
