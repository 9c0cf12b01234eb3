package sqlitekv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
	"golang.org/x/sys/unix"
)

// SyncMode chooses what an acknowledged write survives.
type SyncMode string

const (
	// SyncFull fsyncs the WAL on every commit: a write survives power loss.
	SyncFull SyncMode = "full"
	// SyncNormal leaves the fsync to checkpoints: a write survives a crash of
	// the process, not of the machine.
	SyncNormal SyncMode = "normal"
)

// DefaultCacheBytes is the writer's page cache unless Options say
// otherwise. A group's dirty pages must fit in it: when they do not, SQLite
// spills them to the WAL mid-transaction and reads them back, which cost
// batch-set about 10% at SQLite's own default of 2 MB (bench/README.md).
const DefaultCacheBytes = 16 << 20

// MaxCacheBytes keeps the page cache well inside the 256 MiB of memory
// the WebAssembly SQLite gives each connection.
const MaxCacheBytes = 128 << 20

// Options tune a Store. The zero value is usable: full sync, 1000 versions
// of history per key, no age limit, the wall clock.
type Options struct {
	Sync          SyncMode
	HistoryKeep   int           // versions kept per key; 0 means 1000, negative means unlimited
	HistoryMaxAge time.Duration // 0 keeps history regardless of age
	Readers       int           // read-only connections; 0 means GOMAXPROCS (at least 2)
	CacheBytes    int64         // the writer's page cache; 0 means DefaultCacheBytes
	MaxValueBytes int64         // directory mode: the largest file served or imported; 0 means DefaultMaxValueBytes
	MaxTables     int           // file mode: the most tables a write may bring a database to; 0 means DefaultMaxTables
	Now           func() time.Time
	// ReservedKeys are keys no write may create: the words the HTTP API
	// reserves under /kv/. Directory mode imports no file of those names.
	ReservedKeys []string

	// Fence, when set, is asked before each COMMIT whether this process
	// may still write the database at path (cluster.Node.Fence); its
	// error fails the whole group, which is rolled back. Asked again
	// after the COMMIT, its error fails the group's writes as of unknown
	// outcome (500).
	Fence func(path string) error

	// CheckpointFailed, when set, hears of each checkpoint that failed
	// for another reason than a reader in its way: a disk that fails its
	// fsyncs, say. Nothing is lost (the pages stay in the log), but the
	// log grows until one succeeds, and under --sync normal what was
	// written since the last good one is not on the disk for sure.
	CheckpointFailed func(path string, err error)

	// Upgrading, when set, hears that a table an older kvd wrote is about
	// to be upgraded (upgrade.go), which the database's requests wait for
	// (about 4 s per million versions), and the func it returns hears how
	// that ended: nil, or why the table was left as it was.
	Upgrading func(path, table string) (done func(error))

	// vfs, set only by tests (export_test.go), names the VFS under kvd's
	// own through which every connection reaches the files: a simulated
	// disk that can lose power. "" is the OS's.
	vfs string
}

// DefaultMaxValueBytes is kvd's --max-value-bytes unless set otherwise.
const DefaultMaxValueBytes = 10 << 20

// DefaultMaxTables is kvd's --max-tables unless set otherwise. Each table
// a write creates makes every connection parse the schema again, which
// grows with the tables (a PUT creating one took 4.8 ms on average for
// the first 250, 20 ms for tables 750 to 1,000), and a connection keeps
// statements for up to maxPreparedTables of them.
const DefaultMaxTables = 256

func (o Options) withDefaults() Options {
	if o.Sync == "" {
		o.Sync = SyncFull
	}
	if o.HistoryKeep == 0 {
		o.HistoryKeep = 1000
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.MaxTables <= 0 {
		o.MaxTables = DefaultMaxTables
	}
	if o.Readers <= 0 {
		o.Readers = max(2, runtime.GOMAXPROCS(0))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// FilesPerDatabase is the most file descriptors one open database holds
// with opts: each connection (the writer, the background checkpointer,
// and each of Readers) holds the database file, its -wal and its -shm,
// for the driver's VFS shares no descriptor between connections; a
// directory-mode database holds its folder too, and its cache once more
// for its lock (lockFolder). With 2 readers (the default up to GOMAXPROCS
// 2) that is 3 × (1 + 1 + 2) + 2 = 14. Readers open as reads need them,
// so a database few read at once holds fewer.
// TestFilesPerDatabase_IsWhatAnOpenDatabaseHolds counts them.
func FilesPerDatabase(opts Options) int {
	return 3*(2+opts.withDefaults().Readers) + 2
}

// Store is one open database file.
type Store struct {
	path    string
	opts    Options
	writer  *Writer
	readers chan *reader  // idle read connections
	slots   chan struct{} // one token per read connection that may exist
	paging  chan struct{} // one token per read connection watchers' pages may hold (ReadChanges)
	wal     walProgress   // what the writer's commits did (snapshots.go)
	id      *fileIdentity // the file the path named when opened (identity.go)
	// readOnly, when set, is why kvd cannot write the file (readonly.go):
	// the store then has no writer, and serves reads alone.
	readOnly  string
	immutable bool // readers open the file as immutable (readonly.go)
	// folderMoved: in directory mode, the folder was moved under the
	// store and a link left at its path (Dir.moved). Its files are as
	// they were; its paths are not.
	folderMoved atomic.Bool

	closeOnce sync.Once
	closed    chan struct{}
	mu        sync.Mutex // guards all, the read connections ever opened
	all       []*reader
}

// File is the database file's absolute path (in directory mode, the
// cache's): what a metric of its size stats.
func (s *Store) File() string { return s.path }

// Open opens (and with create, creates) the database at path, which the
// caller has already resolved and confined.
func Open(path string, create bool, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	// Every connection names the file alike: the writer's name is a URI.
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, openError(path, err)
	}
	path = abs
	if err := refuseOddSideFiles(path); err != nil {
		return nil, err
	}
	_, missing := os.Lstat(path)
	s, err := openStore(path, create, opts)
	made := create && errors.Is(missing, fs.ErrNotExist)
	if err != nil && made && isRegular(path) {
		RemoveDatabase(path) // a failed open leaves nothing behind, as far as it can
	}
	switch why := readOnlyCause(path, err); {
	case why != "" && made:
		err = &Error{Code: CodeReadOnly, Cause: err, Message: "Database cannot be created: its folder is read-only (" + why + ")"}
	case why != "" && isRegular(path):
		s, err = openReadOnly(path, opts, why, err)
	}
	if err != nil && !create && !exists(path) {
		// Removed by another program since the resolver looked: no
		// database, not a failure.
		err = Errorf(CodeDatabaseNotFound, "Database file does not exist")
	}
	// Without a free inode SQLite cannot make the -wal or -shm, and says
	// CANTOPEN rather than IOERR.
	if err != nil && (errors.Is(err, sqlite3.IOERR) || errors.Is(err, sqlite3.CANTOPEN)) && noRoomIn(filepath.Dir(path), minRoom) {
		err = &Error{Code: CodeStorageFull, Message: "Disk is full: the database was not opened", Cause: err}
	}
	return s, err
}

// refuseOddSideFiles refuses a database whose -wal, -shm or -journal is
// there but not a plain file (a local user's link or pipe): SQLite opens
// them by name, so through a link it would write its log into any file
// kvd may write, and a pipe as -journal hung the open for good (SQLite's
// look for a hot journal opens it without O_NONBLOCK). Directory mode's
// cache has the same check (refuseLinkedCache).
func refuseOddSideFiles(path string) error {
	for _, suffix := range sqliteSideFiles {
		if info, err := os.Lstat(path + suffix); err == nil && !info.Mode().IsRegular() {
			return Errorf(CodeInvalidDBPath, "The database's %s%s is not a plain file (a link or a pipe): kvd will not open the database through it", filepath.Base(path), suffix)
		}
	}
	return nil
}

// minRoom is the least free space that is not a full disk: room for a
// few pages.
const minRoom = 64 << 10

// noRoomIn reports whether dir's filesystem has less than need bytes free
// or no free inode. Opening a database writes its first pages (creating
// it, switching it to WAL) to the database file itself, where a full disk
// reaches kvd as a bare I/O error (the driver keeps no errno), unlike the
// WAL's writes (walbuffer.go); so a failed open asks the filesystem, and
// so does a failed backup (backup.go). A filesystem that does not answer
// is not known to be full.
func noRoomIn(dir string, need int64) bool {
	free, known := freeBytes(dir)
	return known && free < uint64(need)
}

// freeBytes is the space left to kvd on dir's file system (none if no
// inode is left for a file), and whether the file system said.
func freeBytes(dir string) (free uint64, known bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	if st.Files > 0 && st.Ffree == 0 {
		return 0, true
	}
	return st.Bavail * uint64(st.Bsize), true
}

// Now is the time (Unix ms) by the clock the store judges TTLs by.
func (s *Store) Now() int64 { return s.opts.Now().UnixMilli() }

func openStore(path string, create bool, opts Options) (*Store, error) {
	flags := sqlite3.OPEN_READWRITE | sqlite3.OPEN_URI
	if create {
		flags |= sqlite3.OPEN_CREATE
	}
	conn, err := openConn(bufferedWALURI(path, opts.Sync, opts.vfs), flags)
	if err != nil && isLink(path) {
		return nil, errReplaced // swapped in since the resolver looked: a retry resolves it again
	}
	if err != nil {
		return nil, openError(path, err)
	}
	s := &Store{
		path:    path,
		opts:    opts,
		readers: make(chan *reader, opts.Readers),
		slots:   make(chan struct{}, opts.Readers),
		paging:  make(chan struct{}, max(1, opts.Readers-1)),
		closed:  make(chan struct{}),
	}
	// The open runs on a request's goroutine: a fault on the -shm there
	// (truncated while the writer sets up) retires the connection and
	// fails the open, rather than kill kvd (faults.go). Any other panic
	// (the driver's, out of memory, as an upgrade can meet) closes what
	// was opened before it goes on: else each try left the database's
	// files open.
	defer func() {
		if p := recover(); p != nil {
			if s.writer != nil {
				s.writer.close()
			} else {
				guardedClose(conn, conn.Close)
			}
			panic(p)
		}
	}()
	faulted, err := guarded(conn, func() error { return s.setUpWriter(conn, path, opts) })
	if faulted {
		if s.writer != nil {
			s.writer.faulted = true // conn is retired: close its checkpointer alone
			s.writer.close()
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	for range opts.Readers {
		s.slots <- struct{}{}
	}
	return s, nil
}

// setUpWriter is openStore's work on the writer's connection, conn; an
// error closes it.
func (s *Store) setUpWriter(conn *sqlite3.Conn, path string, opts Options) (err error) {
	if s.id, err = identify(conn, path); err != nil {
		guardedClose(conn, conn.Close)
		return err
	}
	if s.writer, err = newWriter(conn, path, opts, &s.wal, s.id, s.endIdleSnapshots); err != nil {
		guardedClose(conn, conn.Close)
		return err
	}
	// The WAL (and a new database file) now exist; the SQLite driver does
	// not fsync their folder, so a power cut could lose their entries, and
	// with them writes acknowledged as durable. Before the upgrade: its
	// checkpoints write the log into the database file, and a cut in one
	// that lost the log's entry left the file half copied over.
	if err := syncDir(filepath.Dir(path)); err != nil {
		s.writer.close()
		return fsError("Could not sync the database's folder", err)
	}
	if err := s.writer.upgrade(); err != nil {
		s.writer.close()
		if LockedElsewhere(err) {
			return err // another program's lock: the next request may find it gone
		}
		return upgradeFailure{err}
	}
	s.id.noteLog(conn) // open by now; else the first commit looks
	return nil
}

func isLink(path string) bool {
	info, err := os.Lstat(path)
	return err == nil && info.Mode()&fs.ModeSymlink != 0
}

// isRegular reports whether path is a plain file, not a link. A file this
// open created holds nothing a client wrote, whatever its size (switching
// to WAL writes its first page before the folder's fsync can fail): left
// behind, it would be a database that the refused create made after all.
// A link swapped in meanwhile is not the open's to remove.
func isRegular(path string) bool {
	info, err := os.Lstat(path)
	return err == nil && info.Mode().IsRegular()
}

// exists reports whether p names anything, a link not followed.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// RemoveDatabase removes a database file and the side files SQLite keeps
// beside it (a failed open's, or a copy a cluster node replaces); files
// already gone are no error.
func RemoveDatabase(path string) error {
	var errs []error
	for _, suffix := range append([]string{""}, sqliteSideFiles...) {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func openError(path string, err error) error {
	if errors.Is(err, sqlite3.NOTADB) {
		return Errorf(CodeInvalidSQLiteHeader, "File is not a valid SQLite database")
	}
	return dbError(fmt.Errorf("open %s: %w", path, err))
}

// Writer is the store's single write connection. Only the database's owner
// may use it.
func (s *Store) Writer() *Writer { return s.writer }

// Close waits for reads in flight, then closes every connection. The writer
// closes last so SQLite checkpoints the WAL into the main file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.closed) // under mu: no reader opens after this
		opened := s.all
		s.all = nil
		s.mu.Unlock()
		for range opened {
			(<-s.readers).close()
		}
		if s.writer != nil {
			err = s.writer.close()
			s.id.removeOldLog()
		}
	})
	return err
}

// withReader runs fn on an idle read connection, opening one if the pool
// has room, else waiting for one to come back. Everything fn reads is one
// snapshot, which holds every write acknowledged before the call.
func (s *Store) withReader(ctx context.Context, fn func(*reader) error) error {
	if err := s.id.checkForRead(); err != nil {
		return err
	}
	r, err := s.acquireReader(ctx)
	if err != nil {
		return err
	}
	faulted := false
	defer func() {
		if faulted {
			s.retired(r)
		} else {
			s.putBack(r)
		}
	}()
	faulted, err = guarded(r.conn, func() error { return s.read(r, fn) })
	return err
}

// read is withReader's work on r.
func (s *Store) read(r *reader, fn func(*reader) error) error {
	if err := r.snapshot(s.wal.commits.Load(), s.opts.Now()); err != nil {
		return s.id.readFailed(err)
	}
	if len(r.tables) > maxPreparedTables {
		r.forgetTables()
	}
	err := fn(r)
	if errors.Is(err, sqlite3.ERROR) {
		// Most likely statements that outlived their table, which another
		// program dropped (SQLite prepares them again, and finds no
		// table): prepared afresh, they read the table as missing. The
		// retry reads nothing twice: it succeeds only if the whole table
		// is gone, and then reads nothing (a table missing a part of it
		// is refused, shapeError).
		r.forgetTables()
		err = fn(r)
	}
	if !s.wal.keepSnapshot(r.commits) {
		r.endSnapshot()
	}
	return s.id.readFailed(err)
}

// retired takes r, which a fault retired (faults.go), out of the pool:
// Close does not wait for it, unless Close has begun, and then closes
// nothing of it. Its store is to be opened afresh.
func (s *Store) retired(r *reader) {
	s.id.shmLost.Store(true)
	r.retired = true
	if s.forget(r) {
		s.slots <- struct{}{}
		return
	}
	s.readers <- r
}

func (s *Store) acquireReader(ctx context.Context) (*reader, error) {
	select {
	case r := <-s.readers:
		return r, nil
	default:
	}
	select {
	case r := <-s.readers:
		return r, nil
	case <-s.slots:
		r, err := s.openReader()
		if err != nil {
			s.slots <- struct{}{}
		}
		return r, err
	case <-s.closed:
		return nil, ErrClosing()
	case <-ctx.Done():
		return nil, Cancelled(ctx.Err())
	}
}

func (s *Store) openReader() (*reader, error) {
	name, flags := s.readerName()
	conn, err := openConn(name, flags|sqlite3.OPEN_READONLY)
	if err != nil {
		if s.id.file != nil && !names(s.path, s.id.file) {
			return nil, s.id.fail() // deleted (or replaced) since the last look
		}
		return nil, openError(s.path, err)
	}
	var r *reader
	faulted, err := guarded(conn, func() (err error) {
		if err := s.id.sameFile(conn); err != nil {
			return err // a file swapped in after the writer opened: maybe one outside the roots
		}
		if err := conn.BusyTimeout(busyTimeout); err != nil {
			return dbError(err)
		}
		r, err = newReader(conn)
		return err
	})
	if faulted {
		s.id.shmLost.Store(true) // conn is retired; the store opens afresh
		return nil, err
	}
	if err != nil {
		guardedClose(conn, conn.Close)
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		r.close() // not conn.Close: SQLite keeps a connection with statements open
		return nil, ErrClosing()
	default:
	}
	s.all = append(s.all, r)
	return r, nil
}

// ErrClosing answers a request whose database closed under its lease (a
// cluster's hand-over, a file found replaced): its retry opens it again.
func ErrClosing() error { return Errorf(CodeOverloaded, "Database is closing; retry shortly") }
