package sqlitekv

import (
	"net/url"
	"path/filepath"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// The writer's WAL file gathers the frames of a commit in memory and
// writes them with one pwrite (one a megabyte) when SQLite syncs it at
// the commit, instead of two pwrites per frame (a header and a page): a
// batch-set commit writes a thousand frames or more, and their syscalls
// were a fifth of the writer's CPU.
//
// That is safe because with synchronous=FULL SQLite syncs the WAL at
// every commit before it makes the commit visible (wal.c, sqlite3WalFrames:
// frames, then sync, then the WAL-index), so no other connection ever
// reads a frame still in the buffer; the writer's own reads of one (a
// page spilled from its cache mid-transaction) write the buffer first.
// So the writer always runs with synchronous=FULL. With --sync normal it
// also sets checkpoint_fullfsync, which makes a checkpoint's syncs
// SYNC_FULL while a commit's stay SYNC_NORMAL (pager.c,
// sqlite3PagerSetFlags), and its VFS writes the buffer at a commit's sync
// but leaves out the fsync: what SQLite's synchronous=NORMAL does, which
// fsyncs the WAL only before a checkpoint copies it into the database.
// Without powersafe overwrite SQLite would pad a commit to a sector
// boundary and write the last frame's tail after the sync: such a WAL is
// not buffered (the OS VFS declares it unless a URI says psow=0). A
// transaction that ends without a commit leaves in the buffer the frames
// SQLite spilled from its cache: they are dropped then (the writer's
// rollback hook, a failed savepoint outside a group) and at Close, never
// written.

// The OS VFS with buffered WAL files, for each sync mode.
var walBufferVFS = map[SyncMode]string{SyncFull: "kvd-wal-full", SyncNormal: "kvd-wal-normal"}

// walBufferLimit bounds the buffer: a larger commit writes as it goes, a
// megabyte (256 frames) a pwrite, which costs no more than one. The
// buffer is kept while its database is open, and a bound of 16 MiB made
// one 9 MiB value (its frames written twice, as the value and as its
// history version) allocate 55 MB of buffers that were garbage at once.
const walBufferLimit = 1 << 20

// A growing WAL is extended with zeros walReserve ahead of its frames.
// A frame written where the file has no blocks yet makes its commit's
// fsync allocate them and write the inode's new size: on ext4 two more
// waits for the disk in every commit while the WAL grows, which is its
// first writerCheckpointPages pages after each start of kvd, most of a
// short benchmark. Frames written over zeros only replace data. The
// zeros are safe in SQLite's log: it reads a WAL only up to the first
// frame whose salts and checksum fail, as it does the stale frames a
// restarted WAL leaves past its end. A WAL is extended only once its
// frames reach walReserve, so that the many databases that see a few
// writes each keep small logs: the reserve never more than doubles one.
const walReserve = 1 << 20

var walZeros = make([]byte, walReserve)

func init() {
	registerWALBuffering("", vfs.Find("os").(vfs.VFSFilename))
}

// registerWALBuffering registers, for each sync mode, the VFS that buffers
// the WAL of files reached through base, known as under ("" for the OS's;
// a test's simulated disk otherwise).
func registerWALBuffering(under string, base vfs.VFSFilename) {
	for mode := range walBufferVFS {
		vfs.Register(walBufferVFSName(mode, under), walBuffering{base, mode == SyncFull})
	}
}

func walBufferVFSName(mode SyncMode, under string) string { return vfsOver(walBufferVFS[mode], under) }

// vfsOver is the name of kvd's VFS layer name over the VFS under ("" for
// the OS's: then the layer's own name).
func vfsOver(name, under string) string {
	if under == "" {
		return name
	}
	return name + "-over-" + under
}

// bufferedWALURI names the database at an absolute path for the writer of
// sync mode, its files reached through the VFS under ("" for the OS's).
func bufferedWALURI(path string, mode SyncMode, under string) string {
	return fileURI(path, walBufferVFSName(mode, under))
}

func fileURI(path, vfsName string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "vfs=" + vfsName}
	return u.String()
}

// fileName names the database at an absolute path for the background
// checkpointer: the bare path, unless a test put its files under another
// VFS. (The writer's name is bufferedWALURI, the readers' readerName.)
func fileName(path, vfsName string) (string, sqlite3.OpenFlag) {
	if vfsName == "" {
		return path, 0
	}
	return fileURI(path, vfsName), sqlite3.OPEN_URI
}

type walBuffering struct {
	vfs.VFSFilename
	fsyncCommits bool
}

func (v walBuffering) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	f, flags, err := v.VFSFilename.OpenFilename(name, flags)
	noteOpenFailure(err)
	switch {
	case err != nil && name == nil && noRoomIn(tempFolder(), minRoom):
		// No inode left for it (the driver says IOERR_GETTEMPPATH).
		err = vfs.SystemError(err, sqlite3.FULL)
	case err != nil:
	case name == nil:
		f = tempFile{f}
	case flags&vfs.OPEN_WAL != 0 && name.DatabaseFile().DeviceCharacteristics()&vfs.IOCAP_POWERSAFE_OVERWRITE != 0:
		f = &bufferedWAL{File: f, fsyncCommits: v.fsyncCommits, reserveAhead: true}
	}
	return f, flags, err
}

// bufferedWAL holds the bytes written since the last sync, as long as
// each write continues the one before.
type bufferedWAL struct {
	vfs.File
	at           int64 // offset of buf in the file
	buf          []byte
	fsyncCommits bool  // --sync full: a commit's sync (SYNC_NORMAL) fsyncs too
	reserveAhead bool  // extend the file with zeros ahead of the frames
	reserved     int64 // the file reaches at least this far
	cut          bool  // the file was found truncated under SQLite (checkNotCut)
	lastFrameAt  int64 // offset of the last frame header written
	newFrames    bool  // frames written since the last sync: a commit's, the commit frame last
}

// walFrameHeader is the size of a WAL frame's header, which SQLite writes
// apart from the frame's page (wal.c, walWriteOneFrame).
const walFrameHeader = 24

func (f *bufferedWAL) Unwrap() vfs.File { return f.File }

func (f *bufferedWAL) WriteAt(p []byte, off int64) (int, error) {
	if len(p) == walFrameHeader {
		f.lastFrameAt, f.newFrames = off, true
	}
	if len(f.buf) > 0 && (off != f.at+int64(len(f.buf)) || len(f.buf)+len(p) > walBufferLimit) {
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	if len(f.buf) == 0 {
		f.at = off
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *bufferedWAL) ReadAt(p []byte, off int64) (int, error) {
	if len(f.buf) > 0 && off < f.at+int64(len(f.buf)) && f.at < off+int64(len(p)) {
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	return f.File.ReadAt(p, off)
}

func (f *bufferedWAL) Sync(flags vfs.SyncFlag) error {
	commit := f.newFrames
	f.newFrames = false
	if err := f.flush(); err != nil {
		return err
	}
	if !f.fsyncCommits && flags&vfs.SYNC_FULL != vfs.SYNC_FULL {
		return nil // a commit's, under --sync normal
	}
	err := f.File.Sync(flags)
	if err != nil && commit && f.fsyncCommits {
		f.unmarkCommit()
	}
	return fullDisk(err)
}

// unmarkCommit zeroes the header of a commit frame whose fsync failed.
// SQLite then fails the commit and leaves the frames past the log's end,
// to be written over by the next commit; but they are whole, commit mark
// included, and a crash or a reopen (after a close whose checkpoint
// failed) before that would read them back in: the client told its write
// was not saved would find it there, a refused DELETE done. A frame with
// a zeroed header fails its salts, and SQLite reads a log only up to the
// first such frame. The fsync after it is all that can be tried: if it
// fails too, the disk holds whatever it does.
func (f *bufferedWAL) unmarkCommit() {
	if _, err := f.File.WriteAt(walZeros[:walFrameHeader], f.lastFrameAt); err == nil {
		f.File.Sync(vfs.SYNC_NORMAL)
	}
}

func (f *bufferedWAL) Size() (int64, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.Size()
}

func (f *bufferedWAL) Truncate(size int64) error {
	if err := f.flush(); err != nil {
		return err
	}
	f.reserved = min(f.reserved, size)
	return f.File.Truncate(size)
}

// Close drops the buffer: a commit writes its frames at its sync, so what
// is left is a transaction's that never committed.
func (f *bufferedWAL) Close() error {
	f.discard()
	return f.File.Close()
}

func (f *bufferedWAL) discard() { f.buf, f.newFrames = f.buf[:0], false }

// discardUncommittedFrames drops what conn's WAL buffer holds once its
// transaction ended without a commit: frames that SQLite spilled from its
// cache and abandoned. Written later, they could land on frames that
// another connection has committed since at the same place.
func discardUncommittedFrames(conn *sqlite3.Conn) {
	if f, err := conn.FileControl("main", sqlite3.FCNTL_JOURNAL_POINTER); err == nil {
		if b, ok := f.(*bufferedWAL); ok {
			b.discard()
		}
	}
}

// flush writes the buffer. A failed write drops it: SQLite fails the
// transaction, and what lies past the WAL's last commit is never read.
func (f *bufferedWAL) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	if err := f.checkNotCut(); err != nil {
		f.buf = f.buf[:0]
		return err
	}
	_, err := f.File.WriteAt(f.buf, f.at)
	if err == nil {
		f.reserve(f.at + int64(len(f.buf))) // after the frames: on a full disk the zeros must not take their room
	}
	f.buf = f.buf[:0]
	return fullDisk(err)
}

// checkNotCut refuses to write frames after a hole. A WAL truncated in
// place under kvd (: > app.db-wal) has lost the frames SQLite counts in
// it; written on regardless, the next frames would leave zeros where
// those were, which readers take for a corrupt database and a checkpoint
// copies over the database file, page 1 included: every key lost. Frames
// that continue a log (written past its header) follow every byte before
// them, so a file that ends short of them was cut. The commit fails then,
// nothing is written, and the writer closes without checkpointing
// (Writer.close), which leaves the database file as its last checkpoint
// made it. The size comes from lseek, which leaves the file's times unseen
// (inode_linux.go).
func (f *bufferedWAL) checkNotCut() error {
	if f.at == 0 {
		return nil
	}
	size, err := f.File.Size()
	if err != nil {
		return err
	}
	if size < f.at {
		f.cut = true
		return errLogCut
	}
	return nil
}

// logWasCut reports whether conn's WAL was found truncated in place.
func logWasCut(conn *sqlite3.Conn) bool {
	f, err := conn.FileControl("main", sqlite3.FCNTL_JOURNAL_POINTER)
	b, ok := f.(*bufferedWAL)
	return err == nil && ok && b.cut
}

// reserve makes sure, once frames are written up to end (past
// walReserve), that the file reaches at least half of walReserve past
// them; if not, it extends the file with zeros to walReserve past them.
// It never writes over a byte the file holds. A failure (a full disk)
// only leaves the WAL to grow as it would have.
func (f *bufferedWAL) reserve(end int64) {
	if !f.reserveAhead || end < walReserve || end+walReserve/2 <= f.reserved {
		return
	}
	size, err := f.File.Size()
	if err != nil {
		return
	}
	if f.reserved = size; end+walReserve/2 <= size {
		return
	}
	from := max(size, end)
	n, _ := f.File.WriteAt(walZeros[:end+walReserve-from], from)
	f.reserved = from + int64(n)
}

// fullDisk hands a full disk (ENOSPC, EDQUOT) to SQLite as SQLITE_FULL.
// The OS VFS reports it as an I/O error (it looks for a bare errno, and
// gets one wrapped in an *os.PathError), and the errno it carries is
// overwritten by SQLite's next calls (the rollback's) before the error
// reaches kvd: a client would learn of a disk I/O error, not of a full
// disk that freeing space mends.
func fullDisk(err error) error {
	if err != nil && storageFull(err) {
		return vfs.SystemError(err, sqlite3.FULL)
	}
	return err
}
