package sqlitekv

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// Rescan is what a scan of a table's folder found for the owner to bring
// into the cache: keys whose file may differ from the cache, and temp
// files a crash may have left.
type Rescan struct {
	table   string
	keys    []string
	orphans []string
}

// Table is the table whose folder was scanned.
func (r Rescan) Table() string { return r.table }

// ScanChanges does a rescan's reading without the owner, so that writes
// need not wait for it: it walks the table's folder and compares each
// file, and each key the cache knows, with the cache on a read
// connection, keeping only the keys where the two disagree (a file whose
// key the cache never knew, unread: the owner reads it to import it).
// What agrees now agreed at some moment after the scan began, so a change
// made before it began is never left out: its key is either listed or
// was written (file and cache together) by the owner since.
func (d *Dir) ScanChanges(ctx context.Context, table string) (Rescan, error) {
	if err := ValidateTable(table); err != nil {
		return Rescan{}, err
	}
	files, orphans, err := d.scanFolder(table)
	if err != nil {
		return Rescan{}, err
	}
	known := map[string]bool{}
	err = d.cache.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return nil
		}
		return t.eachKey(func(k string) error { known[k] = true; return nil })
	})
	if err != nil {
		return Rescan{}, err
	}
	r := Rescan{table: table, orphans: orphans}
	for key := range files {
		if !known[key] {
			r.keys = append(r.keys, key)
		}
	}
	for key := range known {
		if err := ctx.Err(); err != nil {
			return Rescan{}, Cancelled(err)
		}
		if !d.inLine(ctx, table, key) {
			r.keys = append(r.keys, key)
		}
	}
	return r, nil
}

// inLine reports whether key's file and its cache row agree, so that
// syncing it would change nothing: the same bytes and not expired, or
// neither a value file nor a row (Own's stale flag says whether the cache
// holds a row).
func (d *Dir) inLine(ctx context.Context, table, key string) bool {
	_, stale, err := d.Own(ctx, table, key)
	switch CodeOf(err) {
	case "", CodeKeyNotFound, CodePayloadTooLarge:
		return !stale
	}
	return false // expired, or an error the owner's sync is to report
}

// More reports whether r lists keys still to bring in.
func (r Rescan) More() bool { return len(r.keys) > 0 }

// A turn of ApplyRescan brings in at most importKeysPerTurn keys, or
// stops once it has read importBytesPerTurn of their files: each key is a
// file read and a few rows written (about 0.1 ms for a small one), so a
// write queued behind a turn waits some 25 ms, not the seconds that
// 30,000 files, or forty of 10 MiB, dropped into the folder at once
// would take in one.
const (
	importKeysPerTurn  = 256
	importBytesPerTurn = 8 << 20
)

// ApplyRescan brings what a rescan listed into the cache (owner only),
// one turn's worth, and returns the rest for the next turn: the temp
// files it found are deleted unless the open group staged them, and each
// key is synced (Sync). A key synced in a later turn is as right as in
// one pass: Sync reads the file as it is then.
func (d *Dir) ApplyRescan(r Rescan) (rest Rescan, err error) {
	staged := map[string]bool{}
	for _, c := range d.staged.changes {
		staged[c.tmp] = true
	}
	for _, p := range r.orphans {
		if !staged[p] {
			d.tree.remove(p)
		}
	}
	imported := d.imported
	for i, key := range r.keys {
		if i == importKeysPerTurn || d.imported-imported >= importBytesPerTurn {
			return Rescan{table: r.table, keys: r.keys[i:]}, nil
		}
		if err := d.Sync(r.table, key); err != nil && CodeOf(err) != CodeInvalidParameters {
			return Rescan{}, err
		}
	}
	return Rescan{table: r.table}, nil
}

// scanFolder walks the table's folder: the keys whose files it holds
// (those a write could create) and the temp files there and in the
// directory itself.
func (d *Dir) scanFolder(table string) (map[string]bool, []string, error) {
	keys := map[string]bool{}
	base := filepath.Join(d.root, table)
	orphans, err := d.orphansInRoot()
	if err != nil {
		return nil, nil, err
	}
	err = d.tree.walkDir(base, func(p string, entry fs.DirEntry, err error) error {
		if err != nil {
			// A folder kvd may not read is passed over: the keys the cache
			// holds in it are each found unreadable, and left out (Sync).
			// So is one removed, or made something else, while the walk
			// went: it holds no file now.
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) {
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
			if key := filepath.ToSlash(rel); d.creatable(key) {
				keys[key] = true // a file name no write can create is left out; a key the cache holds comes back with the cache's keys
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fsError("Could not scan the folder", err)
	}
	return keys, orphans, nil
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
