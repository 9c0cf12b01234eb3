package sqlitekv

import (
	"os"

	"github.com/ncruces/go-sqlite3/vfs"
	"golang.org/x/sys/unix"
)

// tempFile is a file SQLite opened without a name: a sort's spill, a
// temporary table's pages. A full temporary folder fails its writes as
// a full disk (SQLITE_FULL), which the OS VFS reports as an I/O error
// (fullDisk): the upgrade's sorts answered 500 "Disk I/O error" where
// freeing space mends it.
type tempFile struct{ vfs.File }

func (f tempFile) Unwrap() vfs.File { return f.File }

func (f tempFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, fullDisk(err)
}

func (f tempFile) Truncate(size int64) error { return fullDisk(f.File.Truncate(size)) }

// tempFolder is where SQLite's temporary files go: the driver's choice
// (its osCreateTemp).
func tempFolder() string {
	if dir := os.Getenv("SQLITE_TMPDIR"); dir != "" {
		return dir
	}
	return os.TempDir()
}

// onOneDisk reports whether two paths are on the same file system, and
// so share its free space.
func onOneDisk(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}
