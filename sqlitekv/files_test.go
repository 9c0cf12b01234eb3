package sqlitekv

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// openFiles counts the process's file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(fds)
}

// kvd divides its file descriptors by FilesPerDatabase (cmd/kvd): an open
// database that has written and has every reader busy at once holds just
// that many (in file mode one less: no folder), and none once closed.
func TestFilesPerDatabase_IsWhatAnOpenDatabaseHolds(t *testing.T) {
	for _, dirMode := range []bool{false, true} {
		for _, readers := range []int{1, 2, 5} {
			opts := Options{Readers: readers}
			dir := t.TempDir()
			before := openFiles(t)
			var s *Store
			var closeIt func() error
			if dirMode {
				d, err := OpenDir(dir, opts)
				must(t, err)
				s, closeIt = d.Cache(), d.Close
			} else {
				var err error
				s, err = Open(filepath.Join(dir, "app.db"), true, opts)
				must(t, err)
				closeIt = s.Close
			}
			w := s.Writer()
			must(t, w.Begin())
			if _, err := w.Put(PutRequest{Table: "kv_store", Key: "k", Value: []byte("v"), ContentType: "text/plain"}); err != nil {
				t.Fatal(err)
			}
			must(t, w.Commit())

			// Every reader busy at once: each read holds its connection
			// until all of them are in.
			var in, out sync.WaitGroup
			in.Add(readers)
			out.Add(readers)
			release := make(chan struct{})
			for range readers {
				go func() {
					defer out.Done()
					err := s.withReader(context.Background(), func(r *reader) error {
						_, err := r.table("kv_store") // a read opens the log and its index too
						in.Done()
						<-release
						return err
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			in.Wait()
			got := openFiles(t) - before
			close(release)
			out.Wait()
			want := FilesPerDatabase(opts)
			if !dirMode {
				want -= 2 // no folder held, nor its lock
			}
			if got != want {
				t.Errorf("directory mode %v, %d readers: the open database holds %d files, want %d", dirMode, readers, got, want)
			}
			must(t, closeIt())
			if left := openFiles(t) - before; left != 0 {
				t.Errorf("directory mode %v, %d readers: %d files still open after close", dirMode, readers, left)
			}
		}
	}
}

// A reader opened while the store closes (a request took a slot just as
// the store began to close) is closed again, statements and all: a
// connection with statements open is one SQLite refuses to close.
func TestFiles_AReaderOpenedAsTheStoreClosesHoldsNone(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "app.db"), true, Options{})
	must(t, err)
	must(t, s.Close())
	before := openFiles(t)
	for range 5 {
		if r, err := s.openReader(); err == nil {
			r.close()
			t.Fatal("a reader opened on a closed store")
		} else if CodeOf(err) != CodeOverloaded {
			t.Errorf("reader on a closed store: %v, want OVERLOADED", err)
		}
	}
	if after := openFiles(t); after != before {
		t.Errorf("file descriptors after 5 refused readers: %d, want %d", after, before)
	}
}
