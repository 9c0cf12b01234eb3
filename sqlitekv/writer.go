package sqlitekv

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Writer is a database's single write connection. It is not safe for
// concurrent use: exactly one owner (the database actor) drives it.
//
// The owner groups writes: Begin, any number of operations, Commit. A
// refused write (a failing CAS) changes nothing and its neighbours in the
// group still commit: it ran in a savepoint of its own, or made every
// check before its first change (checkedFirst).
type Writer struct {
	writerConn
	work        *workCount // of every connection the writer has had (work.go)
	opts        Options
	tables      map[string]*writeTable
	seenVersion int64 // data_version at the last look (Begin, OthersCommitted)
	othersSeen  bool  // another connection committed since OthersCommitted last said

	mirror    mirror // directory mode: values are files too
	inGroup   bool   // between Begin and Commit or abandon
	holdRows  bool   // value rows wait for the group's end (heldvalues.go)
	committed bool   // the last Commit's transaction committed
	failed    error  // the open group can only be rolled back (see spoil)
	ckpt      *checkpointer
	wal       *walProgress // pages in the WAL after the last commit, and the commits
	pokedAt   int          // pages in the WAL when the checkpointer was last asked to run
	upgrading bool         // the background checkpointer is not asked meanwhile (upgrade.go)
	lastTs    int64        // history time never goes backwards
	pruneDice *rand.Rand   // picks the writes that check retention (history.go)
	pruned    bool         // the open transaction deleted history rows (walProgress.prunes)
	ageCursor map[string]int64
	inline    map[string]inlinePass // how far the sweep has moved each table's large values (largevalues.go)

	// One write takes one time (writeNow, writeTime, endInstant): the
	// clock as it first read it (0: not read yet), while instantDepth
	// counts the writes (savepoints) under way.
	instant      int64
	instantDepth int

	id   *fileIdentity // the file its path must still name (identity.go)
	path string

	watched bool    // the open group keeps its changes (changes.go)
	changes []Event // the open group's changes, when watched

	// A memory fault on the -shm retired the connection (faults.go):
	// nothing calls into it any more.
	faulted    bool
	committing bool // inside the COMMIT: a fault leaves its outcome unknown
}

// writerConn is the writer's connection with its control statements:
// what renewing the connection (renew.go) replaces.
type writerConn struct {
	conn                           *sqlite3.Conn
	ctl                            stmtSet
	begin, commit, rollback        *sqlite3.Stmt
	savepoint, release, rollbackTo *sqlite3.Stmt
	dataVersion                    *sqlite3.Stmt
}

// newWriter sets conn up as the writer. It reports each commit to wal;
// beforeCheckpoint runs before each background checkpoint.
func newWriter(conn *sqlite3.Conn, path string, opts Options, wal *walProgress, id *fileIdentity, beforeCheckpoint func()) (*Writer, error) {
	if err := setUpWriterConn(conn, opts); err != nil {
		return nil, err
	}
	if err := checkSharedMemoryWritable(conn, path); err != nil {
		return nil, err
	}
	ckpt, err := startCheckpointer(path, opts, id, beforeCheckpoint)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			ckpt.close() // a fault on conn: the open's guard retires conn
			panic(p)
		}
	}()
	c, err := prepareWriterConn(conn)
	if err != nil {
		ckpt.close()
		return nil, err
	}
	w := &Writer{
		writerConn: c,
		work:       newWorkCount(),
		opts:       opts,
		ckpt:       ckpt,
		id:         id,
		path:       path,
		wal:        wal,
		tables:     map[string]*writeTable{},
		pruneDice:  rand.New(rand.NewPCG(1, 2)), // fixed: tests see the same rolls every run
		ageCursor:  map[string]int64{},
		inline:     map[string]inlinePass{},
	}
	if w.seenVersion, err = w.fileVersion(); err != nil {
		w.ctl.close()
		ckpt.close()
		return nil, err
	}
	conn.SetInterrupt(w.work)
	w.hookCommits()
	return w, nil
}

// busyTimeout is how long a connection waits out another program's lock
// before it gives up (SQLITE_BUSY).
const busyTimeout = 5 * time.Second

func syncPragma(mode SyncMode) string {
	if mode == SyncNormal {
		return "NORMAL"
	}
	return "FULL"
}

// setUpWriterConn readies a connection to write. A WAL database lets
// read-only connections read while this one writes. The writer syncs the
// WAL at each commit in either mode: that is when its buffer is written;
// with normal the sync leaves out the fsync (walbuffer.go). Each write's
// savepoint journals the pages it touches: keep that journal in memory
// rather than in a temp file. A negative cache_size is in KiB.
func setUpWriterConn(conn *sqlite3.Conn, opts Options) error {
	setup := `PRAGMA busy_timeout = ` + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + `;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA checkpoint_fullfsync = ` + strconv.FormatBool(opts.Sync == SyncNormal) + `;
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -` + strconv.FormatInt(opts.CacheBytes>>10, 10) + `;`
	if err := conn.Exec(setup); err != nil {
		return openError("database", err)
	}
	return nil
}

func prepareWriterConn(conn *sqlite3.Conn) (writerConn, error) {
	c := writerConn{conn: conn, ctl: stmtSet{conn: conn}}
	c.begin = c.ctl.prepare(`BEGIN IMMEDIATE`)
	c.commit = c.ctl.prepare(`COMMIT`)
	c.rollback = c.ctl.prepare(`ROLLBACK`)
	c.savepoint = c.ctl.prepare(`SAVEPOINT op`)
	c.release = c.ctl.prepare(`RELEASE op`)
	c.rollbackTo = c.ctl.prepare(`ROLLBACK TO op`)
	c.dataVersion = c.ctl.prepare(`PRAGMA data_version`)
	if c.ctl.err != nil {
		c.ctl.close()
		return writerConn{}, dbError(c.ctl.err)
	}
	return c, nil
}

// hookCommits sets the hooks of the writer's connection. The WAL hook runs
// after every commit, once readers can see it and before the owner answers
// its writes (snapshots.go). Setting it turns SQLite's own checkpoints off
// (checkpoint.go). A transaction that rolls back, by ROLLBACK or by SQLite
// itself on an error, leaves in the WAL buffer frames it will never
// commit.
func (w *Writer) hookCommits() {
	w.conn.WALHook(func(_ *sqlite3.Conn, _ string, pages int) error {
		if before := w.wal.committed(pages); pages < before {
			w.pokedAt = 0 // the WAL started over
		}
		w.prunesOver() // after committed: see walProgress.prunes
		if pages-w.pokedAt >= backgroundCheckpointPages && !w.upgrading {
			w.pokedAt = pages
			w.ckpt.poke()
		}
		return nil
	})
	w.conn.RollbackHook(func() {
		discardUncommittedFrames(w.conn)
		w.prunesOver()
	})
}

// notePrune marks the open transaction as deleting history rows, and
// counts it before its first delete (walProgress.pruning).
func (w *Writer) notePrune() {
	if !w.pruned {
		w.wal.pruning.Add(1)
		w.pruned = true
	}
}

// prunesOver counts the transaction's prunes done: committed and
// visible, or rolled back (walProgress.prunes).
func (w *Writer) prunesOver() {
	if w.pruned {
		w.wal.prunes.Add(1)
		w.pruned = false
	}
}

// Begin opens the group's transaction.
func (w *Writer) Begin() (err error) {
	defer w.abandonOnPanic(&err)
	if w.faulted {
		return errShmLost
	}
	w.failed, w.changes = nil, nil
	if w.id.replaced.Load() {
		return errReplaced // a commit would only go to the old file
	}
	if len(w.tables) > maxPreparedTables {
		w.forgetTables()
	}
	if w.id.sharedMemoryFrozen() {
		return errMadeReadOnly
	}
	if err := w.begin.Exec(); err != nil {
		return dbError(err)
	}
	w.inGroup = true
	// With the write lock held, nothing changes until Commit.
	if err := w.lookForOthers(); err != nil {
		w.abandon()
		return err
	}
	return nil
}

// lookForOthers notes whether another process committed to the file since
// the writer last looked (a sqlite3 shell, another kvd): what the writer
// remembers of its tables may then be stale, and the snapshots readers
// keep (snapshots.go) too, which counting it as a commit of the writer's
// renews: a watcher sent to history then finds those writes there.
func (w *Writer) lookForOthers() error {
	version, err := w.fileVersion()
	if err != nil {
		return err
	}
	if version != w.seenVersion {
		w.forgetTables()
		w.wal.commits.Add(1)
		w.seenVersion, w.othersSeen = version, true
	}
	return nil
}

// OthersCommitted reports whether another process committed to the file
// since it last said so, looking now unless a group is open (its Begin
// looked). Their writes are in history, but no watcher was handed them.
// A failed look says no; the next one, or the next Begin, looks again.
func (w *Writer) OthersCommitted() bool {
	defer w.outlive()
	if !w.inGroup && !w.faulted {
		w.lookForOthers()
	}
	seen := w.othersSeen
	w.othersSeen = false
	return seen
}

// fileVersion is SQLite's data_version: it changes when another
// connection commits to the file.
func (c *writerConn) fileVersion() (version int64, err error) {
	if _, err := bind(c.dataVersion).row(func(s *sqlite3.Stmt) { version = s.ColumnInt64(0) }); err != nil {
		return 0, dbError(err)
	}
	return version, nil
}

// Commit makes the group durable (per Options.Sync). On failure the group
// is rolled back and every write in it must be reported as failed.
//
// In directory mode the group's files are put in place only after COMMIT
// succeeded (see mirror). If some cannot be, the cache has committed but
// those files have not changed: the error is a *FileFailures that tells
// which writes failed, and the next read imports the old files back into
// the cache.
func (w *Writer) Commit() (err error) {
	defer w.abandonOnPanic(&err)
	err = w.writeHeld() // while still in the group, so that a lost transaction shows
	if err == nil {
		err = w.runLaps()
	}
	w.inGroup, w.committed = false, false
	if err != nil {
		w.abandon()
		return err
	}
	if w.opts.Fence != nil {
		if err := w.opts.Fence(w.path); err != nil {
			w.abandon()
			return err
		}
	}
	// Into the file the path names? If not, nothing is committed: the
	// group's writes fail, and no file of it is put in place (directory
	// mode).
	if err := w.id.checkWriter(w.conn, true); err != nil {
		w.abandon()
		return err
	}
	if w.mirror != nil {
		defer w.mirror.landing()()
	}
	w.committing = true
	err = w.commit.Exec()
	w.committing = false
	if err != nil {
		w.abandon()
		if logWasCut(w.conn) {
			w.id.logCut.Store(true) // the store closes, and the retry opens it afresh
			return errLogCut
		}
		return dbError(err)
	}
	// Still so after the sync? If not, the path changed just now, and
	// the group is in the old file's log (see identity.go).
	if err := w.id.checkWriter(w.conn, false); err != nil {
		if w.mirror != nil {
			w.mirror.discard()
		}
		if err == errFileCut {
			return errFileCutWhileCommitting
		}
		return errReplacedWhileCommitting
	}
	w.committed = true
	if w.opts.Fence != nil {
		// A commit that stalled (a slow fsync, a paused VM) past the
		// fence's deadline may have landed after a peer took the database
		// over: whether it survives is unknown, so it is not acknowledged.
		if err := w.opts.Fence(w.path); err != nil {
			return &Error{Code: CodeOverloaded, Message: "The write committed just as this node lost the database to another: whether it was kept is unknown; read it back before retrying", Cause: err}
		}
	}
	if w.mirror != nil {
		return w.mirror.apply()
	}
	return nil
}

// abandonOnPanic turns a panic in Begin or Commit (SQLite out of memory,
// say) into the group's failure, rolled back if it had not committed: the
// actor answers every write of the group with it, and the next group
// begins afresh instead of inside the transaction this one left open.
func (w *Writer) abandonOnPanic(err *error) {
	if p := recover(); p != nil {
		*err = w.Recovered(p)
		w.abandon()
	}
}

// Recovered is the error of a write that panicked with p. A memory fault
// on the -shm (faults.go) retires the connection: the open group fails,
// and the store is to be opened afresh.
func (w *Writer) Recovered(p any) error {
	if w == nil || !isFault(p) {
		return PanicError(p)
	}
	err := errShmLost
	if w.committing {
		err, w.committing = errShmLostCommitted, false
	}
	if !w.faulted {
		w.faulted = true
		w.id.shmLost.Store(true)
		retire(w.conn)
	}
	w.failed = err
	return err
}

// outlive recovers a memory fault in a method with no error to return,
// retiring the connection; any other panic goes on.
func (w *Writer) outlive() {
	if p := recover(); p != nil {
		if !isFault(p) {
			panic(p)
		}
		w.Recovered(p)
	}
}

// Committed tells whether the last Commit's transaction committed, even
// when Commit then failed to put some files in place (directory mode).
func (w *Writer) Committed() bool { return w.committed }

// abandon abandons the group. Tables created inside it are gone, so their
// cached statements are dropped too; so are the files it staged.
func (w *Writer) abandon() {
	if !w.faulted && !w.conn.GetAutocommit() {
		w.rollback.Exec()
	}
	if w.mirror != nil {
		w.mirror.discard()
	}
	w.inGroup, w.failed, w.changes = false, nil, nil
	w.forgetTables()
	clear(w.ageCursor) // the sweep may have moved past rows it never pruned: start over
	clear(w.inline)
}

// checkedFirst runs a write whose every check that can refuse it comes
// before its first change. Inside a group (file mode) such a write needs
// no savepoint of its own, and skipping it saves a third of an incr's
// cost: a savepoint copies every page the write touches into its journal.
// A refused write then changed nothing, so its neighbours still commit.
// Failing after a change takes a database error, and only the group's
// rollback can undo what came before it: the whole group fails.
func (w *Writer) checkedFirst(fn func() error) (err error) {
	w.instantDepth++
	defer w.endInstant()
	if err := w.lost(); err != nil {
		return err
	}
	if w.mirror != nil || !w.inGroup {
		return w.atomically(fn)
	}
	changes := w.conn.TotalChanges()
	w.holdRows = true
	defer func() {
		w.holdRows = false
		if p := recover(); p != nil {
			err = w.Recovered(p)
		}
		if !w.faulted {
			w.spoil(err, w.conn.TotalChanges() != changes)
		}
	}()
	return fn()
}

// spoil marks the open group failed by err when what err interrupted
// cannot be undone alone: a write without a savepoint had changed
// something, or SQLite rolled the whole transaction back (as it may on a
// full disk or an I/O error), after which later writes would each commit
// on their own. Every later write of the group then fails with err, and
// so does Commit.
func (w *Writer) spoil(err error, changedUnguarded bool) {
	if err != nil && w.inGroup && (changedUnguarded || w.conn.GetAutocommit()) {
		w.failed = err
	}
}

// errTransactionLost is the cause of a group's failure when SQLite rolled
// its transaction back by itself.
var errTransactionLost = errors.New("the group's transaction was rolled back")

// lost returns the open group's failure, and fails it if its transaction
// is gone: SQLite rolls back by itself on some errors (an I/O error, a
// full disk), also of statements that no write wraps, such as a table's
// lookup or the sweep's reads. What the group did is gone then, and each
// later write would commit on its own.
func (w *Writer) lost() error {
	if w.failed == nil && w.inGroup && w.conn.GetAutocommit() {
		w.failed = dbError(errTransactionLost)
	}
	return w.failed
}

// atomically runs fn in a savepoint: on error nothing fn did remains, its
// staged files (directory mode) included. Outside a group the savepoint is
// itself a transaction, so its files are applied or discarded here.
func (w *Writer) atomically(fn func() error) (err error) {
	w.instantDepth++
	defer w.endInstant()
	// ROLLBACK TO cannot take back a row held in memory, and fn may read
	// the values table other than through current. (writeHeld also
	// refuses a group that failed.)
	if err := w.writeHeld(); err != nil {
		return err
	}
	outermost := w.mirror != nil && w.conn.GetAutocommit()
	if err := w.savepoint.Exec(); err != nil {
		return dbError(err)
	}
	mark, changes := 0, len(w.changes)
	if w.mirror != nil {
		mark = w.mirror.mark()
	}
	held := w.holdRows
	w.holdRows = false
	defer func() {
		w.holdRows = held
		if p := recover(); p != nil {
			err = w.Recovered(p)
		}
		if w.faulted {
			w.changes = w.changes[:changes]
			if outermost {
				w.mirror.discard()
			}
			return
		}
		if err != nil {
			w.rollbackTo.Exec()
			w.forgetRecent()
			w.changes = w.changes[:changes]
			if w.mirror != nil {
				w.mirror.undo(mark)
			}
		}
		if outermost {
			defer w.mirror.landing()()
		}
		if relErr := w.release.Exec(); relErr != nil && err == nil {
			err = dbError(relErr)
		}
		if err != nil && w.conn.GetAutocommit() {
			// Outside a group the savepoint was the transaction, and
			// RELEASE after ROLLBACK TO commits it empty: no rollback hook.
			discardUncommittedFrames(w.conn)
		}
		w.spoil(err, false)
		switch {
		case outermost && err == nil:
			err = w.mirror.apply()
		case outermost:
			w.mirror.discard()
		}
	}()
	return fn()
}

// table returns the statements of a KV table. With create it makes the
// table first; without, a missing table yields nil.
func (w *Writer) table(name string, create bool) (*writeTable, error) {
	if t, ok := w.tables[name]; ok {
		return t, nil
	}
	if err := ValidateTable(name); err != nil {
		return nil, err
	}
	if err := w.lost(); err != nil {
		return nil, err // its DDL would commit on its own
	}
	exists, err := tableExists(w.conn, name)
	if err != nil {
		return nil, err
	}
	if !exists && !create {
		return nil, nil
	}
	names := namesFor(name)
	if !exists {
		if err := w.mayCreateTable(name); err != nil {
			return nil, err
		}
		if err := w.conn.Exec(names.ddl()); err != nil {
			return nil, dbError(err)
		}
	}
	t, err := prepareWriteTable(w.conn, names)
	if err != nil {
		return nil, err
	}
	t.mirror = w.mirror
	var last int64
	if _, err := queryRow(t.maxTs, func(s *sqlite3.Stmt) { last = s.ColumnInt64(0) }); err != nil {
		t.close()
		return nil, dbError(err)
	}
	w.lastTs = max(w.lastTs, last)
	w.tables[name] = t
	return t, nil
}

// forgetRecent forgets the rows written lately: a rollback may give
// their op numbers to other rows (chainend.go), and takes the values back
// (recentvalues.go).
func (w *Writer) forgetRecent() {
	for _, t := range w.tables {
		clear(t.recent)
		clear(t.recentValues)
		t.laps = pruneLaps{} // bounds found inside the rollback may count rows it took back
	}
}

func (w *Writer) forgetTables() {
	if w.faulted {
		clear(w.tables) // their statements stay with the retired connection
		return
	}
	for name := range w.tables {
		w.forgetTable(name)
	}
}

func (w *Writer) forgetTable(name string) {
	w.tables[name].close()
	delete(w.tables, name)
}

// maxPreparedTables bounds the tables whose statements a connection keeps
// (about 120 KiB of SQLite's memory each for the writer): a database with
// more is served by preparing them again as they are used.
const maxPreparedTables = 256

// mayCreateTable refuses a table past Options.MaxTables. Directory mode
// has no such bound: its tables are the folders already on disk.
func (w *Writer) mayCreateTable(name string) error {
	if w.mirror != nil {
		return nil
	}
	tables, err := w.listTables()
	if err != nil || len(tables) < w.opts.MaxTables {
		return err
	}
	return Errorf(CodeInvalidParameters, "Database already holds %d tables, the most --max-tables allows: table %q was not created (use a key prefix or another database)", len(tables), name)
}

// listTables lists the KV tables of the database, found by their history
// companions, in name order (the order the sweep goes through them).
func (w *Writer) listTables() ([]string, error) { return tablesWith(w.conn, ":history") }

// tablesWith lists the KV tables that have the companion table named by
// suffix (":history", ":removed"), in name order.
func tablesWith(conn *sqlite3.Conn, suffix string) ([]string, error) {
	stmt, _, err := conn.Prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '%' || ?1 ORDER BY name`)
	if err != nil {
		return nil, dbError(err)
	}
	defer stmt.Close()
	if err := stmt.BindText(1, suffix); err != nil {
		return nil, dbError(err)
	}
	var names []string
	for stmt.Step() {
		name := strings.TrimSuffix(stmt.ColumnText(0), suffix)
		if ValidateTable(name) == nil {
			names = append(names, name)
		}
	}
	if err := stmt.Err(); err != nil {
		return nil, dbError(err)
	}
	return names, nil
}
