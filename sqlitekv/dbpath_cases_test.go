package sqlitekv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// resolverFixture is a data dir and an allow dir with the traps an
// attacker would use: links out, a text file posing as a database.
func resolverFixture(tb testing.TB) (r *Resolver, data, extra, outside string) {
	tb.Helper()
	data, extra, outside = tb.TempDir(), tb.TempDir(), tb.TempDir()
	os.WriteFile(filepath.Join(data, "app.db"), []byte(sqliteHeader+"rest"), 0o600)
	os.WriteFile(filepath.Join(data, "text.db"), []byte("hello"), 0o600)
	os.WriteFile(filepath.Join(data, "empty.db"), nil, 0o600)
	os.Mkdir(filepath.Join(data, "dir.db"), 0o700)
	os.Symlink(filepath.Join(outside, "x.db"), filepath.Join(data, "out.db"))
	os.Symlink(outside, filepath.Join(data, "outdir"))
	os.Symlink(filepath.Join(data, "app.db"), filepath.Join(extra, "alias.db"))
	r, err := NewResolver(data, []string{extra}, false)
	if err != nil {
		tb.Fatal(err)
	}
	return r, data, extra, outside
}

func TestResolveCases(t *testing.T) {
	r, data, extra, outside := resolverFixture(t)
	real := func(p string) string { s, _ := filepath.EvalSymlinks(p); return s }
	appPath := filepath.Join(real(data), "app.db")
	for _, name := range []string{"app", "app.db", "./app", appPath, filepath.Join(extra, "alias.db")} {
		loc, err := r.Resolve(name)
		if err != nil || loc.Path != appPath || loc.Kind != PathFile {
			t.Errorf("Resolve(%q): got %+v, %v; want %s", name, loc, err, appPath)
		}
	}
	for name, kind := range map[string]PathKind{"new": PathMissing, "empty": PathFile, "dir": PathDir, "x.sqlite": PathMissing, filepath.Join(extra, "n.db"): PathMissing} {
		if loc, err := r.Resolve(name); err != nil || loc.Kind != kind {
			t.Errorf("Resolve(%q): got %+v, %v; want kind %d", name, loc, err, kind)
		}
	}
	if loc, _ := r.Resolve("x.sqlite"); filepath.Base(loc.Path) != "x.sqlite" {
		t.Errorf("an extension is kept: got %s", loc.Path)
	}
	if _, err := r.Resolve("text"); CodeOf(err) != CodeInvalidSQLiteHeader {
		t.Errorf("text file: got %v", err)
	}
	for _, bad := range []string{
		"", ":memory:", "a/b", `a\b`, "../x", "..", ".", "./", "a\x00b", "file:app.db", "/etc/passwd",
		filepath.Join(outside, "x.db"), "out", "out.db", filepath.Join(data, "outdir", "x.db"), "outdir/x",
		data + "/../x.db", data + "2/x.db", ".kvd-cache.db",
		"app.db-wal", "app.db-shm", "app.db-journal", filepath.Join(data, "app.db-wal"),
		"a\nb", "\xff\xfe", " ", "tab\there",
	} {
		if _, err := r.Resolve(bad); CodeOf(err) != CodeInvalidDBPath {
			t.Errorf("Resolve(%q): got %v, want INVALID_DB_PATH", bad, err)
		}
	}
	if _, err := r.Resolve(filepath.Join(data, "nodir", "x.db")); CodeOf(err) != CodeDatabaseNotFound {
		t.Errorf("missing parent: got %v, want DATABASE_NOT_FOUND", err)
	}
}

// FuzzResolveConfinement: whatever the name, resolution never panics, a
// rejection is a 4xx code, an accepted path lies inside a root, and
// nothing is created on disk.
func FuzzResolveConfinement(f *testing.F) {
	for _, s := range []string{"app", "../x", "out.db", "outdir/x", "/etc/passwd", "a\x00", "./app", ":memory:", "%2e%2e", "dir", "...", "a/./b"} {
		f.Add(s)
	}
	r, data, extra, outside := resolverFixture(f)
	snapshot := func() []string {
		var names []string
		for _, root := range []string{data, extra, outside} {
			filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { names = append(names, p); return nil })
		}
		return names
	}
	before := snapshot()
	f.Fuzz(func(t *testing.T, name string) {
		loc, err := r.Resolve(name)
		if err != nil {
			switch CodeOf(err) {
			case CodeInvalidDBPath, CodeInvalidSQLiteHeader, CodeDatabaseNotFound:
			default:
				t.Fatalf("Resolve(%q): unexpected error %v", name, err)
			}
			return
		}
		if !r.inside(loc.Path) || strings.Contains(loc.Path, "\x00") {
			t.Fatalf("Resolve(%q) = %s: outside every root", name, loc.Path)
		}
		if after := snapshot(); !slices.Equal(before, after) {
			t.Fatalf("Resolve(%q) changed the disk", name)
		}
	})
}

// A database path kvd fails to open or read is the client's 400 only
// when it names nothing a database could be; a want of file descriptors
// is a 503 to retry; any other failure on kvd's side is a 500 saying what
// happened, without the path.
func TestUnreadable_OnlyTheClientsMistakeIs400(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		code  Code
		says  string
	}{
		{syscall.ENXIO, CodeInvalidDBPath, ""},   // a socket
		{syscall.ENOTDIR, CodeInvalidDBPath, ""}, // a name through a file
		{syscall.ENOENT, CodeInvalidDBPath, ""},  // gone since the resolver looked
		{syscall.EMFILE, CodeOverloaded, "too many open files; retry"},
		{syscall.ENFILE, CodeOverloaded, "too many open files; retry"},
		{syscall.EACCES, CodeDatabaseError, "permission denied"},
		{syscall.EIO, CodeDatabaseError, "input/output error"},
	} {
		err := unreadable("Database file is not readable", &os.PathError{Op: "open", Path: "/srv/secret/app.db", Err: c.errno})
		if err.Code != c.code || !strings.HasSuffix(err.Message, c.says) || strings.Contains(err.Message, "secret") {
			t.Errorf("%v: got %s %q, want %s saying %q without the path", c.errno, err.Code, err.Message, c.code, c.says)
		}
	}
}
