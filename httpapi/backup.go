package httpapi

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// handleBackup streams a consistent online copy of a database. The copy is
// made beside the database (same filesystem, an allowed root) and removed
// once sent. Directory mode is refused: its values are the folder's files,
// which the folder's own backup covers, and a copy of the cache alone
// would not be a backup.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request, t target) {
	select {
	case s.backups <- struct{}{}:
		defer func() { <-s.backups }() // the copy is on disk until it is sent
	default:
		s.writeError(w, r, sqlitekv.Errorf(sqlitekv.CodeOverloaded,
			"%d backups are being made or sent already, each a copy of its database on disk (--max-backups); retry when one has finished", cap(s.backups)))
		return
	}
	copyFile, name, err := s.backup(r, t)
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
	defer sendingFile(r)()
	if _, err := io.Copy(w, copyFile); err != nil {
		// Its client hung up: no fault of kvd's, and a client doing so
		// in a loop must not fill the log.
		s.log.Debug("backup stream interrupted", "request_id", w.Header().Get("X-Request-Id"), "err", err)
	}
}

// backup copies the database into a file that is already unlinked, so
// nothing is left behind however the stream ends, and returns it open.
func (s *Server) backup(r *http.Request, t target) (copyFile *os.File, name string, err error) {
	err = s.withDB(r, t.q.backupDB(), func(db *actors.DB) (err error) {
		copyFile, err = db.Backup(r.Context())
		name = filepath.Base(db.Path())
		return err
	})
	if sqlitekv.CodeOf(err) == sqlitekv.CodePathIsDirectory && t.q.has("table") {
		// Only Registry.Open says this (backupDB never asks for directory
		// mode), so the refused folder was never opened.
		return nil, "", invalidParam("Directory mode has no single database file to back up; back up the folder itself (its files and .kvd-cache.db)")
	}
	if err != nil {
		return nil, "", err
	}
	return copyFile, name, nil
}
