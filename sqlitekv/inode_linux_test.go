package sqlitekv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The identity check after each commit must leave the WAL's times unseen:
// seen, they make the WAL's next write dirty its inode, and on ext4 every
// fsync of the WAL then waits for one more disk write (inode_linux.go).
func TestLookUp_LeavesTheNextWriteItsCoarseTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db-wal")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}

	// finelyTimed counts, of 20 writes each made just after look, those
	// that took a time of their own: not earlier than the look. Each round
	// begins with a write after a stat, which takes a fine time and clears
	// what the stat marked, so only look decides.
	finelyTimed := func(look func() bool) (n int) {
		for range 20 {
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("frame"), 0); err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			if !look() {
				t.Fatal("the path no longer names the file")
			}
			if _, err := f.WriteAt([]byte("frame"), 0); err != nil {
				t.Fatal(err)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Before(before) {
				n++
			}
		}
		return n
	}
	if n := finelyTimed(func() bool { now, ok := lstatInode(path); return ok && now.is(fi) }); n < 20 {
		t.Skipf("after an lstat, %d of 20 writes took a fine time: this kernel or file system (%s) does not time writes by whether their times were seen", n, path)
	}
	// A clock tick between the look and its write gives that write a new
	// time too, so a few may; most must not.
	if n := finelyTimed(func() bool { now, ok := lookUp(path); return ok && now.is(fi) }); n > 10 {
		t.Errorf("after lookUp, %d of 20 writes took a fine time, as after an lstat: it marks the file's times seen", n)
	}
}
