package sqlitekv

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// PathKind says what a resolved database path is on disk.
type PathKind int

const (
	PathMissing PathKind = iota
	PathFile
	PathDir
)

// Location is a resolved database path: real (symlinks resolved, cleaned,
// absolute), so every spelling of one file gives the same string.
type Location struct {
	Path string
	Kind PathKind
}

// Resolver turns the client's db parameter into a real path inside the
// allowed roots. kvd is a network daemon: nothing a client sends may make
// it open or create a file outside them.
type Resolver struct {
	dataDir  string
	roots    []string
	allowAny bool
}

// NewResolver resolves the roots once. The data dir must exist (the caller
// creates it); so must every allow dir.
func NewResolver(dataDir string, allowDirs []string, allowAnyAbsolute bool) (*Resolver, error) {
	r := &Resolver{allowAny: allowAnyAbsolute}
	for i, dir := range append([]string{dataDir}, allowDirs...) {
		real, err := realDir(dir)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := checkDataDirPrivate(real); err != nil {
				return nil, err
			}
			r.dataDir = real
		}
		r.roots = append(r.roots, real)
	}
	return r, nil
}

func realDir(dir string) (string, error) {
	if strings.TrimSpace(dir) == "" {
		// filepath.Abs would make it the working directory: a root no one chose.
		return "", errors.New("a root is empty (a stray separator in --allow-dir or KVD_ALLOW_DIR?)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("root %s: %w", dir, err)
	}
	if info, err := os.Stat(real); err != nil || !info.IsDir() {
		return "", fmt.Errorf("root %s is not a directory", dir)
	}
	return real, nil
}

// DataDir is the real path of the data dir.
func (r *Resolver) DataDir() string { return r.dataDir }

// Name shows a resolved database without saying where the roots lie on
// disk (metrics are open to anyone who reaches the port): its path below
// the data dir ("app.db"), below the n-th --allow-dir ("allow-dir-2/team/x.db"),
// or, outside every root (--allow-any-absolute-db-path), its file name
// alone ("outside/x.db").
func (r *Resolver) Name(real string) string {
	for i, root := range r.roots {
		rel, err := filepath.Rel(root, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if i == 0 {
			return filepath.ToSlash(rel)
		}
		if rel == "." {
			return fmt.Sprintf("allow-dir-%d", i)
		}
		return fmt.Sprintf("allow-dir-%d/%s", i, filepath.ToSlash(rel))
	}
	return "outside/" + filepath.Base(real)
}

// The refusals of a database path say which rule it broke, never what
// the filesystem holds outside the roots.
var (
	errInvalidDBPath = Errorf(CodeInvalidDBPath, "Invalid database path: give a bare name (app, app.db) or an absolute path; empty, :memory:, file: URIs, '..' and control characters are refused")
	errNotBareName   = Errorf(CodeInvalidDBPath, "Invalid database path: a relative path must be a bare file name (app, app.db), in the data dir; give others as absolute paths")
	errOutsideRoots  = Errorf(CodeInvalidDBPath, "Invalid database path: an absolute path must lie in the data dir or in a folder kvd's --allow-dir names")
	errDanglingLink  = Errorf(CodeInvalidDBPath, "Invalid database path: a symlink that leads to nothing")
	errNotAFile      = Errorf(CodeInvalidDBPath, "Invalid database path: neither a file nor a folder (a pipe, socket or device)")
)

// Resolve applies the database path contract: a bare name (app, app.db,
// ./app) lives in the data dir, with .db added when it has no extension;
// an absolute path must lie inside a root once symlinks are resolved;
// anything else is INVALID_DB_PATH. An existing file must be a SQLite
// database (or empty).
func (r *Resolver) Resolve(db string) (Location, error) {
	if db == "" || db == ":memory:" || strings.HasPrefix(db, "file:") || hasDotDot(db) || !printable(db) {
		return Location{}, errInvalidDBPath
	}
	var p string
	if filepath.IsAbs(db) {
		p = filepath.Clean(db)
	} else {
		name := strings.TrimPrefix(db, "./")
		if name == "" || name == "." || strings.ContainsAny(name, `/\`) {
			return Location{}, errNotBareName
		}
		if filepath.Ext(name) == "" {
			name += ".db"
		}
		p = filepath.Join(r.dataDir, name)
	}
	real, err := realPath(p)
	if err != nil && !r.allowAny && !r.inside(p) {
		// Outside the roots, even "that folder does not exist" or "a
		// dangling link" says too much.
		return Location{}, errOutsideRoots
	}
	if err != nil {
		return Location{}, err
	}
	if err := checkNotReserved(filepath.Base(real)); err != nil {
		return Location{}, err
	}
	if !r.allowAny && !r.inside(real) {
		return Location{}, errOutsideRoots
	}
	if err := checkPathPrivate(real, r.Name); err != nil {
		return Location{}, err
	}
	base := filepath.Base(real)
	if len(base) > maxNameBytes {
		// No file can be so named: say why, not that it cannot be looked at.
		return Location{}, checkSideFilesFit(base)
	}
	loc, err := inspect(real)
	if err == nil && loc.Kind != PathDir {
		err = checkSideFilesFit(base)
	}
	if err == nil && filepath.IsAbs(db) {
		err = r.refuseInsideDirMode(loc)
	}
	return loc, err
}

// checkSideFilesFit refuses a database file name that fits the filesystem
// while the names of its side files (the name and -journal, the longest
// suffix) do not: SQLite would create the database and then fail every
// write on it.
func checkSideFilesFit(base string) error {
	if longest := len(base) + len("-journal"); longest > maxNameBytes {
		return Errorf(CodeInvalidDBPath, "Database file name is too long: %d bytes, at most %d, so that SQLite's side files (<name>-journal) fit the filesystem's %d", len(base), maxNameBytes-len("-journal"), maxNameBytes)
	}
	return nil
}

// refuseInsideDirMode refuses a database in a table folder of a
// directory-mode database: that database's owner takes the folder's files
// for keys, so opening one as a database would turn a key's file into a
// database (and its side files into more keys), and a directory-mode
// database there would share its files with the outer one. The data
// dir's own databases (bare names) are never refused: the data dir is
// kvd's, and directory mode does not touch a SQLite file anywhere.
func (r *Resolver) refuseInsideDirMode(loc Location) error {
	for dir := filepath.Dir(loc.Path); r.allowAny || r.inside(dir); dir = filepath.Dir(dir) {
		if _, err := os.Lstat(filepath.Join(dir, dirCacheFile)); err == nil {
			rel, _ := filepath.Rel(dir, loc.Path)
			table, _, nested := strings.Cut(filepath.ToSlash(rel), "/")
			if (nested || loc.Kind == PathDir) && ValidateTable(table) == nil {
				return Errorf(CodeInvalidDBPath, "Database path lies in table %q of the directory-mode database %s", table, dir)
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return nil
}

// sqliteSideFiles end the names of the files SQLite keeps beside a
// database. Opened as a database of its own, such a file would be
// overwritten or deleted by its owner, taking acknowledged writes with it.
var sqliteSideFiles = []string{"-wal", "-shm", "-journal"}

func checkNotReserved(base string) error {
	if strings.HasPrefix(base, reservedPrefix) {
		return Errorf(CodeInvalidDBPath, "Database path names a file kvd reserves (directory-mode cache)")
	}
	for _, suffix := range sqliteSideFiles {
		if strings.HasSuffix(base, suffix) {
			return Errorf(CodeInvalidDBPath, "Database path names one of SQLite's side files (%s)", suffix)
		}
	}
	return nil
}

// printable refuses names no one types on purpose: invalid UTF-8, control
// characters (NUL included), or nothing but spaces.
func printable(db string) bool {
	if !utf8.ValidString(db) || strings.TrimSpace(db) == "" {
		return false
	}
	return !strings.ContainsFunc(db, unicode.IsControl)
}

func hasDotDot(p string) bool {
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return true
		}
	}
	return false
}

// realPath resolves symlinks in p. A missing file is resolved through its
// parent; a missing parent means there is nowhere to create the file.
func realPath(p string) (string, error) {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real, nil
	}
	if info, err := os.Lstat(p); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		return "", errDanglingLink // creating through it could land anywhere
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", Errorf(CodeDatabaseNotFound, "The database's directory does not exist")
	}
	return filepath.Join(parent, filepath.Base(p)), nil
}

// inside reports whether p is a root or lies below one, segment by segment
// (so /data2 is not inside /data).
func (r *Resolver) inside(p string) bool {
	for _, root := range r.roots {
		if p == root || strings.HasPrefix(p, root+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func inspect(p string) (Location, error) {
	info, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Location{Path: p, Kind: PathMissing}, nil
	case err != nil:
		return Location{}, unreadable("Database path is not accessible", err)
	case info.IsDir():
		return Location{Path: p, Kind: PathDir}, nil
	case !info.Mode().IsRegular():
		return Location{}, errNotAFile
	case info.Size() > 0:
		if err := checkHeader(p); err != nil {
			// The path goes with the refusal: a file kvd is creating
			// holds zeros for a moment, and its caller may look again
			// once that is over (Registry.open).
			return Location{Path: p, Kind: PathFile}, err
		}
	}
	return Location{Path: p, Kind: PathFile}, nil
}

// IsSQLiteFile reports whether the file at p starts with SQLite's header.
func IsSQLiteFile(p string) bool { return checkHeader(p) == nil }

func checkHeader(p string) error {
	// Non-blocking, so that a FIFO in the way does not hang the open.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return unreadable("Database file is not readable", err)
	}
	defer f.Close()
	return checkHeaderOf(f)
}

func checkHeaderOf(f *os.File) error {
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		return Errorf(CodeInvalidSQLiteHeader, "File is not a valid SQLite database")
	}
	header := make([]byte, len(sqliteHeader))
	_, err := io.ReadFull(f, header)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unreadable("Database file is not readable", err) // the disk failed, not the file's shape
	}
	if err != nil || string(header) != sqliteHeader {
		return Errorf(CodeInvalidSQLiteHeader, "File is not a valid SQLite database")
	}
	return nil
}

// unreadable answers a database path kvd failed to stat, open or read.
// The client is at fault only when the path names nothing a database
// could be (a socket, a file gone meanwhile, a name through a file):
// 400 with what. Too many open files is a 503 to retry. Anything else
// failed on kvd's side (permission denied, an I/O error): 500 saying
// what happened, never the path, which may lie outside what the client
// sent.
func unreadable(what string, err error) *Error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &Error{Code: CodeDatabaseError, Message: what, Cause: err}
	}
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR, syscall.ELOOP, syscall.ENAMETOOLONG, syscall.ENXIO, syscall.ENODEV:
		return &Error{Code: CodeInvalidDBPath, Message: what, Cause: err}
	case syscall.EMFILE, syscall.ENFILE:
		return outOfFiles(what, err)
	}
	return &Error{Code: CodeDatabaseError, Message: what + ": " + errno.Error(), Cause: err}
}
