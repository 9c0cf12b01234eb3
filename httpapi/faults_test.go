package httpapi_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

func TestCorruption_DamagedDatabaseFailsAloneAndClearly(t *testing.T) {
	ts := newTestServer(t)
	// Build a database with the real storage code, then damage it on disk:
	// everything after the first page (the schema stays readable).
	path := filepath.Join(ts.DataDir, "broken.db")
	store, err := sqlitekv.Open(path, true, sqlitekv.Options{Sync: sqlitekv.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]sqlitekv.BatchItem, 100)
	for i := range items {
		items[i] = sqlitekv.BatchItem{Key: fmt.Sprintf("k%03d", i), Value: []byte(strings.Repeat("v", 200)), ContentType: "text/plain"}
	}
	if _, err := store.Writer().BatchSet(sqlitekv.BatchSetRequest{Table: "kv_store", Items: items}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	data, _ := os.ReadFile(path)
	for i := 4096; i < len(data); i++ {
		data[i] = 0xAB
	}
	os.WriteFile(path, data, 0o600)
	ts.do(t, "PUT", kv("k", "db=healthy&create_db_if_missing=true"), "fine")

	for _, r := range []response{
		ts.do(t, "GET", kv("k001", "db=broken"), ""),
		ts.do(t, "PUT", kv("k001", "db=broken"), "x"),
		ts.do(t, "GET", "/api/v1/sqlite/kv?db=broken", ""),
	} {
		wantError(t, r, 500, "DATABASE_ERROR")
		if msg := r.JSON(t)["message"]; msg != "Database file is corrupt" {
			t.Fatalf("message: got %q, want Database file is corrupt", msg)
		}
		if r.Header.Get("X-Request-Id") == "" || strings.Contains(string(r.Body), "SELECT") {
			t.Fatalf("500 must carry a request id and no SQL: %v %s", r.Header, r.Body)
		}
	}
	if got := string(ts.do(t, "GET", kv("k", "db=healthy"), "").Body); got != "fine" {
		t.Fatalf("other database after the corrupt one: got %q", got)
	}
	wantStatus(t, ts.do(t, "PUT", kv("k2", "db=healthy"), "still"), 200)
	os.Remove(path) // the cleanup's integrity check is for databases kvd keeps
}

func TestDiskFull_WritesFailClearlyReadsGoOnWritesResume(t *testing.T) {
	dir := smallDisk(t, "size=4m")
	// Room to free later: a filler file on the same small filesystem, as
	// large as what fills the rest, so that the close can then copy the
	// log into the file.
	filler := filepath.Join(dir, "filler")
	os.WriteFile(filler, make([]byte, 5<<19), 0o600)

	ts := newTestServer(t, dataIn(t, dir), func(_ *actors.Config, h *httpapi.Config) {
		h.MaxValueBytes = 64 << 10
	})
	ts.do(t, "PUT", kv("first", "db=app&create_db_if_missing=true"), "kept")
	value := strings.Repeat("z", 60<<10)
	full := false
	written := 0
	for i := 0; i < 100 && !full; i++ {
		r := ts.do(t, "PUT", kv(fmt.Sprintf("big%d", i), "db=app&history=false"), value)
		switch r.Status {
		case 200:
			written++
		case 507:
			wantError(t, r, 507, "STORAGE_FULL")
			if msg := r.JSON(t)["message"]; msg != "Disk is full: the write was not saved" {
				t.Fatalf("disk-full message: got %q", msg)
			}
			full = true
		default:
			t.Fatalf("write on a full disk: %d %s", r.Status, r.Body)
		}
	}
	if !full {
		t.Fatal("the 4 MiB filesystem never filled up")
	}
	// Reads go on.
	if got := string(ts.do(t, "GET", kv("first", "db=app"), "").Body); got != "kept" {
		t.Fatalf("read on a full disk: got %q", got)
	}
	wantStatus(t, ts.do(t, "GET", "/healthz", ""), 200)
	// Free space: writes resume.
	os.Remove(filler)
	wantStatus(t, ts.do(t, "PUT", kv("after", "db=app"), "small"), 200)
	if got := string(ts.do(t, "GET", kv("after", "db=app"), "").Body); got != "small" {
		t.Fatalf("write after freeing space: got %q", got)
	}
	// Every acknowledged big write is intact.
	for i := range written {
		if r := ts.do(t, "HEAD", kv(fmt.Sprintf("big%d", i), "db=app"), ""); r.Status != 200 {
			t.Fatalf("acknowledged big%d after disk full: %d", i, r.Status)
		}
	}
	// newTestServer's cleanup runs PRAGMA integrity_check on app.db.
}

// A shutdown on a full disk cannot copy the log into the database file;
// SQLite's close would say nothing of it. kvd's close says so, and the
// log, left beside the file, brings every acknowledged write back.
func TestDiskFull_AtCloseTheLogStaysAndIsSaid(t *testing.T) {
	dir := smallDisk(t, "size=4m")
	filler := filepath.Join(dir, "filler") // the room the replay's copy needs
	os.WriteFile(filler, make([]byte, 5<<19), 0o600)
	serve := func() *testServer {
		return newTestServer(t, dataIn(t, dir), func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 64 << 10 })
	}
	ts := serve()
	ts.do(t, "PUT", kv("first", "db=app&create_db_if_missing=true"), "kept")
	value := strings.Repeat("z", 60<<10)
	written := 0
	for i := 0; i < 100; i++ {
		r := ts.do(t, "PUT", kv(fmt.Sprintf("big%d", i), "db=app&history=false"), value)
		if r.Status == 507 {
			break
		}
		wantStatus(t, r, 200)
		written++
	}
	err := ts.Registry.Close()
	if err == nil || !strings.Contains(err.Error(), "stays beside it for the next open to replay") {
		t.Fatalf("closing on a full disk: got %v, want the log kept said", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.db-wal")); err != nil {
		t.Fatalf("the log after a close on a full disk: %v", err)
	}

	os.Remove(filler)
	again := serve()
	if got := string(again.do(t, "GET", kv("first", "db=app"), "").Body); got != "kept" {
		t.Fatalf("first after the replay: got %q", got)
	}
	for i := range written {
		if r := again.do(t, "GET", kv(fmt.Sprintf("big%d", i), "db=app"), ""); r.Status != 200 || string(r.Body) != value {
			t.Fatalf("acknowledged big%d after the replay: %d, %d bytes", i, r.Status, len(r.Body))
		}
	}
}

// In directory mode a value the full disk cannot take (its temp file)
// answers 507 before anything commits: the key keeps its file and its
// cache entry, and once space is freed the same write goes through.
func TestDiskFull_DirectoryModeFileWriteAnswers507(t *testing.T) {
	ts, mnt, q := tmpfsServer(t, "size=2m")
	wantStatus(t, ts.do(t, "PUT", kv("k", q), "before"), 200)
	free := fillDiskLeaving(t, mnt, 48<<10) // room for the cache's COMMIT, not for the value's file
	value := strings.Repeat("x", 128<<10)
	r := ts.do(t, "PUT", kv("k", q), value)
	wantError(t, r, 507, "STORAGE_FULL")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "no space left on device") {
		t.Fatalf("message: got %q, want it to say no space left on device", msg)
	}
	if got := ts.do(t, "GET", kv("k", q), ""); string(got.Body) != "before" || got.Header.Get("ETag") == "" {
		t.Fatalf("k on a full disk: got %q etag %q, want before with its version", got.Body, got.Header.Get("ETag"))
	}
	free()
	wantStatus(t, ts.do(t, "PUT", kv("k", q), value), 200)
	if fileOf(t, mnt, "k") != value {
		t.Fatal("k's file after space was freed: not the new value")
	}
}

// A database created on a full disk: 507, not 500, and no file left that
// would fail every later request; once there is room, the same create works.
func TestDiskFull_CreatingADatabaseAnswers507(t *testing.T) {
	dir := smallDisk(t, "size=1m")
	ts := newTestServer(t, dataIn(t, dir))
	free := fillDisk(t, dir)
	r := ts.do(t, "PUT", kv("k", "db=fresh&create_db_if_missing=true"), "v")
	wantError(t, r, 507, "STORAGE_FULL")
	if _, err := os.Stat(filepath.Join(dir, "fresh.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("fresh.db after a failed create: %v, want none", err)
	}
	free()
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=fresh&create_db_if_missing=true"), "v"), 200)
}

// With no inode free, opening a database cannot make its -wal or -shm,
// and SQLite says "cannot open" (CANTOPEN), not an I/O error: that is a
// full disk too, 507, for a read as for a write, and served again once an
// inode is free. (It answered 500.)
func TestDiskFull_NoInodeLeftAnswers507(t *testing.T) {
	dir := smallDisk(t, "size=16m,nr_inodes=16")
	writeDatabase(t, filepath.Join(dir, "app.db"), "k", "v") // closed: no -wal or -shm left
	ts := newTestServer(t, dataIn(t, dir))
	var fillers []string
	for i := 0; ; i++ {
		f := filepath.Join(dir, fmt.Sprint("filler", i))
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
		fillers = append(fillers, f)
	}
	for _, method := range []string{"GET", "PUT"} {
		r := ts.do(t, method, kv("k", "db=app"), "w")
		wantError(t, r, 507, "STORAGE_FULL")
	}
	for _, f := range fillers {
		os.Remove(f)
	}
	if r := ts.do(t, "GET", kv("k", "db=app"), ""); r.Status != 200 || string(r.Body) != "v" {
		t.Fatalf("with inodes free again: got %d %s, want v", r.Status, r.Body)
	}
}

// Out of file descriptors, kvd cannot open a database the client named
// rightly: that is kvd's state, not the client's mistake (no 400) nor a
// failure (no 500), and it passes: 503 OVERLOADED with Retry-After,
// saying "too many open files" without a path. With a few descriptors
// left, SQLite opens the database file and fails on its WAL or shared
// memory with the errno lost: that is told apart too. Once descriptors
// are free again, the same read is served.
func TestOutOfFiles_OpeningADatabaseAnswers503ToRetry(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	for room := range 12 {
		ts.Registry.CloseDB(filepath.Join(ts.DataDir, "app.db")) // the next request opens it again
		func() {
			// The client's connection is open and kept alive.
			defer filesLeft(t, room)()
			r := ts.do(t, "GET", kv("k", "db=app"), "")
			if r.Status == 200 {
				return // room enough to open it
			}
			wantError(t, r, 503, "OVERLOADED")
			if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "too many open files") || strings.Contains(msg, ts.DataDir) || r.Header.Get("Retry-After") == "" {
				t.Fatalf("%d descriptors left: message %q, Retry-After %q; want one that says too many open files, without a path, and a Retry-After", room, msg, r.Header.Get("Retry-After"))
			}
		}()
		if r := ts.do(t, "GET", kv("k", "db=app"), ""); r.Status != 200 || string(r.Body) != "v" {
			t.Fatalf("read once descriptors are free: got %d %s, want 200 v", r.Status, r.Body)
		}
	}
}

// A backup the disk has no room for answers 507 STORAGE_FULL, as a write
// does, not 500, and leaves no temporary copy behind; once there is room,
// the same backup is served.
func TestDiskFull_BackupAnswers507(t *testing.T) {
	dir := smallDisk(t, "size=2m")
	ts := newTestServer(t, dataIn(t, dir))
	// A database larger than the room left: its copy cannot fit.
	for i := range 4 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&history=false&create_db_if_missing=true"), strings.Repeat("v", 64<<10)), 200)
	}
	free := fillDiskLeaving(t, dir, 128<<10)
	r := ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", "")
	wantError(t, r, 507, "STORAGE_FULL")
	if msg := r.JSON(t)["message"]; !contains(msg, "the backup was not made") {
		t.Fatalf("message: got %q, want one that says the backup was not made", msg)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".kvd-backup-*")); len(left) > 0 {
		t.Fatalf("temporary backup files left: %q", left)
	}
	free()
	if r := ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", ""); r.Status != 200 || !strings.HasPrefix(string(r.Body), "SQLite format 3\x00") {
		t.Fatalf("backup once there is room: got %d, %d bytes", r.Status, len(r.Body))
	}
}

// A backup's copy is made on the database's disk, so a backup that would
// leave the writes less than 5% of that disk is refused (507) before it
// takes the room, even where the copy itself would fit: a few copies sent
// to slow clients would otherwise fill the disk and fail every write.
func TestDiskFull_BackupLeavesTheWritesRoom(t *testing.T) {
	dir := smallDisk(t, "size=8m")
	ts := newTestServer(t, dataIn(t, dir))
	for i := range 8 {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("k%d", i), "db=app&history=false&create_db_if_missing=true"), strings.Repeat("v", 64<<10)), 200)
	}
	files := sizeOf(t, filepath.Join(dir, "app.db")) + sizeOf(t, filepath.Join(dir, "app.db-wal"))
	free := fillDiskLeaving(t, dir, files+200<<10) // room for the copy, less than 5% (410 KiB) beside it

	r := ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", "")
	wantError(t, r, 507, "STORAGE_FULL")
	if msg := r.JSON(t)["message"]; !contains(msg, "5%") {
		t.Fatalf("message: got %q, want one that says what room the backup leaves", msg)
	}
	wantStatus(t, ts.do(t, "PUT", kv("after", "db=app"), "the writes still have room"), 200)
	free()
	if r := ts.do(t, "GET", "/api/v1/sqlite/db/backup?db=app", ""); r.Status != 200 || !strings.HasPrefix(string(r.Body), "SQLite format 3\x00") {
		t.Fatalf("backup once there is room: got %d, %d bytes", r.Status, len(r.Body))
	}
}

// An open that runs out of file descriptors closes the least recently
// used idle database and tries once more: with every descriptor in use
// but those of an idle database, a create of another answers 200.
func TestOutOfFiles_AnOpenMakesRoomByClosingAnIdleDatabase(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=idle&create_db_if_missing=true"), "v"), 200)
	wantStatus(t, ts.do(t, "GET", kv("k", "db=idle"), ""), 200) // a reader too: room enough for a new database once it closes
	restore := outOfFiles(t)
	r := ts.do(t, "PUT", kv("k", "db=fresh&create_db_if_missing=true"), "w")
	restore()
	wantStatus(t, r, 200)
	if got := string(ts.do(t, "GET", kv("k", "db=fresh"), "").Body); got != "w" {
		t.Fatalf("fresh after the create: got %q, want w", got)
	}
	if got := string(ts.do(t, "GET", kv("k", "db=idle"), "").Body); got != "v" {
		t.Fatalf("the database closed for room, opened again: got %q, want v", got)
	}
}

// smallDisk mounts a tmpfs with options ("size=2m") for a test of a full
// disk: root only, the test skips otherwise.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	// mode=0700: a tmpfs is 1777 by default, a folder kvd refuses to serve from.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// dataIn serves the databases of dir.
func dataIn(t *testing.T, dir string) serverOption {
	return func(a *actors.Config, _ *httpapi.Config) {
		r, err := sqlitekv.NewResolver(dir, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		a.Resolver = r
	}
}

// outOfFiles lowers this process's file limit to its lowest free
// descriptor: a new descriptor takes the lowest free number, so the next
// open fails with EMFILE. restore gives the limit back.
func outOfFiles(t *testing.T) (restore func()) { return filesLeft(t, 0) }

// filesLeft is outOfFiles leaving n descriptors above the lowest free one
// within the limit (those not in use can still be opened).
func filesLeft(t *testing.T, n int) (restore func()) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	free, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(free.Fd()) + uint64(n)
	free.Close()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	return func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
}

// A pipe a local user puts as an open database's -journal holds no read:
// a read connection opened since (here, one renewed after a large value)
// looks for a hot journal as its first read begins, and SQLite opens the
// -journal to look without O_NONBLOCK. The read VFS refuses to open it:
// the read fails (500) until the pipe goes, where it waited for a writer
// to the pipe, for good, as every read after it did.
func TestDatabaseFile_APipeAsAnOpenDatabasesJournalHoldsNoRead(t *testing.T) {
	ts := newTestServer(t, withMaxValue(4<<20))
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
	big := strings.Repeat("b", 2<<20)
	wantStatus(t, ts.do(t, "PUT", kv("big", "db=app"), big), 200)
	wantStatus(t, ts.do(t, "GET", kv("big", "db=app"), ""), 200) // its read connection is opened afresh
	journal := filepath.Join(ts.DataDir, "app.db-journal")
	if err := syscall.Mkfifo(journal, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a read waiting to open it (as before) opens it, then finds no pipe
		if f, err := os.OpenFile(journal, os.O_RDWR, 0); err == nil {
			os.Remove(journal)
			f.Close()
		}
	})
	answered := make(chan response, 1)
	go func() { answered <- ts.do(t, "GET", kv("k", "db=app"), "") }()
	select {
	case r := <-answered:
		wantError(t, r, 500, "DATABASE_ERROR")
	case <-time.After(5 * time.Second):
		t.Fatal("a GET still waits 5 s on the pipe")
	}
	os.Remove(journal)
	if got := ts.do(t, "GET", kv("k", "db=app"), ""); got.Status != 200 || string(got.Body) != "v" {
		t.Fatalf("once the pipe is gone: %d %q", got.Status, got.Body)
	}
}

// A database's -wal, -shm or -journal that a local user made a link or a
// pipe is refused, not opened: SQLite opens them by name, so it would
// write its log through a link, and a pipe as -journal hung every request
// of the database (and kvd's shutdown) for good.
func TestDatabaseFile_ASideFileThatIsNoPlainFileIsRefused(t *testing.T) {
	for _, c := range []struct {
		suffix string
		make   func(path string) error
	}{
		{"-journal", func(p string) error { return syscall.Mkfifo(p, 0o600) }},
		{"-wal", func(p string) error { return os.Symlink(filepath.Join(filepath.Dir(p), "elsewhere"), p) }},
		{"-shm", func(p string) error { return os.Mkdir(p, 0o700) }},
	} {
		t.Run(c.suffix, func(t *testing.T) {
			ts := newTestServer(t)
			wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "v"), 200)
			path := filepath.Join(ts.DataDir, "app.db")
			ts.Registry.CloseDB(path)
			if err := c.make(path + c.suffix); err != nil {
				t.Fatal(err)
			}
			r := ts.do(t, "GET", kv("k", "db=app"), "")
			wantError(t, r, 400, "INVALID_DB_PATH")
			if msg := r.JSON(t)["message"]; !contains(msg, "app.db"+c.suffix+" is not a plain file") {
				t.Fatalf("message: %q", msg)
			}
			os.Remove(path + c.suffix)
			if got := string(ts.do(t, "GET", kv("k", "db=app"), "").Body); got != "v" {
				t.Fatalf("once the side file is gone: got %q", got)
			}
		})
	}
}
