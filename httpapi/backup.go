package httpapi

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kvd/kvd/sqlitekv"
)

// handleBackup streams a consistent online copy of a database. The copy is
// made beside the database (same filesystem, an allowed root) and removed
// once sent. Directory mode is refused: its values are the folder's files,
// which the folder's own backup covers, and a copy of the cache alone
// would not be a backup.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request, _ target) {
	copyFile, name, err := s.backup(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer copyFile.Close()
	info, err := copyFile.Stat()
	if err != nil {
		s.writeError(w, r, &sqlitekv.Error{Code: sqlitekv.CodeFileSystemError, Message: "Backup failed", Cause: err})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.sqlite3")
	h.Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	h.Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(name, `"`, "")+`"`)
	if _, err := io.Copy(w, copyFile); err != nil {
		s.log.Warn("backup stream interrupted", "request_id", w.Header().Get("X-Request-Id"), "err", err)
	}
}

func (s *Server) backup(r *http.Request) (*os.File, string, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, "", err
	}
	// Never directory mode, so a refused folder is not even opened.
	db, err := s.cfg.Registry.Open(q.Get("db"), false, false)
	if sqlitekv.CodeOf(err) == sqlitekv.CodePathIsDirectory && q.has("table") {
		return nil, "", invalidParam("Directory mode has no single database file to back up; back up the folder itself (its files and .kvd-cache.db)")
	}
	if err != nil {
		return nil, "", err
	}
	defer db.Release()
	tmp, err := os.CreateTemp(filepath.Dir(db.Path()), ".kvd-backup-*.tmp")
	if err != nil {
		return nil, "", &sqlitekv.Error{Code: sqlitekv.CodeFileSystemError, Message: "Could not create the backup file", Cause: err}
	}
	if err := db.BackupTo(r.Context(), tmp.Name()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, "", err
	}
	// VACUUM INTO wrote through its own handle; reopen to read from the start.
	tmp.Close()
	f, err := os.Open(tmp.Name())
	// The open handle still reads it: once the copy is written, a cut
	// stream or a crash leaves nothing behind. (A crash during VACUUM INTO
	// leaves a .kvd-backup-*.tmp beside the database.)
	os.Remove(tmp.Name())
	if err != nil {
		return nil, "", &sqlitekv.Error{Code: sqlitekv.CodeFileSystemError, Message: "Could not read the backup file", Cause: err}
	}
	return f, filepath.Base(db.Path()), nil
}
