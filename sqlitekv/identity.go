package sqlitekv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// A database file can be deleted or replaced while kvd has it open (rm
// data/app.db*, a restore that renames a copy into place, a symlink
// swapped in for the file). The open connections keep the old file and go
// on: commits to an unlinked file are acknowledged and gone at the next
// open, and a connection opened afterwards names the new file, which may
// be another database or, through the link, one outside every root.
//
// So kvd makes sure that the path still names the file the writer opened
// (the one the resolver checked), comparing device and inode: every
// connection when it opens; every commit just before it and again after
// its sync, before its writes are answered (the log too, which a partial
// rm may take); and reads at most every identityCheckInterval, since a
// stat per read would cost more than the read. A file found replaced
// fails what found it, and so does everything after: the registry closes
// the store at the next request, which resolves the path afresh (404 if
// it is gone, refused if it now leads outside the roots).
//
// The check before COMMIT is what lets a failed write say that nothing
// was saved: its group is rolled back. Found only after the commit, the
// write is in the old log, and whether it survives is not kvd's to say:
// the writer's close checkpoints that log into the database file it
// opened, wherever that is now (checkpointMovedFile): the live one again
// if only the log was removed or the folder moved away and back, one
// moved elsewhere, or one deleted. Such a write is reported as of unknown
// outcome, never acknowledged and never "not saved".
//
// The look before each commit also tells when the file or its log was
// made read-only (chattr +i, chmod): open files take writes whatever
// their mode became, so kvd would otherwise go on writing a file frozen
// under it. The write that finds it saves nothing and asks for a retry,
// which opens the file read-only (readonly.go).
//
// A VFS whose files are not the OS's (a test's fault injection that does
// not Unwrap) leaves nothing to compare: then nothing is checked. kvd's
// own VFS always unwraps to the OS file.

// errReplaced is a 503 with Retry-After, like OVERLOADED's other uses (a
// database closing): no client input is at fault, nothing was applied,
// and a retry, which resolves the path afresh, gets a real answer.
var errReplaced = Errorf(CodeOverloaded, "The database file was deleted or replaced while open: nothing was saved; retry")

// errReplacedWhileCommitting is the rare write whose file changed between
// the check before its COMMIT and the one after.
var errReplacedWhileCommitting = Errorf(CodeDatabaseError, "The database file was deleted or replaced while this write committed: whether it was kept is unknown; read it back before retrying")

// errLogCut refuses a request that found the database's log truncated in
// place (walbuffer.go, logShorterThanIndex): nothing of it was done, and
// the database is opened afresh for the retry.
var errLogCut = Errorf(CodeOverloaded, "The database's log (-wal) was truncated while open, losing the writes since its last checkpoint: this request was not carried out; retry")

// errFileCut refuses a request that found the database file truncated in
// place (same inode): shorter than the pages its own header counts,
// which SQLite never leaves it (cut). Reads would otherwise take its
// missing pages for an empty database and answer every key "not found".
// The store closes, checkpointing its log into the cut file
// as a close does, which puts back every page the log holds (all of them
// if none was checkpointed since the file was last whole: a page only
// in the file is lost with it); and the retry opens the file afresh.
// (Left cut to nothing, the file would be taken for a new database when
// opened, and SQLite deletes the log of an empty database.)
var errFileCut = Errorf(CodeOverloaded, "The database file was truncated while open: this request was not carried out; retry")

// errFileCutWhileCommitting is the rare write that found the file cut
// only after its COMMIT: it is in the log, which the close copies back
// into the file, but the pages lost with the cut may leave the database
// unreadable.
var errFileCutWhileCommitting = Errorf(CodeDatabaseError, "The database file was truncated while this write committed: whether it was kept is unknown; read it back before retrying")

// errMadeReadOnly refuses the write that found the database file (or its
// log) made read-only while open, as kvd would have had it been so when
// opened: the retry opens it afresh, read-only, and is answered 403.
var errMadeReadOnly = Errorf(CodeOverloaded, "The database file was made read-only while open: nothing was saved; retry")

// identityCheckInterval bounds how long reads may go on from a replaced
// file on connections opened before the change.
const identityCheckInterval = 100 * time.Millisecond

// fileIdentity is the database file a store opened, and whether its path
// still names it.
type fileIdentity struct {
	path      string
	file      fs.FileInfo // the writer's database file, as opened
	walPath   string
	wal       fs.FileInfo // the writer's log, from the open or the first commit (open as long as the writer)
	replaced  atomic.Bool
	logCut    atomic.Bool  // the log was truncated in place: close without checkpointing it
	fileCut   atomic.Bool  // the file was truncated in place (errFileCut)
	size      atomic.Int64 // the file's size at the last look
	checkedAt atomic.Int64 // when reads last checked the path, Unix ns
	// made read-only while open: the store closes, and the next request
	// opens the file read-only (readonly.go)
	madeReadOnly atomic.Bool
	shmLost      atomic.Bool // a connection had a memory fault on the -shm (faults.go)
	// The access of the writer's file and log when it opened them, or
	// last found it could still write them: a change is when to ask.
	fileAccess, walAccess fileAccess
}

// identify records the file conn (the writer) opened, which must be the
// file path names: a symlink swapped in between the resolver's check and
// the open is refused.
func identify(conn *sqlite3.Conn, path string) (*fileIdentity, error) {
	file, err := openedFile(conn, sqlite3.FCNTL_FILE_POINTER)
	if err != nil && err != errNotAnOSFile {
		return nil, dbError(err)
	}
	id := &fileIdentity{path: path, file: file, walPath: path + "-wal"}
	id.checkedAt.Store(time.Now().UnixNano())
	if file == nil {
		return id, nil
	}
	now, ok := lookUp(path)
	if !ok || !now.is(file) {
		return nil, id.fail()
	}
	id.fileAccess = now.access
	id.size.Store(now.size)
	return id, nil
}

// cut reports whether file, the store's file looked at now, was
// truncated in place (errFileCut). A file smaller than at the last look
// is only a suspicion: SQLite itself shortens a file whose page count
// fell (auto_vacuum, a hot journal rolled back at open, a checkpoint
// trimming slack), and looks from two goroutines may be noted out of
// order. The file's header, which counts its pages, decides.
func (id *fileIdentity) cut(file inode) bool {
	if file.size >= id.size.Swap(file.size) || !shorterThanHeader(id.path) {
		return false
	}
	id.fileCut.Store(true)
	return true
}

// shorterThanHeader reports whether the database file at path is too
// short for its header: no whole header, or fewer bytes than the pages it
// counts (offset 28, valid while the change counter at 24 matches offset
// 92; the page size at 16). It reads the header before the size, and
// twice: a checkpoint that rewrites both between the two reads may make
// one look short, never two.
func shorterThanHeader(path string) bool {
	for range 2 {
		f, err := os.Open(path) // SQLite's locks are OFD locks, which this close leaves alone
		if err != nil {
			return false // gone: the inode check's business
		}
		var hdr [100]byte
		n, _ := f.ReadAt(hdr[:], 0)
		info, err := f.Stat()
		f.Close()
		if err != nil {
			return false
		}
		if n == len(hdr) {
			pageSize := int64(binary.BigEndian.Uint16(hdr[16:]))
			if pageSize == 1 {
				pageSize = 65536
			}
			pages := int64(binary.BigEndian.Uint32(hdr[28:]))
			if pages == 0 || !bytes.Equal(hdr[24:28], hdr[92:96]) || info.Size() >= pages*pageSize {
				return false // whole, or a count that tells nothing
			}
		}
	}
	return true
}

// Links is how many names the database file (in directory mode, the
// cache) has: more than one is a hard link, a copy made with cp -al or
// rsnapshot, whose writes change every name (README, Directory mode).
func (s *Store) Links() int { return LinksOf(s.path) }

// LinksOf is how many names the file at path has (1 when it cannot tell).
func LinksOf(path string) int {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 1
	}
	return int(st.Nlink)
}

// MustReopen reports whether the store's file was found deleted or
// replaced, its log truncated (walbuffer.go) or either made read-only, its
// -shm changed underneath (faults.go), or its folder moved (directory
// mode): the store then should serve nothing more, and its owner should
// close it, so that the next request opens the file as it is now.
func (s *Store) MustReopen() bool {
	return s.id.replaced.Load() || s.id.logCut.Load() || s.id.fileCut.Load() || s.id.madeReadOnly.Load() || s.id.shmLost.Load() || s.folderMoved.Load()
}

// ShmLost reports whether one of the store's connections met a fault on
// its -shm (faults.go).
func (s *Store) ShmLost() bool { return s.id.shmLost.Load() }

func (id *fileIdentity) fail() error {
	id.replaced.Store(true)
	return errReplaced
}

// sameFile checks that another connection (a reader, the checkpointer)
// opened the writer's file.
func (id *fileIdentity) sameFile(conn *sqlite3.Conn) error {
	if id.file == nil {
		return nil
	}
	file, err := openedFile(conn, sqlite3.FCNTL_FILE_POINTER)
	if err != nil {
		return dbError(err)
	}
	if !os.SameFile(file, id.file) {
		return id.fail()
	}
	return nil
}

// checkWriter checks, inside a write transaction, that the writer's
// database file and its log are still the files their paths name; and
// before the commit, that kvd may still write them.
func (id *fileIdentity) checkWriter(writer *sqlite3.Conn, beforeCommit bool) error {
	if id.file == nil {
		return nil
	}
	file, ok := lookUp(id.path)
	if id.replaced.Load() || !ok || !file.is(id.file) {
		return id.fail()
	}
	if id.fileCut.Load() || id.cut(file) {
		return errFileCut
	}
	if id.wal == nil && id.noteLog(writer) != nil {
		return id.fail()
	}
	wal, ok := lookUp(id.walPath)
	if !ok || !wal.is(id.wal) {
		return id.fail()
	}
	if beforeCommit && id.sharedMemoryFrozen() {
		return errMadeReadOnly
	}
	if beforeCommit && (file.access != id.fileAccess || wal.access != id.walAccess) {
		// The file and its log alone: a folder or -shm kvd may not write
		// stops neither the writes of an open store nor its reopening
		// read-write, and a store made to close for them would reopen
		// just so, to refuse again.
		if writeRefused(id.path) != nil || writeRefused(id.walPath) != nil {
			id.madeReadOnly.Store(true)
			return errMadeReadOnly
		}
		id.fileAccess, id.walAccess = file.access, wal.access
	}
	return nil
}

// sharedMemoryFrozen reports whether the database's -shm was made
// immutable or append-only, and if so marks the file made read-only.
// SQLite writes the -shm through a shared map (a transaction's Begin, its
// commit), and the kernel answers a write to such a file's page with
// SIGBUS, which kills kvd: the write goes no further, as for a file made
// read-only, and the reopen serves the database read-only.
func (id *fileIdentity) sharedMemoryFrozen() bool {
	shm, ok := lookUp(id.path + "-shm")
	if ok && shm.access.attrs != 0 {
		id.madeReadOnly.Store(true)
		return true
	}
	return false
}

// noteLog records the log the writer opened, and its access then.
func (id *fileIdentity) noteLog(writer *sqlite3.Conn) error {
	wal, err := openedFile(writer, sqlite3.FCNTL_JOURNAL_POINTER)
	if err != nil {
		return err
	}
	id.wal = wal
	if now, ok := lookUp(id.walPath); ok && now.is(wal) {
		id.walAccess = now.access
	}
	return nil
}

// checkForRead fails a read once the file was found replaced, and looks
// at the path again when the last look is older than identityCheckInterval.
func (id *fileIdentity) checkForRead() error {
	if id.replaced.Load() {
		return errReplaced
	}
	if id.logCut.Load() {
		return errLogCut
	}
	if id.fileCut.Load() {
		return errFileCut
	}
	now, last := time.Now().UnixNano(), id.checkedAt.Load()
	if id.file == nil || now-last < int64(identityCheckInterval) || !id.checkedAt.CompareAndSwap(last, now) {
		return nil // nothing to compare, looked at lately, or another read looks now
	}
	file, ok := lookUp(id.path)
	if !ok || !file.is(id.file) {
		return id.fail()
	}
	if id.cut(file) {
		return errFileCut
	}
	return nil
}

// readFailed looks, when a read failed on the database's files, whether
// its log was truncated in place: reads find it before writes do when
// the log loses frames they need. The store then closes as after a write
// that found it, and the read is a 503 to retry on the database opened
// afresh; any other failure stays what it was.
func (id *fileIdentity) readFailed(err error) error {
	if err == nil || !errors.Is(err, sqlite3.IOERR) && !errors.Is(err, sqlite3.CORRUPT) || id.logIntact() {
		return err
	}
	return errLogCut
}

// logIntact reports whether a checkpoint may copy the log into the
// database file: not once it was found truncated in place, which would
// copy what is left of the cut commit over pages that hold older ones.
func (id *fileIdentity) logIntact() bool {
	if id.logCut.Load() {
		return false
	}
	if logShorterThanIndex(id.path) {
		id.logCut.Store(true)
		return false
	}
	return true
}

// logShorterThanIndex reports whether the -wal of the database at path is
// shorter than the frames its WAL-index (the -shm file SQLite maps) counts
// in it. SQLite writes a commit's frames before it publishes their count,
// and a count only falls when the log starts over, so no log SQLite wrote
// is ever shorter. The index's header is kept twice; copies that differ
// are mid-update and tell nothing.
func logShorterThanIndex(path string) bool {
	shm, err := os.Open(path + "-shm")
	if err != nil {
		return false
	}
	defer shm.Close() // the index's locks are OFD locks, which this close leaves alone
	var hdr [2 * walIndexHeaderSize]byte
	if _, err := shm.ReadAt(hdr[:], 0); err != nil || !bytes.Equal(hdr[:walIndexHeaderSize], hdr[walIndexHeaderSize:]) || hdr[12] == 0 {
		return false
	}
	encoded := int64(binary.NativeEndian.Uint16(hdr[14:])) // 65,536 is stored as 1
	pageSize := encoded&0xfe00 | (encoded&1)<<16
	frames := int64(binary.NativeEndian.Uint32(hdr[16:]))
	wal, err := os.Stat(path + "-wal")
	return err == nil && frames > 0 && wal.Size() < walHeaderSize+frames*(walFrameHeaderSize+pageSize)
}

// The layout of SQLite's WAL and WAL-index (wal.c): the index begins with
// two copies of its header (version, unused, change counter, isInit,
// byte order, page size, frame count, ...), the log with its own header,
// and each frame of the log with one before its page.
const (
	walIndexHeaderSize = 48
	walHeaderSize      = 32
	walFrameHeaderSize = 24
)

// removeOldLog removes the log of a replaced file, once the writer has
// closed, if the path still names it: it belongs to the old file, and the
// next open would replay its commits into the new one (SQLite neither
// checkpoints nor deletes the log of a file that moved; the writer's
// close copied it into the old file first, checkpointMovedFile).
func (id *fileIdentity) removeOldLog() {
	if id.replaced.Load() && id.wal != nil && names(id.walPath, id.wal) {
		os.Remove(id.walPath)
	}
}

// names reports whether path, its last element not followed, is file. A
// path that cannot be looked at does not name it: nothing can be
// acknowledged that kvd cannot vouch for.
func names(path string, file fs.FileInfo) bool {
	now, ok := lookUp(path)
	return ok && now.is(file)
}

// openedFile is what the file of conn's database (FCNTL_FILE_POINTER) or
// of its log (FCNTL_JOURNAL_POINTER) is on disk now.
func openedFile(conn *sqlite3.Conn, which sqlite3.FcntlOpcode) (fs.FileInfo, error) {
	ptr, err := conn.FileControl("main", which)
	if err != nil {
		return nil, err
	}
	f, _ := ptr.(vfs.File)
	for {
		switch file := f.(type) {
		case interface{ Stat() (fs.FileInfo, error) }:
			return file.Stat()
		case interface{ Unwrap() vfs.File }:
			f = file.Unwrap()
		default:
			return nil, errNotAnOSFile
		}
	}
}

var errNotAnOSFile = &fs.PathError{Op: "fstat", Path: "database", Err: fs.ErrInvalid}

// Unchanged reports whether now is still the file was (nil: none): the
// same inode, size and modification time.
func Unchanged(was, now fs.FileInfo) bool {
	return was != nil && os.SameFile(was, now) && was.Size() == now.Size() && was.ModTime().Equal(now.ModTime())
}
