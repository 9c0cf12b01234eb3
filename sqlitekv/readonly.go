package sqlitekv

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ncruces/go-sqlite3"
	"golang.org/x/sys/unix"
)

// A database kvd cannot write (its file read-only, immutable (chattr +i),
// or on a read-only mount) is still served for reads. Its store has no
// writer: writes answer READ_ONLY (403), and nothing kvd does writes the
// file, not even an expiry or a checkpoint.
//
// A read-only connection in WAL mode uses the shared memory (-shm) beside
// the file, which SQLite creates where the folder is writable. One that is
// there already but that kvd may not write still serves: SQLite then
// reads the -wal into an index of its own (a -wal kvd may not write is
// opened read-only, readvfs.go). With none on a read-only folder, the one
// way left to read is to open the file as immutable: SQLite then takes no
// locks and ignores any -wal.
// That is sound only while the file holds everything: so a -wal with
// frames in it (writes not yet checkpointed into the file) refuses the
// reads too (READ_ONLY, saying why), rather than serving values older than
// what was written. And it assumes nothing writes the file meanwhile,
// which a read-only mount promises kvd, though not a writer elsewhere
// (the same folder mounted writable): reads are then as of the open,
// until the file is found replaced.

// readOnlyCause says why a read-write open of the database at path that
// failed with err could not write it ("" when it failed for another
// reason).
func readOnlyCause(path string, err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return ""
	case errors.As(err, &errno) && (errno == syscall.EROFS || errno == syscall.EPERM || errno == syscall.EACCES):
		return errno.Error()
	case errors.Is(err, sqlite3.READONLY):
		return "it cannot be written"
	case errors.Is(err, sqlite3.CANTOPEN) && isRegular(path):
		// A side file SQLite could not open to write (an immutable
		// -wal), whose errno the driver does not keep.
		return cannotWrite(path)
	}
	return ""
}

// openReadOnly opens path for reads alone, kvd's read-write open having
// failed with cause for why. It returns cause when the file cannot be
// read either.
func openReadOnly(path string, opts Options, why string, cause error) (*Store, error) {
	s := &Store{
		path:     path,
		opts:     opts,
		readOnly: why,
		readers:  make(chan *reader, opts.Readers),
		slots:    make(chan struct{}, opts.Readers),
		closed:   make(chan struct{}),
	}
	conn, err := s.probe()
	// No -shm could be made: CANTOPEN, or READONLY_DIRECTORY where the
	// folder is immutable (chattr +i). (Not any READONLY: a hot -journal
	// that cannot be rolled back is READONLY_ROLLBACK, and immutable reads
	// would ignore it.)
	if (errors.Is(err, sqlite3.CANTOPEN) || errors.Is(err, sqlite3.READONLY_DIRECTORY)) && !walHoldsFrames(path) {
		s.immutable = true // no shared memory to be had, and nothing outside the file
		conn, err = s.probe()
	}
	if errors.Is(err, errShmLost) {
		return nil, err // a fault on the -shm retired the probe (faults.go): to retry, not a read-only refusal
	}
	switch {
	case err != nil && walHoldsFrames(path):
		return nil, &Error{Code: CodeReadOnly, Cause: err, Message: "Database file is read-only (" + why + ") and its -wal holds writes not yet in it, which cannot be read without the shared memory (-shm) that SQLite makes beside it: make its folder writable"}
	case err != nil:
		return nil, cause
	}
	faulted, err := guarded(conn, func() (err error) {
		if s.id, err = identify(conn, path); err != nil {
			return err
		}
		if old, err := needsUpgrade(conn); err != nil || old {
			return &Error{Code: CodeReadOnly, Cause: err, Message: "Database file is read-only (" + why + ") and was written by an older kvd: reading it needs an upgrade, which writes it"}
		}
		return nil
	})
	if !faulted {
		guardedClose(conn, conn.Close)
	}
	if err != nil {
		return nil, err
	}
	for range opts.Readers {
		s.slots <- struct{}{}
	}
	return s, nil
}

// probe opens a read connection as the store's readers do and reads the
// schema, which is when SQLite opens the WAL's files.
func (s *Store) probe() (*sqlite3.Conn, error) {
	name, flags := s.readerName()
	conn, err := openConn(name, flags|sqlite3.OPEN_READONLY)
	if err != nil {
		return nil, err
	}
	faulted, err := guarded(conn, func() error { return conn.Exec(`SELECT count(*) FROM sqlite_schema`) })
	if faulted {
		return nil, err // conn is retired (faults.go)
	}
	if err != nil {
		guardedClose(conn, conn.Close)
		return nil, err
	}
	return conn, nil
}

// walHoldsFrames reports whether the database at path has a -wal with
// anything in it: commits that may not be in the file yet.
func walHoldsFrames(path string) bool {
	info, err := os.Lstat(path + "-wal")
	return err == nil && info.Size() > 0
}

// readerName names the store's database for a read connection.
func (s *Store) readerName() (string, sqlite3.OpenFlag) {
	if s.immutable {
		return immutableURI(s.path, s.opts.vfs), sqlite3.OPEN_URI
	}
	return fileURI(s.path, vfsOver(readVFS, s.opts.vfs)), sqlite3.OPEN_URI
}

// immutableURI names the database at path for a read-only connection
// that treats it as unchanging (immutable=1).
func immutableURI(path, vfsName string) string {
	q := url.Values{"immutable": {"1"}}
	if vfsName != "" {
		q.Set("vfs", vfsName)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// ReadOnly is the answer to a write to a database kvd cannot write, nil
// for one it can. A file that has become writable since (chattr -i, a
// mount made read-write) would otherwise stay refused for as long as
// requests keep its database open: the store then counts as replaced,
// so the next request opens it afresh, read-write, and this write is
// asked to retry.
func (s *Store) ReadOnly() error {
	if s.readOnly == "" {
		return nil
	}
	if writable(s.path) {
		s.id.replaced.Store(true)
		return Errorf(CodeOverloaded, "The database file has become writable since kvd opened it read-only: it is opened afresh; retry")
	}
	return Errorf(CodeReadOnly, "Database file is read-only (%s): kvd serves its reads and refuses writes", s.readOnly)
}

// writable reports whether kvd may write the database at path:
// its folder, its file and the side files there are, none immutable, on
// a read-only mount or of a mode that forbids it. (A side file kvd still
// could not write would have it reopen the file read-only at every write.)
func writable(path string) bool { return cannotWrite(path) == "" }

// writeRefused is why kvd may not write the file at path, nil when it may
// (or may make it: a file not there refuses nothing).
func writeRefused(path string) error {
	if err := unix.Access(path, unix.W_OK); !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// cannotWrite says which of the database's folder, file and side files
// kvd may not write, and why ("" when it may write them all).
func cannotWrite(path string) string {
	if err := unix.Access(filepath.Dir(path), unix.W_OK); err != nil {
		return "its folder: " + err.Error()
	}
	if err := unix.Access(path, unix.W_OK); err != nil {
		return err.Error()
	}
	for _, side := range []string{"-wal", "-shm"} {
		if err := writeRefused(path + side); err != nil {
			return "its " + side + ": " + err.Error()
		}
	}
	return ""
}
