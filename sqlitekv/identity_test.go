package sqlitekv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An open that fails after SQLite created the file (here: the log's name
// is too long for the filesystem) removes it: an empty file left behind
// would fail every later open of that name.
func TestOpen_FailedCreateLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("n", 250)+".db")
	if s, err := Open(path, true, Options{}); err == nil {
		s.Close()
		t.Fatal("open of a database whose log name is too long: got no error")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left by the failed open: %d, first %q", len(left), left[0].Name())
	}
}

// An open that fails on an empty file that was there before leaves it:
// only what the open created is removed.
func TestOpen_FailedOpenKeepsAFileItDidNotCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("n", 250)+".db")
	must(t, os.WriteFile(path, nil, 0o600))
	if s, err := Open(path, true, Options{}); err == nil {
		s.Close()
		t.Fatal("open of a database whose log name is too long: got no error")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file that was there before: %v", err)
	}
}

// A commit to a file that was deleted meanwhile fails, and so does every
// later group: its writes would be lost with the file.
func TestWriter_CommitToADeletedFileFails(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "gone.db"), true, Options{})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	put(t, s, "before", "1")
	w := s.Writer()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		must(t, os.Remove(s.path+suffix))
	}
	must(t, w.Begin())
	if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "lost", Value: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != errReplaced {
		t.Fatalf("commit to a deleted file: got %v, want %v", err, errReplaced)
	}
	if err := w.Begin(); err != errReplaced {
		t.Fatalf("next group: got %v, want %v", err, errReplaced)
	}
	if !s.MustReopen() {
		t.Fatal("store not marked replaced")
	}
}

// BenchmarkFileIdentity_CheckWriter is what each group commit adds, twice,
// to make sure it goes to the file the path names: a stat of each file's
// inode (lookUp).
func BenchmarkFileIdentity_CheckWriter(b *testing.B) {
	s, _ := mustOpenStore(b, Options{})
	put(b, s, "k", "v")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.id.checkWriter(s.writer.conn, true); err != nil {
			b.Fatal(err)
		}
	}
}

// A symlink where the database file should be, swapped in after the
// resolver looked, fails the open as one to retry (the retry resolves the
// path again), and creates nothing where it points.
func TestOpen_SymlinkSwappedInAtThePathIsRefusedForARetry(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "app.db")
	must(t, os.Symlink(filepath.Join(outside, "created.db"), path))
	if s, err := Open(path, true, Options{}); err != errReplaced {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open through a link: got %v, want %v", err, errReplaced)
	}
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Fatalf("files created where the link points: %d, first %q", len(left), left[0].Name())
	}
}

// A symlink to an existing database, swapped in at the path after the
// resolver looked, is not used: the writer's file must be the one the
// path names, not the one the link leads to.
func TestOpen_SymlinkToADatabaseSwappedInIsNotUsed(t *testing.T) {
	dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "outside.db")
	o, err := Open(outside, true, Options{})
	must(t, err)
	put(t, o, "k", "outside")
	must(t, o.Close())
	path := filepath.Join(dir, "app.db")
	must(t, os.Symlink(outside, path))
	if s, err := Open(path, true, Options{}); err != errReplaced {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open through a link: got %v, want %v", err, errReplaced)
	}
}
