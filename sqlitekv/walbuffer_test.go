package sqlitekv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// memFile is a WAL file in memory that counts what reaches it.
type memFile struct {
	data          []byte
	writes, syncs int
	synced        []byte // data at the last sync: what a power loss keeps
	closed        bool
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.writes++
	if end := int(off) + len(p); end > len(m.data) {
		m.data = append(m.data, make([]byte, end-len(m.data))...)
	}
	return copy(m.data[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) Sync(vfs.SyncFlag) error {
	m.syncs++
	m.synced = bytes.Clone(m.data)
	return nil
}

func (m *memFile) Truncate(size int64) error                       { m.data = m.data[:size]; return nil }
func (m *memFile) Size() (int64, error)                            { return int64(len(m.data)), nil }
func (m *memFile) Close() error                                    { m.closed = true; return nil }
func (m *memFile) Lock(vfs.LockLevel) error                        { return nil }
func (m *memFile) Unlock(vfs.LockLevel) error                      { return nil }
func (m *memFile) CheckReservedLock() (bool, error)                { return false, nil }
func (m *memFile) SectorSize() int                                 { return 4096 }
func (m *memFile) DeviceCharacteristics() vfs.DeviceCharacteristic { return 0 }

func write(t *testing.T, f vfs.File, off int64, s string) {
	t.Helper()
	if n, err := f.WriteAt([]byte(s), off); err != nil || n != len(s) {
		t.Fatalf("write %q at %d: %d, %v", s, off, n, err)
	}
}

func read(t *testing.T, f vfs.File, off int64, n int) string {
	t.Helper()
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off); err != nil && err != io.EOF {
		t.Fatalf("read %d at %d: %v", n, off, err)
	}
	return string(p)
}

// A commit's frames reach the file as one write, at the latest when
// SQLite syncs it, and always before the sync itself.
func TestBufferedWAL_ACommitIsOneWriteBeforeItsSync(t *testing.T) {
	m := &memFile{}
	f := &bufferedWAL{File: m}
	write(t, f, 0, "head")
	write(t, f, 4, "frame1")
	write(t, f, 10, "frame2")
	if m.writes != 0 {
		t.Fatalf("before the sync: got %d writes to the file, want 0", m.writes)
	}
	if err := f.Sync(vfs.SYNC_FULL); err != nil {
		t.Fatal(err)
	}
	if m.writes != 1 || string(m.synced) != "headframe1frame2" {
		t.Fatalf("after the sync: %d writes, synced %q; want 1 write, headframe1frame2", m.writes, m.synced)
	}
}

// Whatever reads the file through the buffer sees what was written, in
// the order it was written, as if there were no buffer.
func TestBufferedWAL_ReadsSeeEveryWrite(t *testing.T) {
	m := &memFile{}
	f := &bufferedWAL{File: m}
	write(t, f, 0, "aaaa")
	write(t, f, 4, "bbbb")
	if got := read(t, f, 2, 4); got != "aabb" {
		t.Errorf("read across the buffer: got %q, want aabb", got)
	}
	write(t, f, 8, "cccc")
	write(t, f, 2, "XX") // not a continuation: the buffer goes first
	if got := read(t, f, 0, 12); got != "aaXXbbbbcccc" {
		t.Errorf("after an overwrite: got %q, want aaXXbbbbcccc", got)
	}
	write(t, f, 12, "dd")
	if size, err := f.Size(); err != nil || size != 14 {
		t.Errorf("size: got %d, %v, want 14", size, err)
	}
	write(t, f, 14, "ee")
	if err := f.Truncate(6); err != nil {
		t.Fatal(err)
	}
	if string(m.data) != "aaXXbb" {
		t.Errorf("after truncate: file holds %q, want aaXXbb", m.data)
	}
	write(t, f, 6, "ff") // never synced: a transaction that did not commit
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if string(m.data) != "aaXXbb" || !m.closed {
		t.Errorf("after close: file holds %q (closed %v), want aaXXbb", m.data, m.closed)
	}
}

// A commit larger than the buffer's bound is written as it goes, and the
// buffer never grows much past the bound.
func TestBufferedWAL_BoundsItsMemory(t *testing.T) {
	m := &memFile{}
	f := &bufferedWAL{File: m}
	frame := make([]byte, 4096)
	for i := range 3 * walBufferLimit / len(frame) {
		if _, err := f.WriteAt(frame, int64(i*len(frame))); err != nil {
			t.Fatal(err)
		}
		if cap(f.buf) > walBufferLimit*3/2 {
			t.Fatalf("after %d frames the buffer holds %d bytes of room, want about %d at most", i+1, cap(f.buf), walBufferLimit)
		}
	}
	if m.writes != 2 || len(f.buf) != walBufferLimit {
		t.Errorf("got %d writes and %d bytes held, want 2 writes and %d bytes held", m.writes, len(f.buf), walBufferLimit)
	}
}

// The writer buffers its WAL in either sync mode; with normal, a commit's
// sync leaves out the fsync, and the checkpoints' syncs are told apart
// from the commits' by checkpoint_fullfsync.
func TestBufferedWAL_TheWriterBuffersInEitherMode(t *testing.T) {
	for mode, fsyncCommits := range map[SyncMode]bool{SyncFull: true, SyncNormal: false} {
		s, _ := mustOpenStore(t, Options{Sync: mode})
		put(t, s, "k", "v") // opens the WAL
		conn := s.Writer().conn
		wal, err := conn.FileControl("main", sqlite3.FCNTL_JOURNAL_POINTER)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := wal.(*bufferedWAL)
		if !ok || b.fsyncCommits != fsyncCommits {
			t.Errorf("sync %v: got %T (%+v), want a buffered WAL that fsyncs commits %v", mode, wal, b, fsyncCommits)
		}
		checkpointFullfsync := int64(1)
		if fsyncCommits {
			checkpointFullfsync = 0
		}
		for pragma, want := range map[string]int64{"synchronous": 2, "checkpoint_fullfsync": checkpointFullfsync} {
			stmt, _, err := conn.Prepare("PRAGMA " + pragma)
			if err != nil {
				t.Fatal(err)
			}
			if !stmt.Step() || stmt.ColumnInt64(0) != want {
				t.Errorf("sync %v: PRAGMA %s is %d, want %d", mode, pragma, stmt.ColumnInt64(0), want)
			}
			stmt.Close()
		}
	}
}

// Under --sync normal a commit's sync writes the buffer out, so readers
// find the frames, but does not fsync; a checkpoint's sync does.
func TestBufferedWAL_NormalFsyncsOnlyBeforeCheckpoints(t *testing.T) {
	m := &memFile{}
	f := &bufferedWAL{File: m}
	write(t, f, 0, "frames")
	must(t, f.Sync(vfs.SYNC_NORMAL))
	if string(m.data) != "frames" || m.syncs != 0 {
		t.Fatalf("after a commit's sync: file holds %q, %d fsyncs; want frames, 0", m.data, m.syncs)
	}
	must(t, f.Sync(vfs.SYNC_FULL))
	if m.syncs != 1 {
		t.Fatalf("after a checkpoint's sync: %d fsyncs, want 1", m.syncs)
	}
}

// The writer names its database by URI: a path with URI syntax in it
// still names the same file.
func TestBufferedWAL_URIOfAnOddPathNamesTheSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b%41?x=1#frag ü.db")
	s, err := Open(path, true, Options{Sync: SyncFull})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not where its path says: %v", err)
	}
}

// Without powersafe overwrite SQLite writes a commit's last bytes after
// its sync: the WAL of such a database is not buffered.
func TestBufferedWAL_NotWithoutPowersafeOverwrite(t *testing.T) {
	uri := bufferedWALURI(filepath.Join(t.TempDir(), "t.db"), SyncFull, "")
	for psow, want := range map[string]bool{"1": true, "0": false} {
		conn, err := sqlite3.OpenFlags(uri+"&psow="+psow, sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_URI)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Exec(`PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS t (x); INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		wal, err := conn.FileControl("main", sqlite3.FCNTL_JOURNAL_POINTER)
		if err != nil {
			t.Fatal(err)
		}
		if _, buffered := wal.(*bufferedWAL); buffered != want {
			t.Errorf("psow=%s: got a buffered WAL %v, want %v", psow, buffered, want)
		}
		conn.Close()
	}
}

// A group bigger than the page cache spills frames into the buffer; when
// it rolls back they are dropped, not written later over frames that
// another connection has committed at the same place meanwhile.
func TestBufferedWAL_ARolledBackGroupLeavesNothingToWrite(t *testing.T) {
	s, other := spillAGroup(t)
	s.Writer().abandon()
	commitElsewhere(t, other)
	put(t, s, "after", "1")
	checkIntegrity(t, other)
}

// spillAGroup opens a store with a small page cache and leaves its writer
// in a group that has spilled frames into the WAL buffer, and opens
// another connection to the same file, as another program would.
func spillAGroup(t *testing.T) (*Store, *sqlite3.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := Open(path, true, Options{Sync: SyncFull, CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := s.Writer()
	put(t, s, "seed", "0")
	mustBegin(t, w)
	big := strings.Repeat("x", 3000)
	for i := range 200 {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: fmt.Sprint("k", i), Value: []byte(big)}); err != nil {
			t.Fatal(err)
		}
	}
	other, err := sqlite3.Open(path)
	must(t, err)
	t.Cleanup(func() { other.Close() })
	return s, other
}

// commitElsewhere commits frames where the spilled ones lay.
func commitElsewhere(t *testing.T, other *sqlite3.Conn) {
	t.Helper()
	must(t, other.Exec(`PRAGMA wal_autocheckpoint = 0; CREATE TABLE other (x); INSERT INTO other SELECT randomblob(3000) FROM generate_series(1, 100)`))
}

// Readers and the checkpointer open the same file as the writer, whose
// name is a URI, also when the path they were given is relative, even
// one that SQLite would read as a URI.
func TestOpen_ARelativePathIsOneFileForEveryConnection(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Open("file:rel.db", true, Options{Sync: SyncFull})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "v")
	e, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: "k"})
	if err != nil || string(e.Value) != "v" {
		t.Errorf("read back: got %q, %v, want v", e.Value, err)
	}
	must(t, s.Close())
	if _, err := os.Stat("file:rel.db"); err != nil {
		t.Errorf("file:rel.db: %v", err)
	}
}

// The same when SQLite rolls the group back by itself (a ROLLBACK stands
// in for an I/O error here) and the group's next statement reads the WAL
// before anything rolls back on kvd's side.
func TestBufferedWAL_AGroupSQLiteRolledBackLeavesNothingToWrite(t *testing.T) {
	s, other := spillAGroup(t)
	w := s.Writer()
	must(t, w.conn.Exec(`ROLLBACK`))
	commitElsewhere(t, other)
	if err := w.EnsureTable("t2"); CodeOf(err) != CodeDatabaseError {
		t.Errorf("a table made in the lost group: got %v, want a database error", err)
	}
	if err := w.Commit(); CodeOf(err) != CodeDatabaseError {
		t.Errorf("commit: got %v, want a database error", err)
	}
	if tables, err := w.listTables(); err != nil || len(tables) != 1 {
		t.Errorf("tables: got %v, %v, want only %s", tables, err, DefaultTable)
	}
	checkIntegrity(t, other)
}

// A growing WAL is extended with zeros ahead of its frames once they
// reach the reserve's size, so that most commits write over blocks the
// file has; it is extended again when the frames come within half the
// reserve of its end. A small WAL is left as it is.
func TestBufferedWAL_ReservesZerosAheadOfItsFrames(t *testing.T) {
	m := &memFile{}
	f := &bufferedWAL{File: m, reserveAhead: true}
	at := int64(0)
	commit := func(n int) {
		t.Helper()
		if _, err := f.WriteAt(bytes.Repeat([]byte{'f'}, n), at); err != nil {
			t.Fatal(err)
		}
		at += int64(n)
		must(t, f.Sync(vfs.SYNC_FULL))
	}
	commit(walReserve - 10)
	if len(m.data) != walReserve-10 || m.writes != 1 {
		t.Fatalf("a WAL short of the reserve: %d bytes in %d writes; want %d in 1", len(m.data), m.writes, walReserve-10)
	}
	commit(10)
	if len(m.data) != 2*walReserve || m.writes != 3 || !bytes.Equal(m.data[walReserve:], walZeros) {
		t.Fatalf("a WAL that reached the reserve: %d bytes in %d writes; want %d in 3, zeros past the frames", len(m.data), m.writes, 2*walReserve)
	}
	commit(walReserve / 4)
	commit(walReserve / 4) // now within half the reserve of the end
	if len(m.data) != 2*walReserve || m.writes != 5 {
		t.Fatalf("after commits within the reserve: %d bytes in %d writes; want %d in 5", len(m.data), m.writes, 2*walReserve)
	}
	commit(walReserve / 4)
	if want := int(at) + walReserve; len(m.data) != want || m.writes != 7 {
		t.Fatalf("after a commit past half the reserve: %d bytes in %d writes; want %d in 7", len(m.data), m.writes, want)
	}
	if got := m.data[at-1 : at+1]; string(got) != "f\x00" {
		t.Fatalf("the frames end in %q, want f then a zero", got)
	}
}

// Zeros go only past the file's end: the stale frames of a WAL that
// started over, or another writer's, are never written over.
func TestBufferedWAL_ReservesOnlyPastTheFilesEnd(t *testing.T) {
	stale := bytes.Repeat([]byte{'s'}, 2*walReserve)
	m := &memFile{data: bytes.Clone(stale)}
	f := &bufferedWAL{File: m, reserveAhead: true}
	want := bytes.Clone(stale)
	commit := func(at int, frames string) {
		t.Helper()
		write(t, f, int64(at), frames)
		must(t, f.Sync(vfs.SYNC_FULL))
		copy(want[at:], frames)
	}
	commit(walReserve, "past the reserve, far from the end")
	if m.writes != 1 || !bytes.Equal(m.data, want) {
		t.Fatalf("frames far from a long WAL's end: %d writes, %d bytes; want 1 write, the rest kept", m.writes, len(m.data))
	}
	commit(len(stale)-10, "near") // within half the reserve of the end
	want = append(want, walZeros[:len(stale)-6+walReserve-len(want)]...)
	if !bytes.Equal(m.data, want) {
		t.Fatalf("after frames near the end: %d bytes, want %d: the file's bytes kept, zeros past its old end", len(m.data), len(want))
	}
}

// On disk, a busy writer's WAL holds written blocks ahead of its
// commits, and a copy of the files taken then, as a power cut leaves
// them, opens with every committed write: SQLite's recovery stops at the
// zeros. A database that saw a few small writes keeps a small WAL.
func TestBufferedWAL_AReservedWALRecoversEveryCommit(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	put(t, s, "small", "v")
	wal := s.path + "-wal"
	info, err := os.Stat(wal)
	must(t, err)
	if info.Size() >= walReserve/2 {
		t.Fatalf("WAL of %d bytes after one small write, want it small", info.Size())
	}
	put(t, s, "big", strings.Repeat("b", 2*walReserve)) // its history row (the one copy of a large value) passes the reserve
	info, err = os.Stat(wal)
	must(t, err)
	if st := info.Sys().(*syscall.Stat_t); info.Size() < 2*walReserve+walReserve/2 || st.Blocks*512 < info.Size() {
		t.Fatalf("WAL of %d bytes (%d in blocks) after 2 MiB of frames, want about 1 MiB more, written", info.Size(), st.Blocks*512)
	}
	for i := range 20 {
		put(t, s, fmt.Sprint("k", i), "v")
	}
	grown, err := os.Stat(wal)
	must(t, err)
	if grown.Size() != info.Size() {
		t.Fatalf("WAL went from %d bytes to %d over 20 small commits, want no growth", info.Size(), grown.Size())
	}

	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(s.path + suffix)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "copy.db"+suffix), data, 0o600))
	}
	copied, err := Open(filepath.Join(dir, "copy.db"), false, Options{})
	must(t, err)
	defer copied.Close()
	for _, key := range []string{"small", "big", "k0", "k19"} {
		if _, err := copied.Get(context.Background(), GetRequest{Table: DefaultTable, Key: key}); err != nil {
			t.Errorf("%s after recovery: %v", key, err)
		}
	}
}
