package sqlitekv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A link out that appears as a key's folder after the write was staged
// (and checked) and before its group commits: the folder exists then, so
// nothing is created and no check runs again, and the rename would follow
// the link. Done through the directory's root, the rename fails instead;
// nothing lands outside.
func TestDir_LinkSwappedInAfterTheCheckLeadsNowhereOutside(t *testing.T) {
	d, root := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "ok", "v1") // the table's folder exists
	outside := t.TempDir()
	mustBegin(t, w)
	mustDirPut(t, d, "a/k", "secret?")
	if err := os.Symlink(outside, filepath.Join(root, "t", "a")); err != nil {
		t.Fatal(err)
	}
	err := w.Commit()
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("entries made outside the directory: %v", entries)
	}
	if CodeOf(err) != CodeFileSystemError {
		t.Fatalf("commit: got %v, want FILE_SYSTEM_ERROR for a/k", err)
	}
	if got := tempFiles(t, root); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
}

// A folder another program swaps for a FIFO, or for a file, between a
// walk's listing of it and its opening is no folder: the walk says so
// (ENOTDIR, which a rescan passes over) without waiting. Opened as a
// plain file, the FIFO held the walk until a writer came: for good, and
// every rescan after it, or the database's writer (readDir, rmdir and
// syncFolder, on the way to putting a key's file where a folder was).
func TestTreeFS_AFolderSwappedForAFIFOOrAFileIsNoFolder(t *testing.T) {
	for _, swapIn := range []string{"fifo", "file"} {
		t.Run(swapIn, func(t *testing.T) {
			root := t.TempDir()
			folder := filepath.Join(root, "t", "d0")
			must(t, os.MkdirAll(filepath.Join(folder, "sub"), 0o750))
			tree, err := openTree(root)
			must(t, err)
			defer tree.close()
			swap := func() {
				must(t, os.Rename(folder, folder+"-moved"))
				if swapIn == "fifo" {
					must(t, syscall.Mkfifo(folder, 0o600))
					t.Cleanup(func() { releaseFIFO(folder) })
				} else {
					must(t, os.WriteFile(folder, nil, 0o600))
				}
			}
			var failed []string
			walked := make(chan error, 1)
			go func() {
				walked <- tree.walkDir(filepath.Join(root, "t"), func(p string, e fs.DirEntry, err error) error {
					switch {
					case err != nil:
						failed = append(failed, p)
						if !errors.Is(err, syscall.ENOTDIR) {
							return err
						}
					case p == folder:
						swap() // listed as a folder, opened next
					}
					return nil
				})
			}()
			select {
			case err := <-walked:
				if err != nil || len(failed) != 1 || failed[0] != folder {
					t.Fatalf("walk: %v, failed at %v; want ENOTDIR at %s", err, failed, folder)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the walk still waits 5 s on what took the folder's place")
			}
			for name, c := range map[string]struct {
				op   func() error
				want error // nil: syncFolder has nothing to sync there
			}{
				"readDir":    {func() error { _, err := tree.readDir(folder); return err }, syscall.ENOTDIR},
				"rmdir":      {func() error { return tree.rmdir(filepath.Join(folder, "sub")) }, syscall.ENOTDIR},
				"syncFolder": {func() error { return syncFolder(folder) }, nil},
			} {
				done := make(chan error, 1)
				go func() { done <- c.op() }()
				select {
				case err := <-done:
					if !errors.Is(err, c.want) {
						t.Errorf("%s: %v, want %v", name, err, c.want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s still waits 5 s", name)
				}
			}
		})
	}
}

// releaseFIFO lets go whatever waits to read the FIFO at p.
func releaseFIFO(p string) {
	if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}

// A cache another program removes while directory mode opens it (after
// SQLite made or found it, before the folder's lock) is a 503, to retry,
// as once the database is open: not a 500.
func TestDir_ACacheRemovedWhileItOpensIsToRetry(t *testing.T) {
	root := t.TempDir()
	tree, err := openTree(root)
	must(t, err)
	defer tree.close()
	_, lockErr := lockFolder(filepath.Join(root, dirCacheFile))
	if err := cacheRemovedMeanwhile(tree, lockErr); CodeOf(err) != CodeOverloaded {
		t.Fatalf("the lock of a cache not there: %v, want OVERLOADED", err)
	}
	must(t, os.WriteFile(filepath.Join(root, dirCacheFile), nil, 0o600))
	if err := cacheRemovedMeanwhile(tree, lockErr); err != lockErr {
		t.Fatalf("with the cache there: %v, want the error as it was", err)
	}
	other := fsError("Could not lock the directory's cache", syscall.EACCES)
	must(t, os.Remove(filepath.Join(root, dirCacheFile)))
	if err := cacheRemovedMeanwhile(tree, other); err != other {
		t.Fatalf("a failure that found the file: %v, want it as it was", err)
	}
}
