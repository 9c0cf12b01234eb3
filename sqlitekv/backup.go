package sqlitekv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
	"golang.org/x/sys/unix"
)

// Backup makes a consistent copy of the database and returns it open for
// reading, already unlinked: nothing is left behind however the caller's
// use of it ends (a crash during the copy leaves a .kvd-backup-*.tmp,
// and maybe its -journal).
// The copy is made beside the database: the same filesystem, inside the
// roots. VACUUM INTO runs on a read-only connection inside one read
// transaction: writes go on meanwhile, and the copy is the snapshot at
// its start, compacted and without a WAL.
func (s *Store) Backup(ctx context.Context) (*os.File, error) {
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, ".kvd-backup-*.tmp")
	if err != nil {
		return nil, backupError("Could not create the backup file", err, storageFull(err))
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // once reopened below, the handle still reads it
	// A copy larger than its cache spills through a rollback journal,
	// which a failed VACUUM INTO leaves behind.
	defer os.Remove(tmp.Name() + "-journal")
	err = s.withReader(ctx, func(r *reader) error {
		r.endSnapshot() // VACUUM takes its own, and refuses to run inside a transaction

		size := r.databaseBytes() // what the copy takes at most
		if !roomForCopy(dir, size) {
			return &Error{Code: CodeStorageFull, Message: fmt.Sprintf(
				"Disk is too full for a backup: a copy of this database (up to %d bytes) would leave its writes less than 5%% of the disk; the backup was not made", size)}
		}
		stmt, _, err := r.conn.Prepare(`VACUUM INTO ?`)
		if err != nil {
			return dbError(err)
		}
		defer stmt.Close()
		if err := execBound(stmt, tmp.Name()); err != nil {
			// A full disk reaches kvd as a bare I/O error (the OS VFS
			// misses its errno, see fullDisk) and SQLite empties the copy
			// as it fails, so the folder is asked whether a copy of the
			// database's size would fit (it is at most that).
			full := storageFull(err) || (errors.Is(err, sqlite3.IOERR) && noRoomIn(dir, max(size, minRoom)))
			return backupError("Backup failed", fmt.Errorf("vacuum into %s: %w", tmp.Name(), err), full)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// VACUUM INTO wrote through its own handle; reopen to read from the start.
	f, err := os.Open(tmp.Name())
	if err != nil {
		return nil, backupError("Could not read the backup file", err, false)
	}
	return f, nil
}

// roomForCopy reports whether a copy of size bytes in dir leaves 5% of
// its filesystem free (up to 1 GiB) for the database's writes: copies are
// made on the database's own disk, and a few of a large database, sent to
// slow clients, would otherwise fill it and turn every write into a 507.
// A filesystem that cannot be asked is given the benefit of the doubt:
// VACUUM INTO still fails cleanly on a full disk.
func roomForCopy(dir string, size int64) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return true
	}
	free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	return free >= uint64(size)+min(total/20, 1<<30)
}

// backupError is a full disk's 507, as for a write; want of file
// descriptors' 503, as for an open; or else what failed.
func backupError(what string, err error, full bool) *Error {
	if full {
		return &Error{Code: CodeStorageFull, Message: "Disk is full: the backup was not made", Cause: err}
	}
	if NoFilesLeft(err) || errors.Is(err, sqlite3.CANTOPEN) && !errors.As(err, new(unix.Errno)) && cannotOpenMore() {
		return outOfFiles(what, err)
	}
	if errors.Is(err, unix.EROFS) {
		return &Error{Code: CodeReadOnly, Message: "The backup's copy is made beside the database, whose folder is read-only: the backup was not made", Cause: err}
	}
	return &Error{Code: CodeFileSystemError, Message: what, Cause: err}
}

// databaseBytes is the size of the database r reads, its log's pages
// included; 0 when it cannot tell.
func (r *reader) databaseBytes() int64 {
	stmt, _, err := r.conn.Prepare(`SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`)
	if err != nil {
		return 0
	}
	defer stmt.Close()
	if !stmt.Step() {
		return 0
	}
	return stmt.ColumnInt64(0)
}
