package sqlitekv

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// failingWrites is a WAL file whose writes fail with errno, wrapped the
// way *os.File wraps it: a full disk without filling one.
type failingWrites struct {
	vfs.File
	errno syscall.Errno
}

func (f failingWrites) WriteAt([]byte, int64) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "test.db-wal", Err: f.errno}
}

// writersWAL is the writer's buffered WAL file (opened by a first write).
func writersWAL(t *testing.T, s *Store) *bufferedWAL {
	t.Helper()
	wal, err := s.Writer().conn.FileControl("main", sqlite3.FCNTL_JOURNAL_POINTER)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := wal.(*bufferedWAL)
	if !ok {
		t.Fatalf("the writer's WAL is a %T, want *bufferedWAL", wal)
	}
	return b
}

// A full disk (ENOSPC) or an exhausted quota (EDQUOT) under the WAL fails
// the group's COMMIT as STORAGE_FULL, whichever SQLite call meets it;
// any other I/O error stays a database error. Nothing is lost, and writes
// resume once the disk takes them again.
func TestWriter_AFullDiskIsStorageFullAndOnlyAFullDisk(t *testing.T) {
	for _, c := range []struct {
		name      string
		errno     syscall.Errno
		code      Code
		message   string
		syncFails bool // the fsync fails, not the write
	}{
		{"write ENOSPC", syscall.ENOSPC, CodeStorageFull, "Disk is full: the write was not saved", false},
		{"write EDQUOT", syscall.EDQUOT, CodeStorageFull, "Disk is full: the write was not saved", false},
		{"fsync ENOSPC", syscall.ENOSPC, CodeStorageFull, "Disk is full: the write was not saved", true},
		{"write EIO", syscall.EIO, CodeDatabaseError, "Disk I/O error", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := mustOpenStore(t, Options{})
			put(t, s, "kept", "v")
			wal := writersWAL(t, s)
			disk := wal.File
			if c.syncFails {
				wal.File = failingSyncs{disk, c.errno}
			} else {
				wal.File = failingWrites{disk, c.errno}
			}
			w := s.Writer()
			must(t, w.Begin())
			if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "lost", Value: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			err := w.Commit()
			var e *Error
			if !errors.As(err, &e) || e.Code != c.code || e.Message != c.message {
				t.Fatalf("commit with %v under the WAL: got %v, want %s %q", c.errno, err, c.code, c.message)
			}
			wal.File = disk
			put(t, s, "after", "w")
			for key, want := range map[string]string{"kept": "v", "after": "w"} {
				got, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: key})
				if err != nil || string(got.Value) != want {
					t.Errorf("%s: got %q (%v), want %q", key, got.Value, err, want)
				}
			}
			if _, err := s.Get(context.Background(), GetRequest{Table: DefaultTable, Key: "lost"}); CodeOf(err) != CodeKeyNotFound {
				t.Errorf("the failed write: got %v, want KEY_NOT_FOUND", err)
			}
		})
	}
}

// failingSyncs is a WAL file whose fsyncs fail with errno (as some
// filesystems report a full disk only then).
type failingSyncs struct {
	vfs.File
	errno syscall.Errno
}

func (f failingSyncs) Sync(vfs.SyncFlag) error {
	return &fs.PathError{Op: "sync", Path: "test.db-wal", Err: f.errno}
}

// Directory mode's file writes tell a full disk from other failures the
// same way, and a read-only filesystem too (before the commit: a
// refusal).
func TestFsError_AFullDiskIsStorageFullAndOnlyAFullDisk(t *testing.T) {
	for errno, want := range map[syscall.Errno]struct{ before, after Code }{
		syscall.ENOSPC: {CodeStorageFull, CodeStorageFull},
		syscall.EDQUOT: {CodeStorageFull, CodeStorageFull},
		syscall.EIO:    {CodeFileSystemError, CodeFileSystemError},
		syscall.EROFS:  {CodeReadOnly, CodeFileSystemError}, // after the commit, the cache holds the write: no refusal
	} {
		err := fsError("Could not write the file", &fs.PathError{Op: "write", Path: "/x/.kvd-tmp-1", Err: errno})
		if err.Code != want.before || err.Message != "Could not write the file: "+errno.Error() {
			t.Errorf("%v: got %s %q, want %s naming the errno, no path", errno, err.Code, err.Message, want.before)
		}
		if got := appliedFailure("k", err).Code; got != want.after {
			t.Errorf("%v after the commit: got %s, want %s", errno, got, want.after)
		}
	}
}

// A group whose fsync failed was answered "not saved", but SQLite leaves
// its frames, commit mark included, past the log's end. A crash then (or
// a reopen after a close whose checkpoint failed) must not read them
// back in: a retried incr would count twice, a refused DELETE be done.
func TestWriter_AGroupWhoseFsyncFailedIsNotRecoveredAfterACrash(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
		t.Run(errno.Error(), func(t *testing.T) {
			s, _ := mustOpenStore(t, Options{})
			put(t, s, "kept", "v")
			put(t, s, "gone", "keep me")
			wal := writersWAL(t, s)
			disk := wal.File
			wal.File = failingSyncs{disk, errno}
			w := s.Writer()
			must(t, w.Begin())
			if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "kept", Value: []byte("refused")}); err != nil {
				t.Fatal(err)
			}
			if err := w.Delete(DeleteRequest{Table: DefaultTable, Key: "gone"}); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(); err == nil {
				t.Fatal("a commit whose fsync failed succeeded")
			}
			wal.File = disk

			// The files as a crash leaves them: the log as written.
			crashed := filepath.Join(t.TempDir(), "crashed.db")
			for _, suffix := range []string{"", "-wal"} {
				data, err := os.ReadFile(s.path + suffix)
				if err != nil {
					t.Fatal(err)
				}
				must(t, os.WriteFile(crashed+suffix, data, 0o600))
			}
			after, err := Open(crashed, false, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer after.Close()
			for key, want := range map[string]string{"kept": "v", "gone": "keep me"} {
				got, err := after.Get(context.Background(), GetRequest{Table: DefaultTable, Key: key})
				if err != nil || string(got.Value) != want {
					t.Errorf("%s after the crash: got %q (%v), want %q, as before the refused group", key, got.Value, err, want)
				}
			}
		})
	}
}
