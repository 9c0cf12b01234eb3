package sqlitekv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mustOpenDir opens directory mode on a fresh folder.
func mustOpenDir(tb testing.TB) (*Dir, string) {
	tb.Helper()
	root := tb.TempDir()
	// The words kvd's HTTP API reserves (httpapi.ReservedKeys).
	d, err := OpenDir(root, Options{ReservedKeys: []string{"snapshot", "diff", "rollback"}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return d, root
}

// onDisk lists every entry under root except the cache, folders with a
// trailing slash.
func onDisk(tb testing.TB, root string) []string {
	tb.Helper()
	var got []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || p == root || strings.HasPrefix(e.Name(), dirCacheFile) {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if e.IsDir() {
			rel += "/"
		}
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	return got
}

func dirPut(tb testing.TB, d *Dir, key, value string) error {
	tb.Helper()
	_, err := d.Cache().Writer().Put(PutRequest{Table: "t", Key: key, Value: []byte(value), ContentType: "text/plain"})
	return err
}

func TestDir_NewFoldersAreFsyncedIntoTheirParents(t *testing.T) {
	d, root := mustOpenDir(t)
	var synced []string
	syncDir = func(folder string) error {
		rel, _ := filepath.Rel(root, folder)
		synced = append(synced, filepath.ToSlash(rel))
		return syncFolder(folder)
	}
	t.Cleanup(func() { syncDir = syncFolder })
	w := d.Cache().Writer()
	for _, step := range []struct {
		keys []string
		want []string // folders fsynced by the group's commit
	}{
		// t, t/a, t/a/b are new: each is durable once its parent is synced.
		{[]string{"a/b/c"}, []string{".", "t", "t/a", "t/a/b"}},
		// Existing folders: only the file's own folder, once per group.
		{[]string{"a/b/d", "a/b/e"}, []string{"t/a/b"}},
		{[]string{"a/x/y", "z"}, []string{"t", "t/a", "t/a/x"}},
	} {
		synced = nil
		if err := w.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, k := range step.keys {
			if err := dirPut(t, d, k, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(synced)
		if fmt.Sprint(synced) != fmt.Sprint(step.want) {
			t.Fatalf("writing %v fsynced folders %v, want %v", step.keys, synced, step.want)
		}
	}
}

func TestDir_FilesFollowTheGroup(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	// Outside a group a write is its own transaction: the file lands at once.
	if err := dirPut(t, d, "kept", "v1"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/kept]" {
		t.Fatalf("after a write outside a group: %s", got)
	}
	// Inside a group nothing is in place before COMMIT, and a rollback
	// leaves nothing behind, not even a temp file or a new folder.
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kept", "new/file"} {
		if err := dirPut(t, d, k, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Delete(DeleteRequest{Table: "t", Key: "kept"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "t", "kept")); string(data) != "v1" {
		t.Fatalf("kept before COMMIT: %q, want v1", data)
	}
	w.abandon()
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/kept]" {
		t.Fatalf("after a rollback: %s", got)
	}
	// A failed write in a group drops only its own files.
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := dirPut(t, d, "a", "1"); err != nil {
		t.Fatal(err)
	}
	_, err := w.BatchSet(BatchSetRequest{Table: "t", Items: []BatchItem{{Key: "b", Value: []byte("2")}, {Key: "a/c", Value: []byte("3")}}})
	if CodeOf(err) != CodeInvalidParameters {
		t.Fatalf("batch putting a folder where a's file is: got %v, want INVALID_PARAMETERS", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(onDisk(t, root)); got != "[t/ t/a t/kept]" {
		t.Fatalf("after a group with a failed batch: %s", got)
	}
}

// A key whose file became a SQLite database (replaced by hand) is one
// directory mode will not remove: the sweep leaves it and expires the rest.
func TestDir_SweepGoesOnPastAKeyItMayNotRemove(t *testing.T) {
	root := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	d, err := OpenDir(root, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w := d.Cache().Writer()
	for key, ttl := range map[string]time.Duration{"x": time.Second, "y": 2 * time.Second} {
		if _, err := w.Put(PutRequest{Table: "t", Key: key, Value: []byte("v"), ContentType: "text/plain", TTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "t", "x"), []byte(sqliteHeader+"a database"), 0o640); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Second)
	res, err := w.Sweep()
	if err != nil || res.Expired != 1 {
		t.Fatalf("sweep: %+v, %v; want y expired", res, err)
	}
	if got := onDisk(t, root); !slices.Equal(got, []string{"t/", "t/x"}) {
		t.Fatalf("on disk after the sweep: %v, want the database file only", got)
	}
}

// A FIFO where a key's file would be is no SQLite database, and looking
// at it must not wait for a writer.
func TestDir_AFIFOInTheWayDoesNotHang(t *testing.T) {
	d, root := mustOpenDir(t)
	if err := dirPut(t, d, "seed", "1"); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "t", "p")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dirPut(t, d, "p", "new") }()
	select {
	case err := <-done:
		t.Logf("put over a FIFO: %v", err)
	case <-time.After(5 * time.Second):
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close() // let the blocked open return
		}
		<-done
		t.Fatal("a put over a FIFO blocked")
	}
}

// A folder in a table that is itself a directory-mode database (it holds
// a cache) belongs to that database: a rescan neither imports its files
// nor deletes its temp files, which its own open group may be about to
// rename into place.
func TestDir_RebuildLeavesANestedDatabaseAlone(t *testing.T) {
	d, root := mustOpenDir(t)
	inner := filepath.Join(root, "t", "inner")
	if err := os.MkdirAll(inner, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{dirCacheFile, "x", tmpPrefix + "staged"} {
		if err := os.WriteFile(filepath.Join(inner, name), []byte("1"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := dirPut(t, d, "own", "1"); err != nil {
		t.Fatal(err)
	}
	if err := rescan(t, d, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(inner, tmpPrefix+"staged")); err != nil {
		t.Fatalf("the nested database's temp file: %v", err)
	}
	if _, err := d.Cache().Get(t.Context(), GetRequest{Table: "t", Key: "inner/x"}); CodeOf(err) != CodeKeyNotFound {
		t.Fatalf("inner/x after the rescan: %v, want KEY_NOT_FOUND", err)
	}
}

// Opening a database syncs its folder, where the driver creates the WAL
// (and a new database file) without syncing it.
func TestOpen_SyncsTheDatabasesFolder(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	syncDir = func(folder string) error { synced = append(synced, folder); return syncFolder(folder) }
	t.Cleanup(func() { syncDir = syncFolder })
	s, err := Open(filepath.Join(dir, "app.db"), true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !slices.Contains(synced, dir) {
		t.Fatalf("synced %v, want %s", synced, dir)
	}
}

// A scan without the owner lists only the keys whose file and cache
// disagree, and the temp files a crash left, reading no file whose key
// the cache never knew (the owner reads it to import it); once the owner
// applies it, the two agree everywhere.
func TestDir_ScanChangesListsOnlyWhatDiffers(t *testing.T) {
	d, root := mustOpenDir(t)
	for _, key := range []string{"a", "b", "c", "sub/d"} {
		if err := dirPut(t, d, key, key); err != nil {
			t.Fatal(err)
		}
	}
	folder := filepath.Join(root, "t")
	for name, data := range map[string]string{"b": "edited", "e": "added", tmpPrefix + "left": "crash"} {
		if err := os.WriteFile(filepath.Join(folder, name), []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(folder, "c")); err != nil {
		t.Fatal(err)
	}
	var opened []string
	realOpen := openKeyFile
	openKeyFile = func(t *treeFS, p string) (*os.File, error) {
		opened = append(opened, filepath.Base(p))
		return realOpen(t, p)
	}
	found, err := d.ScanChanges(t.Context(), "t")
	openKeyFile = realOpen
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(opened, "e") {
		t.Errorf("the scan read e, a file the cache never knew: %v", opened)
	}
	slices.Sort(found.keys)
	if fmt.Sprint(found.keys) != "[b c e]" || fmt.Sprint(found.orphans) != fmt.Sprint([]string{filepath.Join(folder, tmpPrefix+"left")}) {
		t.Fatalf("the scan found keys %v and temp files %v, want [b c e] and the one left", found.keys, found.orphans)
	}
	if rest, err := d.ApplyRescan(found); err != nil || rest.More() {
		t.Fatalf("the rescan left %v (%v)", rest.keys, err)
	}
	keys, err := d.Cache().List(t.Context(), ListRequest{Table: "t", Limit: 10})
	if err != nil || fmt.Sprint(keys) != "[a b e sub/d]" {
		t.Fatalf("listed %v (%v) after the rescan, want [a b e sub/d]", keys, err)
	}
	if got := onDisk(t, root); fmt.Sprint(got) != "[t/ t/a t/b t/e t/sub/ t/sub/d]" {
		t.Fatalf("on disk after the rescan: %v", got)
	}
	if again, err := d.ScanChanges(t.Context(), "t"); err != nil || len(again.keys)+len(again.orphans) != 0 {
		t.Fatalf("a second scan found %+v (%v), want nothing", again, err)
	}
}

// rescan does what actors.DB.Rebuild does, as the owner.
func rescan(t *testing.T, d *Dir, table string) error {
	found, err := d.ScanChanges(t.Context(), table)
	for err == nil && found.More() {
		found, err = d.ApplyRescan(found)
	}
	return err
}

// A rescan's turn brings in at most importKeysPerTurn keys, and stops
// once it has read importBytesPerTurn of their files; the next turns
// bring in the rest.
func TestDir_ARescanTurnIsBoundedInKeysAndBytes(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(root, Options{MaxValueBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.MkdirAll(filepath.Join(root, "t"), 0o750); err != nil {
		t.Fatal(err)
	}
	write := func(name string, size int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "t", name), bytes.Repeat([]byte("x"), size), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for i := range importKeysPerTurn + 10 {
		write(fmt.Sprintf("small%03d", i), 10)
	}
	found, err := d.ScanChanges(t.Context(), "t")
	if err != nil {
		t.Fatal(err)
	}
	rest, err := d.ApplyRescan(found)
	if err != nil || len(rest.keys) != 10 {
		t.Fatalf("after a turn over %d small files: %d left (%v), want 10", importKeysPerTurn+10, len(rest.keys), err)
	}
	if rest, err = d.ApplyRescan(rest); err != nil || rest.More() {
		t.Fatalf("after the second turn: %d left (%v), want none", len(rest.keys), err)
	}

	for i := range 5 {
		write(fmt.Sprintf("large%d", i), 3<<20)
	}
	if found, err = d.ScanChanges(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	for turn, left := range []int{2, 0} { // 9 MiB read in the first turn: past 8
		if found, err = d.ApplyRescan(found); err != nil || len(found.keys) != left {
			t.Fatalf("turn %d over five files of 3 MiB: %d left (%v), want %d", turn+1, len(found.keys), err, left)
		}
	}
}

// A directory moved while open, a link left at its path: the store asks
// to be reopened rather than take its keys for links (not as a replaced
// file, whose log it would remove on closing), and the store opened where
// the folder is now has every write.
func TestDir_MovedUnderALinkIsReopenedNotReplaced(t *testing.T) {
	parent := t.TempDir()
	root, moved := filepath.Join(parent, "notes"), filepath.Join(parent, "notes2")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustDirPut(t, d, "k", "1")
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes2", root); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Own(t.Context(), "t", "k"); err != errFolderMoved || !d.Cache().MustReopen() {
		t.Fatalf("a read after the move: %v, must reopen %v; want %v and true", err, d.Cache().MustReopen(), errFolderMoved)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := OpenDir(moved, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	mustDirPut(t, again, "k2", "2")
	for key, want := range map[string]string{"k": "1", "k2": "2"} {
		if e, stale, err := again.Own(t.Context(), "t", key); err != nil || stale || string(e.Value) != want {
			t.Fatalf("%s: %q, stale %v (%v), want %s", key, e.Value, stale, err, want)
		}
	}
}

// Two writers of one folder are refused: the second open fails while the
// first is open, even after the first's writer connection was renewed
// (after a large value), and succeeds once it is closed.
func TestDir_OneWriterAFolder(t *testing.T) {
	d, root := mustOpenDir(t)
	if _, err := OpenDir(root, Options{}); err != errFolderServed {
		t.Fatalf("a second open: %v, want %v", err, errFolderServed)
	}
	renewed := ConnectionsRenewed()
	mustDirPut(t, d, "large", strings.Repeat("x", 2<<20))
	if d.Cache().Writer().RenewIfGrown(); ConnectionsRenewed() != renewed+1 {
		t.Fatal("the writer was not renewed after a value of 2 MiB")
	}
	if _, err := OpenDir(root, Options{}); err != errFolderServed {
		t.Fatalf("a second open after the writer's renewal: %v, want %v", err, errFolderServed)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenDir(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}
