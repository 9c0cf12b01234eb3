package sqlitekv_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

var (
	cutsFlag           = flag.Int("cuts", 0, "power cuts per sync mode in the PowerCut tests (0: 50, or 15 with -short)")
	cutCheckpointsFlag = flag.Int("cut-checkpoint-pages", 60, "WAL pages between background checkpoints in the PowerCut tests (kvd's default: 1000)")
)

// Power-cut tests: many clients write over HTTP through kvd's whole path
// (the HTTP server, the registry, the database actor's group commit, the
// writer, kvd's buffered WAL) onto a crashDisk, which loses power after a
// random number of writes and syncs. After each cut the disk reboots as
// the cut left it, and the database must pass integrity_check, read back
// through kvd, and hold what the sync mode promises. The database carries
// on from cut to cut, so recovery, checkpoints and WAL restarts over torn
// frames all get their turn.

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
	shutdowns         int // cuts armed as kvd shut down
	shutdownsCut      int // of those, the power went before the shutdown's end
	diskOps, diskOpsN int // writes and syncs allowed before the cuts, in all
	extraChecked      int // of checked, the extra clients' (powercut_extra_test.go)
	kinds             map[string]int
	midLoadStops      int // cycles where kvd shut down under load
	midLoadStopsCut   int // of those, the power went before the load ended
}

// Each client owns two keys and writes them one write at a time; a few
// counters are shared by all.
const (
	powerCutClients = 12
	sharedCounters  = 3
	maxOpsBeforeCut = 400 // the power goes after 1..maxOpsBeforeCut writes and syncs
	shutdownOps     = 20  // or, in a shutdown, after 1..shutdownOps
)

type powerCutRun struct {
	t      *testing.T
	mode   sqlitekv.SyncMode
	disk   *crashDisk
	vfs    string
	dir    string
	rng    *rand.Rand
	cycle  int
	http   *http.Client
	live   *kvdOnDisk   // the kvd started last
	clock  atomic.Int64 // counts acknowledgements: orders them against later writes
	stopAt int64        // clients stop once the clock reaches it; 0: when the power goes
	owners []*keyOwner
	shared []*sharedCounter
	report powerCutReport
	extras []*extraClient
	// kvd is shutting down under load: a write may fail with the power on
	shuttingDown atomic.Bool
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
		cuts = 50
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
	transport := &http.Transport{MaxIdleConnsPerHost: powerCutClients}
	t.Cleanup(transport.CloseIdleConnections)
	r.http = &http.Client{Transport: transport}
	sqlitekv.UnderVFS(r.vfs, r.disk)
	t.Cleanup(sqlitekv.SetSyncDir(r.disk.syncDir))
	// Checkpoints far more often than kvd's defaults, so that cuts land
	// in them, and in the WAL's restarts over old frames, often. The
	// writer's own comes at 8 times the background one's, as in kvd.
	t.Cleanup(sqlitekv.SetCheckpointPages(*cutCheckpointsFlag, 8**cutCheckpointsFlag))
	t.Cleanup(func() { // a test that failed midway leaves kvd running
		if r.live != nil {
			r.live.stop(r.http)
		}
	})
	for g := range powerCutClients {
		r.owners = append(r.owners, &keyOwner{putKey: fmt.Sprintf("client-%d-put", g), counterKey: fmt.Sprintf("client-%d-count", g)})
	}
	for i := range sharedCounters {
		r.shared = append(r.shared, &sharedCounter{key: fmt.Sprintf("shared-%d", i)})
	}
	r.initExtras()
	renewedBefore := sqlitekv.ConnectionsRenewed()
	start := time.Now()
	for r.cycle = 0; r.cycle < cuts && !t.Failed(); r.cycle++ {
		r.cutOnce()
	}
	if !t.Failed() {
		k := r.start()
		r.check(k.db)
		if err := k.stop(r.http); err != nil {
			t.Errorf("stop after the last cut: %v", err)
		}
		r.checkIntegrity(r.dbPath())
		r.checkIntegrity(filepath.Join(r.dir, "idle.db"))
	}
	rep := r.report
	t.Logf("sync %s: %d cuts in %v (%d while kvd shut down, of %d tried), %d disk writes and syncs allowed on average; %d acknowledged writes checked (%d of the extra clients'); lost: at most %d in a cut, %d in all, in %d cuts",
		mode, rep.cuts, time.Since(start).Round(time.Millisecond), rep.shutdownsCut, rep.shutdowns, rep.diskOps/max(1, rep.diskOpsN), rep.checked, rep.extraChecked, rep.lostMax, rep.lostSum, rep.cutsWithLoss)
	t.Logf("extra writes: %v; connections renewed: %d; kvd shut down under load in %d cycles (the power went before the load ended in %d)", rep.kinds, sqlitekv.ConnectionsRenewed()-renewedBefore, rep.midLoadStops, rep.midLoadStopsCut)
	return rep
}

func (r *powerCutRun) dbPath() string { return filepath.Join(r.dir, "app.db") }

// cutOnce starts kvd (checking what the last cut left), writes until the
// power goes, and reboots the disk. One time in four the clients stop
// first and the power goes while kvd shuts down: during the checkpoint of
// its close, or just after.
func (r *powerCutRun) cutOnce() {
	t := r.t
	k := r.start()
	if r.cycle > 0 {
		r.check(k.db)
	}
	if r.rng.IntN(4) == 0 {
		// A clean close checkpoints the WAL and deletes it, so the open
		// makes a new one: a cut can lose its folder entry, and every
		// write in it, unless Open synced the folder.
		if err := k.stop(r.http); err != nil {
			t.Fatalf("cut %d: stop with the power on: %v", r.cycle, err)
		}
		k = r.start()
	}
	r.startCycle(k.db)
	if r.rng.IntN(4) == 0 {
		r.stopAt = r.clock.Load() + int64(r.rng.IntN(maxOpsBeforeCut)) + 1
		r.load(k)
		r.cutAfter(r.rng.IntN(shutdownOps) + 1)
		r.report.shutdowns++
	} else {
		r.stopAt = 0
		r.cutAfter(r.rng.IntN(maxOpsBeforeCut) + 1)
		if r.rng.IntN(4) == 0 {
			// kvd shuts down in the middle of the load: the writes it
			// acknowledged while closing must survive a cut during its
			// close, or right after.
			r.shuttingDown.Store(false)
			delay := time.Duration(r.rng.IntN(30_000)) * time.Microsecond
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				time.Sleep(delay)
				r.shuttingDown.Store(true)
				k.stop(r.http)
			}()
			r.load(k)
			<-stopped
			r.report.midLoadStops++
			if r.disk.powerOff() {
				r.report.midLoadStopsCut++
			}
			r.shuttingDown.Store(false)
		} else {
			r.load(k)
		}
	}
	k.stop(r.http) // fails when the power is off
	if r.stopAt != 0 && r.disk.powerOff() {
		r.report.shutdownsCut++
	}
	if err := r.disk.reboot(r.rng); err != nil {
		t.Fatalf("cut %d: reboot: %v", r.cycle, err)
	}
	r.report.cuts++
	r.checkIntegrity(r.dbPath())
	r.checkIntegrity(filepath.Join(r.dir, "idle.db"))
}

func (r *powerCutRun) cutAfter(n int) {
	r.report.diskOps += n
	r.report.diskOpsN++
	r.disk.cutAfter(n)
}

func (r *powerCutRun) start() *kvdOnDisk {
	r.t.Helper()
	k, err := startKVD(r.t, r.dir, r.vfs, r.mode)
	if err != nil {
		r.t.Fatalf("cut %d: open after the cut: %v", r.cycle, err)
	}
	r.live = k
	return k
}

// checkIntegrity runs integrity_check on the database as the cut left it.
// The connection is read-only, so it neither checkpoints nor deletes the
// WAL: kvd's next open recovers it. Its WAL index goes with it.
func (r *powerCutRun) checkIntegrity(path string) {
	t := r.t
	t.Helper()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return // the cut lost the new file's folder entry
	}
	if err := sqlitekv.CheckIntegrity(path); err != nil {
		t.Errorf("cut %d: %v", r.cycle, err)
	}
	if err := os.Remove(path + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
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
	r.startExtras()
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
	page, err := db.HistoryPage(context.Background(), sqlitekv.HistoryRequest{Table: sqlitekv.DefaultTable, Key: key, Limit: 1})
	versions := page.Versions
	if err != nil {
		r.t.Fatalf("cut %d: history of %s: %v", r.cycle, key, err)
	}
	if len(versions) == 0 || string(versions[0].Entry.Value) != string(value) {
		r.t.Errorf("cut %d: %s holds %q but its newest version is %+v", r.cycle, key, value, versions)
	}
}

// load runs the clients over HTTP until the power goes (or the clock
// reaches stopAt).
func (r *powerCutRun) load(k *kvdOnDisk) {
	var wg sync.WaitGroup
	for g, o := range r.owners {
		rng := rand.New(rand.NewPCG(r.rng.Uint64(), uint64(g))) // r.rng is not safe for the clients to share
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runClient(k, o, rng)
		}()
	}
	for g, c := range r.extras {
		rng := rand.New(rand.NewPCG(r.rng.Uint64(), uint64(100+g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runExtra(k, c, rng)
		}()
	}
	wg.Wait()
}

// runClient writes one write at a time until one fails, which it may only
// once the power is off.
func (r *powerCutRun) runClient(k *kvdOnDisk, o *keyOwner, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; r.stopAt == 0 || r.clock.Load() < r.stopAt; i++ {
		if i == 5000 { // the cut is overdue: a write that wrote nothing?
			r.t.Errorf("cut %d: the power still on after %d writes of a client", r.cycle, i)
			r.disk.cutNow()
		}
		var err error
		switch roll := rng.IntN(10); {
		case roll == 0:
			err = r.incrShared(ctx, k, r.shared[rng.IntN(len(r.shared))])
		case roll < 5:
			op := loadOp{incr: true, issued: r.clock.Load()}
			if _, err = k.incr(ctx, r.http, o.counterKey); err == nil {
				op.acked = r.clock.Add(1)
			}
			o.ops = append(o.ops, op)
		default:
			// One value in four is past a page (overflow pages, more
			// frames in a commit for a cut to tear).
			pad := rng.IntN(200)
			if rng.IntN(4) == 0 {
				pad = 4096 + rng.IntN(4096)
			}
			value := fmt.Sprintf("cut %d write %d ", r.cycle, len(o.ops)) + strings.Repeat("v", pad)
			op := loadOp{value: value, issued: r.clock.Load()}
			if err = k.put(ctx, r.http, o.putKey, op.value); err == nil {
				op.acked = r.clock.Add(1)
			}
			o.ops = append(o.ops, op)
		}
		if err != nil {
			if !r.disk.powerOff() && !r.shuttingDown.Load() {
				r.t.Errorf("cut %d: a write failed with the power on: %v", r.cycle, err)
				r.disk.cutNow()
			}
			return
		}
	}
}

func (r *powerCutRun) incrShared(ctx context.Context, k *kvdOnDisk, c *sharedCounter) error {
	c.issued.Add(1)
	value, err := k.incr(ctx, r.http, c.key)
	if err == nil {
		c.mu.Lock()
		c.acked = append(c.acked, value)
		c.mu.Unlock()
	}
	return err
}
