package sqlitekv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Reads in directory mode: a key's file, and the cache's row beside it.

// readFile returns key's bytes, or KEY_NOT_FOUND when there is no file.
// The file is looked at before it is opened, and what was opened is
// looked at again: a FIFO or device swapped in between would otherwise
// be read (and an open of a FIFO blocks until a writer comes, holding the
// database's owner with it). Reading stops past the value limit, should
// the file grow meanwhile.
func (d *Dir) readFile(table, key string) ([]byte, fs.FileInfo, error) {
	data, info, err := d.readKeyFile(table, key)
	if errors.Is(err, fs.ErrPermission) {
		err = fileUnreadable(key, err)
	}
	return data, info, err
}

func (d *Dir) readKeyFile(table, key string) ([]byte, fs.FileInfo, error) {
	p, err := d.filePath(table, key)
	var l linked
	if errors.As(err, &l) {
		return nil, nil, Errorf(CodeKeyNotFound, "Key not found (it %s%s)", l, followsNoLinks)
	}
	if err != nil {
		return nil, nil, err
	}
	what := fmt.Sprintf("Could not read the file of key %q", key)
	info, err := d.tree.lstatKeyFile(p, what)
	if err == nil {
		err = d.valueFile(key, info)
	}
	if err != nil {
		return nil, nil, err
	}
	f, err := openKeyFile(d.tree, p)
	switch {
	case vanished(err): // removed since the look
		return nil, nil, Errorf(CodeKeyNotFound, "Key not found")
	case errors.Is(err, syscall.ELOOP): // a link swapped in since the look
		return nil, nil, Errorf(CodeKeyNotFound, "Key not found (it %s%s)", linkedPath, followsNoLinks)
	case err != nil:
		return nil, nil, fsError(what, err)
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return nil, nil, fsError(what, err)
	}
	if err := d.valueFile(key, info); err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, d.maxValue()+1))
	if err != nil {
		return nil, nil, fsError(what, err)
	}
	if int64(len(data)) > d.maxValue() { // it grew since
		return nil, nil, d.fileTooLarge(key)
	}
	return data, info, nil
}

// valueFile refuses what info describes unless it is a plain file that
// may hold a value: nothing there, a folder, a pipe, socket or device is
// no key (KEY_NOT_FOUND); a file over the value limit is too large.
func (d *Dir) valueFile(key string, info fs.FileInfo) error {
	switch {
	case info == nil:
		return Errorf(CodeKeyNotFound, "Key not found")
	case info.IsDir():
		return Errorf(CodeKeyNotFound, "Key not found (a folder, not a file)")
	case !info.Mode().IsRegular():
		return Errorf(CodeKeyNotFound, "Key not found (a %s, not a plain file)", fileKind(info.Mode()))
	case info.Size() > d.maxValue():
		return d.fileTooLarge(key)
	case d.isCache(info):
		return Errorf(CodeKeyNotFound, "Key not found (a link to the directory's cache, %s)", dirCacheFile)
	}
	return nil
}

// isCache reports whether info is the directory's cache under another
// name, a hard link someone made: served and imported, it gave away every
// table's values and history. Only a file with more than one name is
// looked at again.
func (d *Dir) isCache(info fs.FileInfo) bool {
	if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Nlink < 2 {
		return false
	}
	cache, err := d.tree.root.Lstat(dirCacheFile)
	return err == nil && os.SameFile(info, cache)
}

// openKeyFile opens a key's file to read it; a variable so that tests
// can change the file between the look and the open (export_test.go).
var openKeyFile = (*treeFS).openToRead

// A file dropped into the folder may be larger than any value kvd
// accepts. It is neither served nor imported: its bytes in one SQLite
// row would be a value no write could store, and a large enough one runs
// the cache out of memory, which rolls back the whole group it is in.
// The cache leaves such a key out (Sync); a plain PUT replaces the file,
// a DELETE removes it, and a write that builds on the value is refused.

func (d *Dir) maxValue() int64 { return d.cache.opts.MaxValueBytes }

func (d *Dir) fileTooLarge(key string) *Error {
	return Errorf(CodePayloadTooLarge, "Key %q's file is larger than %d bytes, the largest value kvd serves or imports; a PUT replaces it, a DELETE removes it", key, d.maxValue())
}

// A file kvd may not read (chmod 000, or in a folder it may not search)
// is not served: a read answers FILE_SYSTEM_ERROR naming the key. A
// rescan goes on past it, where it failed whole before: a key the cache
// holds keeps its row as it was (being unreadable says nothing of the
// bytes), one it never knew is left out as a file too large is, and so
// is one whose expired row the file may no longer hold (Sync).
func fileUnreadable(key string, err error) *Error {
	return &Error{Code: CodeFileSystemError, Cause: err, Message: fmt.Sprintf("Key %q's file cannot be read (permission denied): kvd neither serves nor imports it; a PUT replaces it, a DELETE removes it", key)}
}

// leftOut is the error of a key whose file is there but left out of the
// cache (too large, or unreadable), else nil; so is a key the open group
// changed (the cache holds that change).
func (d *Dir) leftOut(table, key string) error {
	if d.hasStaged(table, key) {
		return nil
	}
	p, err := d.filePath(table, key)
	if err != nil {
		return nil
	}
	info, err := d.tree.lstatKeyFile(p, "")
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fileUnreadable(key, err)
	case err != nil || info == nil || !info.Mode().IsRegular():
		return nil
	case info.Size() > d.maxValue():
		return d.fileTooLarge(key)
	}
	f, err := openKeyFile(d.tree, p)
	if errors.Is(err, fs.ErrPermission) {
		return fileUnreadable(key, err)
	}
	if err == nil {
		f.Close()
	}
	return nil
}

// Get reads key from its file. The cache supplies metadata (content type,
// times, TTL, version) only while it agrees with the file; stale reports a
// file changed behind kvd's back, for the owner to import. References are
// followed as in file mode, each hop read from its file. Time travel comes
// from the cache.
func (d *Dir) Get(ctx context.Context, req GetRequest) (e Entry, stale bool, err error) {
	if req.At != nil {
		e, err = d.cache.Get(ctx, req)
		return e, false, err
	}
	e, stale, err = d.Own(ctx, req.Table, req.Key)
	if err == nil && e.ContentType == RefContentType {
		e, err = followRefs(req.Key, e, func(key string) (Entry, error) {
			target, _, err := d.Own(ctx, req.Table, key)
			return target, err
		})
	}
	if err != nil {
		return Entry{}, stale, err
	}
	if req.Path.Given() {
		fragment, err := jsonGet(e.Value, req.Path)
		if err != nil {
			return Entry{}, stale, err
		}
		e.Value, e.ContentType = fragment, contentTypeJSON
	}
	return e, stale, nil
}

// Own reads key's own entry as batch reads show it, a reference not
// followed: the file's bytes, with the cache's metadata while the cache
// agrees with them (stale when it does not). A file edited by hand is
// never a reference. A file named like a table endpoint is not a key
// unless the cache holds it (no write could have created it). A key past
// its expiry is KEY_EXPIRED (the owner then removes it) only while its
// file still holds the expired value or is gone: a file changed behind
// kvd's back is a new value, which the old one's TTL does not reach.
func (d *Dir) Own(ctx context.Context, table, key string) (e Entry, stale bool, err error) {
	if werr := d.landings.read(ctx, func() bool {
		e, stale, err = d.own(ctx, table, key)
		return stale
	}); werr != nil {
		return Entry{}, false, werr
	}
	return e, stale, err
}

// own is one look at key's file and its cache row (Own).
func (d *Dir) own(ctx context.Context, table, key string) (Entry, bool, error) {
	var cached Entry
	cacheErr := d.cache.readTx(ctx, table, func(t *readStmts) error {
		if t == nil {
			return Errorf(CodeKeyNotFound, "Key not found")
		}
		var err error
		cached, err = t.stored(key)
		return err
	})
	if cacheErr != nil && CodeOf(cacheErr) != CodeKeyNotFound {
		return Entry{}, false, cacheErr
	}
	if cacheErr != nil && d.reserved(key) {
		return Entry{}, false, cacheErr
	}
	data, info, err := d.readFile(table, key)
	if cacheErr == nil && cached.expired(d.cache.Now()) && d.holdsExpired(table, key, cached, data, err) {
		return Entry{}, false, Errorf(CodeKeyExpired, "Key expired")
	}
	if err != nil {
		return Entry{}, cacheErr == nil, err
	}
	if cacheErr == nil && bytes.Equal(cached.Value, data) {
		return cached, false, nil
	}
	return Entry{Value: data, ContentType: relabel(cached, data), UpdatedAt: info.ModTime().UnixMilli()}, true, nil
}

// holdsExpired reports whether a key's file, read as data (or failing
// with readErr), is still what its expired row holds, or is gone: only
// then may the expiry remove it. A FIFO, socket or folder a person put in
// its place reads as no key too, but it is theirs, not the expired value.
func (d *Dir) holdsExpired(table, key string, row Entry, data []byte, readErr error) bool {
	if readErr != nil {
		return CodeOf(readErr) == CodeKeyNotFound && d.nothingAt(table, key)
	}
	return bytes.Equal(row.Value, data)
}

// nothingAt reports whether nothing at all is where key's file goes.
func (d *Dir) nothingAt(table, key string) bool {
	p, err := d.filePath(table, key)
	if err != nil {
		return CodeOf(err) == CodeKeyNotFound // its folder is gone
	}
	info, err := d.tree.lstatKeyFile(p, "Could not read the file")
	return err == nil && info == nil
}
