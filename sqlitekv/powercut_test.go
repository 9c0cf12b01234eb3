package sqlitekv_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

var cutsFlag = flag.Int("cuts", 0, "power cuts per sync mode in the PowerCut tests (0: 60, or 15 with -short)")

// Power-cut tests: many clients write through the real path (the registry,
// the database actor's group commit, the writer, kvd's buffered WAL) onto
// a crashDisk, which loses power after a random number of writes and
// syncs. After each cut the disk reboots as the cut left it, and the
// database must pass integrity_check, read back through kvd, and hold
// what the sync mode promises. The database carries on from cut to cut, so
// recovery, checkpoints and WAL restarts over torn frames all get their
// turn.

func TestPowerCut_FullSyncLosesNoAcknowledgedWrite(t *testing.T) {
	r := runPowerCuts(t, sqlitekv.SyncFull)
	if r.lostMax != 0 {
		t.Errorf("acknowledged writes lost: %d in the worst cut, want 0", r.lostMax)
	}
}

func TestPowerCut_NormalSyncLosesOnlyAnUnsyncedTail(t *testing.T) {
	runPowerCuts(t, sqlitekv.SyncNormal)
}

// powerCutReport sums up a run.
type powerCutReport struct {
	cuts, checked     int // power cuts, acknowledged writes checked after them
	lostMax, lostSum  int // acknowledged writes missing after a cut: the most, in all
	cutsWithLoss      int
	diskOps, diskOpsN int // writes and syncs allowed before the cuts, in all
}

// Each client owns two keys and writes them one write at a time; a few
// counters are shared by all.
const (
	powerCutClients = 12
	sharedCounters  = 3
	maxOpsBeforeCut = 400 // the power goes after 1..maxOpsBeforeCut writes and syncs
)

type powerCutRun struct {
	t      *testing.T
	mode   sqlitekv.SyncMode
	disk   *crashDisk
	vfs    string
	dir    string
	rng    *rand.Rand
	cycle  int
	clock  atomic.Int64 // counts acknowledgements: orders them against later writes
	owners []*keyOwner
	shared []*sharedCounter
	report powerCutReport
}

// keyOwner is a client's model of its two keys: what they held when the
// cycle began, and its writes since, one at a time.
type keyOwner struct {
	putKey, counterKey string
	putBase            string // "" when missing
	counterBase        int64
	ops                []loadOp
}

type loadOp struct {
	incr   bool
	value  string // a put's
	issued int64  // the ack clock when it was sent
	acked  int64  // the ack clock its acknowledgement set; 0: none
}

// sharedCounter is a counter every client increments.
type sharedCounter struct {
	key    string
	base   int64
	issued atomic.Int64
	mu     sync.Mutex
	acked  []int64 // the values acknowledged increments returned
}

func runPowerCuts(t *testing.T, mode sqlitekv.SyncMode) powerCutReport {
	cuts := *cutsFlag
	if cuts <= 0 {
		cuts = 60
		if testing.Short() {
			cuts = 15
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := &powerCutRun{
		t: t, mode: mode, disk: newCrashDisk(), vfs: "kvd-crash-" + string(mode),
		dir: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 1)),
	}
	sqlitekv.UnderVFS(r.vfs, r.disk)
	t.Cleanup(sqlitekv.SetSyncDir(r.disk.syncDir))
	// Checkpoints far more often than kvd's defaults, so that cuts land
	// in them, and in the WAL's restarts over old frames, often.
	t.Cleanup(sqlitekv.SetCheckpointPages(60, 240))
	for g := range powerCutClients {
		r.owners = append(r.owners, &keyOwner{putKey: fmt.Sprintf("client/%d/put", g), counterKey: fmt.Sprintf("client/%d/count", g)})
	}
	for i := range sharedCounters {
		r.shared = append(r.shared, &sharedCounter{key: fmt.Sprintf("shared/%d", i)})
	}
	start := time.Now()
	for r.cycle = 0; r.cycle < cuts && !t.Failed(); r.cycle++ {
		r.cutOnce()
	}
	if !t.Failed() {
		reg, db := r.open()
		r.check(db)
		db.Release()
		if err := reg.Close(); err != nil {
			t.Errorf("close after the last cut: %v", err)
		}
		r.checkIntegrity(r.dbPath())
	}
	rep := r.report
	t.Logf("sync %s: %d cuts in %v (%d disk writes and syncs allowed on average); %d acknowledged writes checked; lost: at most %d in a cut, %d in all, in %d cuts",
		mode, rep.cuts, time.Since(start).Round(time.Millisecond), rep.diskOps/max(1, rep.diskOpsN), rep.checked, rep.lostMax, rep.lostSum, rep.cutsWithLoss)
	return rep
}

func (r *powerCutRun) dbPath() string { return filepath.Join(r.dir, "app.db") }

// cutOnce opens the database (checking what the last cut left), writes
// until the power goes, and reboots the disk.
func (r *powerCutRun) cutOnce() {
	t := r.t
	reg, db := r.open()
	if r.cycle > 0 {
		r.check(db)
	}
	if r.rng.IntN(4) == 0 {
		// A clean close checkpoints the WAL and deletes it, so the open
		// makes a new one: a cut can lose its folder entry, and every
		// write in it, unless Open synced the folder.
		db.Release()
		if err := reg.Close(); err != nil {
			t.Fatalf("cut %d: close with the power on: %v", r.cycle, err)
		}
		reg, db = r.open()
	}
	r.startCycle(db)
	n := r.rng.IntN(maxOpsBeforeCut) + 1
	r.report.diskOps += n
	r.report.diskOpsN++
	r.disk.cutAfter(n)
	r.load(db)
	db.Release()
	reg.Close() // fails, the power being off; it closes every connection all the same
	if err := r.disk.reboot(r.rng); err != nil {
		t.Fatalf("cut %d: reboot: %v", r.cycle, err)
	}
	r.report.cuts++
	r.checkIntegrity(r.dbPath())
}

func (r *powerCutRun) open() (*actors.Registry, *actors.DB) {
	t := r.t
	t.Helper()
	resolver, err := sqlitekv.NewResolver(r.dir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := actors.NewRegistry(actors.Config{Resolver: resolver, Store: sqlitekv.OnVFS(sqlitekv.Options{Sync: r.mode, Readers: 2}, r.vfs)})
	db, err := reg.Open("app", true, false)
	if err != nil {
		reg.Close()
		b, _ := os.ReadFile(r.dbPath())
		w, _ := os.ReadFile(r.dbPath() + "-wal")
		t.Fatalf("cut %d: open after the cut: %v (DEBUG %d bytes %q; wal %d)", r.cycle, err, len(b), b[:min(len(b), 100)], len(w))
	}
	return reg, db
}

// checkIntegrity runs integrity_check on a copy of the database and its
// WAL, so that the check's own recovery and checkpoint leave the files as
// the cut left them, for kvd to recover.
func (r *powerCutRun) checkIntegrity(path string) {
	t := r.t
	t.Helper()
	copyDir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, filepath.Base(path)+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := sqlite3.Open(filepath.Join(copyDir, filepath.Base(path)))
	if err != nil {
		t.Fatalf("cut %d: open a copy: %v", r.cycle, err)
	}
	defer conn.Close()
	stmt, _, err := conn.Prepare(`PRAGMA integrity_check`)
	if err != nil {
		t.Fatalf("cut %d: integrity_check: %v", r.cycle, err)
	}
	defer stmt.Close()
	if !stmt.Step() || stmt.ColumnText(0) != "ok" {
		t.Errorf("cut %d: integrity_check: got %q (%v), want ok", r.cycle, stmt.ColumnText(0), stmt.Err())
	}
}

// startCycle takes what the keys hold now as the model's starting point.
func (r *powerCutRun) startCycle(db *actors.DB) {
	for _, o := range r.owners {
		o.putBase, o.counterBase, o.ops = r.read(db, o.putKey), r.readCount(db, o.counterKey), nil
	}
	for _, c := range r.shared {
		c.base, c.acked = r.readCount(db, c.key), nil
		c.issued.Store(0)
	}
}

func (r *powerCutRun) read(db *actors.DB, key string) string {
	r.t.Helper()
	e, err := db.Get(context.Background(), sqlitekv.GetRequest{Table: sqlitekv.DefaultTable, Key: key})
	if sqlitekv.CodeOf(err) == sqlitekv.CodeKeyNotFound {
		return ""
	}
	if err != nil {
		r.t.Fatalf("cut %d: read %s: %v", r.cycle, key, err)
	}
	r.checkHistory(db, key, e.Value)
	return string(e.Value)
}

func (r *powerCutRun) readCount(db *actors.DB, key string) int64 {
	r.t.Helper()
	v := r.read(db, key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.t.Fatalf("cut %d: %s holds %q, want a count", r.cycle, key, v)
	}
	return n
}

// checkHistory checks that a key's newest version is the value it holds:
// the two tables were written in one transaction.
func (r *powerCutRun) checkHistory(db *actors.DB, key string, value []byte) {
	versions, err := db.History(context.Background(), sqlitekv.DefaultTable, key, 1)
	if err != nil {
		r.t.Fatalf("cut %d: history of %s: %v", r.cycle, key, err)
	}
	if len(versions) == 0 || string(versions[0].Entry.Value) != string(value) {
		r.t.Errorf("cut %d: %s holds %q but its newest version is %+v", r.cycle, key, value, versions)
	}
}

// load runs the clients until the power goes.
func (r *powerCutRun) load(db *actors.DB) {
	var wg sync.WaitGroup
	for g, o := range r.owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runClient(db, o, rand.New(rand.NewPCG(r.rng.Uint64(), uint64(g))))
		}()
	}
	wg.Wait()
}

// runClient writes one write at a time until one fails, which it may only
// once the power is off.
func (r *powerCutRun) runClient(db *actors.DB, o *keyOwner, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; ; i++ {
		if i == 5000 { // the cut is overdue: a write that wrote nothing?
			r.t.Errorf("cut %d: the power still on after %d writes of a client", r.cycle, i)
			r.disk.cutNow()
		}
		var err error
		switch roll := rng.IntN(10); {
		case roll == 0:
			err = r.incrShared(ctx, db, r.shared[rng.IntN(len(r.shared))])
		case roll < 5:
			op := loadOp{incr: true, issued: r.clock.Load()}
			if _, err = db.Incr(ctx, sqlitekv.IncrRequest{Table: sqlitekv.DefaultTable, Key: o.counterKey, Delta: 1}); err == nil {
				op.acked = r.clock.Add(1)
			}
			o.ops = append(o.ops, op)
		default:
			op := loadOp{value: fmt.Sprintf("cut %d write %d", r.cycle, len(o.ops)), issued: r.clock.Load()}
			if _, err = db.Put(ctx, sqlitekv.PutRequest{Table: sqlitekv.DefaultTable, Key: o.putKey, Value: []byte(op.value), ContentType: "text/plain"}); err == nil {
				op.acked = r.clock.Add(1)
			}
			o.ops = append(o.ops, op)
		}
		if err != nil {
			if !r.disk.powerOff() {
				r.t.Errorf("cut %d: a write failed with the power on: %v", r.cycle, err)
				r.disk.cutNow()
			}
			return
		}
	}
}

func (r *powerCutRun) incrShared(ctx context.Context, db *actors.DB, c *sharedCounter) error {
	c.issued.Add(1)
	res, err := db.Incr(ctx, sqlitekv.IncrRequest{Table: sqlitekv.DefaultTable, Key: c.key, Delta: 1})
	if err == nil {
		c.mu.Lock()
		c.acked = append(c.acked, res.Value)
		c.mu.Unlock()
	}
	return err
}
