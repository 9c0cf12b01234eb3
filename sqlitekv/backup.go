package sqlitekv

import (
	"context"
	"fmt"
)

// BackupTo writes a consistent copy of the database to dst, which must not
// exist or be empty. VACUUM INTO runs on a read-only connection inside one
// read transaction: writes go on meanwhile, and the copy is the snapshot
// at its start, compacted and without a WAL.
func (s *Store) BackupTo(ctx context.Context, dst string) error {
	return s.withReader(ctx, func(r *reader) error {
		r.endSnapshot() // VACUUM takes its own, and refuses to run inside a transaction
		stmt, _, err := r.conn.Prepare(`VACUUM INTO ?`)
		if err != nil {
			return dbError(err)
		}
		defer stmt.Close()
		if err := execBound(stmt, dst); err != nil {
			return &Error{Code: CodeFileSystemError, Message: "Backup failed", Cause: fmt.Errorf("vacuum into %s: %w", dst, err)}
		}
		return nil
	})
}
