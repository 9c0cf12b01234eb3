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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
	"github.com/ncruces/go-sqlite3"
)

var upgradeCutsFlag = flag.Int("upgrade-cuts", 0, "power cuts per sync mode in TestPowerCut_DuringAnUpgrade (0: 12, or 4 with -short)")

// TestPowerCut_DuringAnUpgrade: an older kvd's file (tables whose history
// has the key index and no removed table) is opened on a disk that loses
// power after a random number of writes and syncs, drawn across the whole
// span of an uncut upgrade and the close after it. After the reboot the
// file as the cut left it must pass integrity_check, and opened again it
// must finish the upgrade and hold exactly what an uncut upgrade of the
// same file holds: every table's rows, every key's value and full history
// as the store reads them, and the same schema (no links table left).
func TestPowerCut_DuringAnUpgrade(t *testing.T) {
	cuts := *upgradeCutsFlag
	if cuts <= 0 {
		cuts = 12
		if testing.Short() {
			cuts = 4
		}
	}
	template := filepath.Join(t.TempDir(), "old.db")
	keys := writeOlderKVDFile(t, template, []string{"alpha", "beta", "gamma"}, 3000, 250)
	old, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []sqlitekv.SyncMode{sqlitekv.SyncFull, sqlitekv.SyncNormal} {
		t.Run(string(mode), func(t *testing.T) {
			runUpgradeCuts(t, mode, old, keys, cuts)
		})
	}
}

// upgradeCache is the writer's page cache of a run: kvd's default, or a
// small one, under which the rewrite spills pages to the WAL before its
// commit.
var upgradeCaches = []int64{0, 128 << 10}

func runUpgradeCuts(t *testing.T, mode sqlitekv.SyncMode, old []byte, keys map[string][]string, cuts int) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	disk := newCrashDisk()
	vfsName := "kvd-upgrade-crash-" + string(mode)
	sqlitekv.UnderVFS(vfsName, disk)
	t.Cleanup(sqlitekv.SetSyncDir(disk.syncDir))
	root := t.TempDir()
	// step is where the open was when the power went: before the tables,
	// in a table's rewrite (its transaction), after its commit (in the
	// checkpoint after it, or for the last table, in the horizons' new
	// columns), or in the close.
	var step string
	steps := map[string]int{}
	optsFor := func(cache int64) sqlitekv.Options {
		return sqlitekv.OnVFS(sqlitekv.Options{Sync: mode, Readers: 2, CacheBytes: cache, Upgrading: func(_, table string) func(error) {
			if !disk.powerOff() {
				step = table + "'s rewrite"
			}
			return func(err error) {
				if err == nil && !disk.powerOff() {
					step = "after " + table + "'s commit"
				}
			}
		}}, vfsName)
	}
	place := func(name string) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "app.db")
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// The uncut upgrade: what every cut one must end as, and how many
	// disk operations its open and close take.
	var want upgradedState
	spans := map[int64]int{}
	for i, cache := range upgradeCaches {
		path := place(fmt.Sprintf("uncut-%d", i))
		disk.cutAfter(1 << 40)
		s, err := sqlitekv.Open(path, false, optsFor(cache))
		if err != nil {
			t.Fatalf("uncut upgrade: %v", err)
		}
		opened := disk.used()
		state := readUpgraded(t, s, keys)
		if err := s.Close(); err != nil {
			t.Fatalf("uncut close: %v", err)
		}
		spans[cache] = disk.used()
		forget(disk)
		disk.cutAfter(-1)
		state.rows = dumpFile(t, path)
		if i == 0 {
			want = state
		} else if d := state.diff(want); d != "" {
			t.Fatalf("uncut upgrades with caches %d and %d differ: %s", upgradeCaches[0], cache, d)
		}
		t.Logf("uncut upgrade, cache %d: %d disk writes and syncs to open, %d with the close", cache, opened, spans[cache])
	}

	var cutOpen, cutClose, notCut, redone int
	start := time.Now()
	badCuts, badSteps := 0, map[string]int{}
	for cut := 0; cut < cuts; cut++ {
		bad := false
		fail := func(format string, args ...any) { // the first 10 bad cuts are told, the rest counted
			t.Helper()
			if !bad {
				bad = true
				badCuts++
				badSteps[step]++
			}
			if badCuts <= 10 {
				t.Errorf("[%s] "+format, append([]any{step}, args...)...)
			} else {
				t.Fail()
			}
		}
		cache := upgradeCaches[rng.IntN(len(upgradeCaches))]
		n := 1 + rng.IntN(spans[cache])
		path := place(fmt.Sprintf("cut-%d", cut))
		disk.cutAfter(n)
		step = "before the tables"
		s, err := sqlitekv.Open(path, false, optsFor(cache))
		if err == nil && disk.powerOff() {
			step = "in the close"
		}
		switch {
		case err != nil && !disk.powerOff():
			t.Fatalf("cut %d (after %d ops): open failed with the power on: %v", cut, n, err)
		case err != nil:
			cutOpen++
		default:
			s.Close() // fails when the power goes in it
			if disk.powerOff() {
				cutClose++
			} else {
				notCut++
			}
		}
		steps[step]++
		before := disk.describe()
		if err := disk.reboot(rng); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("cut %d: the database file is gone: %v", cut, err)
		}
		_, walErr := os.Stat(path + "-wal")
		if err := integrityCheck(path); err != nil {
			fail("cut %d (after %d of %d ops, cache %d): as the cut left it: %v\n  disk before the reboot: %s; after it the WAL: %v", cut, n, spans[cache], cache, err, before, walErr)
		}
		os.Remove(path + "-shm")
		if upgraded, err := isUpgraded(path); err == nil && !upgraded {
			redone++
		}

		s, err = sqlitekv.Open(path, false, optsFor(cache))
		if err != nil {
			fail("cut %d (after %d of %d ops, cache %d): open after the reboot: %v", cut, n, spans[cache], cache, err)
			forget(disk)
			continue
		}
		got := readUpgraded(t, s, keys)
		if err := s.Close(); err != nil {
			fail("cut %d: close after the reboot: %v", cut, err)
		}
		forget(disk)
		if err := sqlitekv.CheckIntegrity(path); err != nil {
			fail("cut %d (after %d of %d ops, cache %d): upgraded after the reboot: %v", cut, n, spans[cache], cache, err)
		}
		got.rows = dumpFile(t, path)
		if d := got.diff(want); d != "" {
			fail("cut %d (after %d of %d ops, cache %d): upgraded after the cut, the database differs from the uncut upgrade: %s", cut, n, spans[cache], cache, d)
		} else {
			os.RemoveAll(filepath.Dir(path))
		}
	}
	t.Logf("sync %s: %d cuts in %v: %d during the open (upgrade), %d during the close, %d past the end; %d left a table to upgrade again; by step: %v; %d cuts failed a check, by step: %v",
		mode, cutOpen+cutClose+notCut, time.Since(start).Round(time.Millisecond), cutOpen, cutClose, notCut, redone, steps, badCuts, badSteps)
}

// describe tells, for each file, whether its folder entry is durable and
// how many writes await a sync.
func (d *crashDisk) describe() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for path, p := range d.files {
		out = append(out, fmt.Sprintf("%s linked=%v synced=%d pending=%d", filepath.Base(path), p.linked, len(p.synced), len(p.pending)))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// integrityCheck runs integrity_check on the file as a cut left it,
// read-only on the real disk. (sqlitekv.CheckIntegrity checks chains too,
// which it reads with the horizon's lost_op: a cut between a table's
// upgrade and the horizons' new columns leaves a table it cannot read.)
func integrityCheck(path string) error {
	defer os.Remove(path + "-shm")
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		return err
	}
	defer conn.Close()
	stmt, _, err := conn.Prepare(`PRAGMA integrity_check`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	if !stmt.Step() {
		return stmt.Err()
	}
	if got := stmt.ColumnText(0); got != "ok" {
		return fmt.Errorf("integrity_check: %.300q", got)
	}
	return nil
}

// used is how many writes and syncs went since cutAfter(1 << 40).
func (d *crashDisk) used() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return 1<<40 - d.left
}

// forget drops what the disk knows of files whose connections are all
// closed, with the power on: the real files are as the disk holds them.
func forget(d *crashDisk) {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.files)
}

// writeOlderKVDFile writes, with plain SQL on the real disk, a database
// as kvd wrote it before chains: each table with versions writes over
// keys keys (values of 20 to 900 bytes, a few past a page; ties in ts),
// some of them deletes, a fifth of the keys deleted last, and a horizon
// row for some. It returns each table's keys, deleted ones too.
func writeOlderKVDFile(t *testing.T, path string, tables []string, versions, keys int) map[string][]string {
	t.Helper()
	conn, err := sqlite3.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(conn.Exec(`PRAGMA journal_mode = WAL`))
	rng := rand.New(rand.NewPCG(11, 12))
	all := map[string][]string{}
	op := int64(0)
	for _, table := range tables {
		must(conn.Exec(`BEGIN;` + strings.ReplaceAll(sqlitekv.KeyIndexDDL, "kv_store", table)))
		ins, _, err := conn.Prepare(`INSERT INTO "` + table + `:history" (op_number, key, op, ts, recorded, value, content_type, expire_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)`)
		must(err)
		ts := int64(1_700_000_000_000)
		write := func(key, what string, value []byte, expire any) {
			op++
			if rng.IntN(3) > 0 {
				ts++ // else the same millisecond as the write before
			}
			var ct any
			if value != nil {
				ct = "application/octet-stream"
			}
			must(ins.Reset())
			must(ins.ClearBindings())
			must(ins.BindInt64(1, op))
			must(ins.BindText(2, key))
			must(ins.BindText(3, what))
			must(ins.BindInt64(4, ts))
			if value != nil {
				must(ins.BindBlob(5, value))
			}
			if ct != nil {
				must(ins.BindText(6, ct.(string)))
			}
			if expire != nil {
				must(ins.BindInt64(7, expire.(int64)))
			}
			must(ins.Exec())
		}
		var names []string
		for k := range keys {
			names = append(names, fmt.Sprintf("key/%04d", k))
		}
		all[table] = names
		for range versions {
			key := names[rng.IntN(keys)]
			if rng.IntN(12) == 0 {
				write(key, "delete", nil, nil)
				continue
			}
			size := 20 + rng.IntN(880)
			if rng.IntN(40) == 0 {
				size = 4096 + rng.IntN(6000)
			}
			value := make([]byte, size)
			for i := range value {
				value[i] = byte(rng.Uint32())
			}
			var expire any
			if rng.IntN(30) == 0 {
				expire = int64(4_000_000_000_000)
			}
			write(key, "set", value, expire)
		}
		for k, key := range names {
			if k%5 == 0 {
				write(key, "delete", nil, nil)
			}
		}
		must(ins.Close())
		must(conn.Exec(`INSERT INTO "` + table + `" (key, value, content_type, created_at, updated_at, expire_at, version)
SELECT h.key, h.value, h.content_type, (SELECT min(ts) FROM "` + table + `:history" WHERE key = h.key), h.ts, h.expire_at, h.op_number
FROM "` + table + `:history" h
WHERE h.op = 'set' AND h.op_number = (SELECT max(op_number) FROM "` + table + `:history" WHERE key = h.key);
INSERT INTO "` + table + `:horizon" (key, first_ts) SELECT key, min(ts) FROM "` + table + `:history" WHERE key LIKE '%3' GROUP BY key;
COMMIT`))
	}
	return all
}

// upgradedState is what a database holds after its upgrade: as the store
// reads it, and every row of every table of the file.
type upgradedState struct {
	reads []string // per table: its live keys, each key's value, each key's history
	rows  []string // per table of the file (schema included), its rows in order
}

func (s upgradedState) diff(want upgradedState) string {
	if d := firstDiff("store reads", s.reads, want.reads); d != "" {
		return d
	}
	return firstDiff("file rows", s.rows, want.rows)
}

func firstDiff(what string, got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("%s, line %d: got %.300q, want %.300q (%d lines, want %d)", what, i, g, w, len(got), len(want))
		}
	}
	return ""
}

// readUpgraded reads each table through the store: its live keys with
// their entries, and every key's whole history, newest first.
func readUpgraded(t *testing.T, s *sqlitekv.Store, keys map[string][]string) upgradedState {
	t.Helper()
	ctx := context.Background()
	var out []string
	tables := make([]string, 0, len(keys))
	for table := range keys {
		tables = append(tables, table)
	}
	slices.Sort(tables)
	for _, table := range tables {
		live, err := s.List(ctx, sqlitekv.ListRequest{Table: table, Limit: 1 << 20})
		out = append(out, fmt.Sprintf("%s live %q %v", table, live, sqlitekv.CodeOf(err)))
		for _, key := range keys[table] {
			e, err := s.Get(ctx, sqlitekv.GetRequest{Table: table, Key: key})
			out = append(out, fmt.Sprintf("%s get %s: %v %q %q %d %d %d %d", table, key, sqlitekv.CodeOf(err), e.Value, e.ContentType, e.CreatedAt, e.UpdatedAt, e.ExpireAt, e.Version))
			p, err := s.HistoryPage(ctx, sqlitekv.HistoryRequest{Table: table, Key: key, Limit: 1 << 20})
			if err != nil {
				out = append(out, fmt.Sprintf("%s history %s: %v", table, key, sqlitekv.CodeOf(err)))
				continue
			}
			out = append(out, fmt.Sprintf("%s history %s: %d listed, next %v, cut %v", table, key, p.Listed, p.Next, p.Cut))
			for _, v := range p.Versions {
				out = append(out, fmt.Sprintf("  %d %s %d %v %q %q %d %d %d %d", v.OpNumber, v.Op, v.Ts, v.Recorded, v.Entry.Value, v.Entry.ContentType, v.Entry.CreatedAt, v.Entry.UpdatedAt, v.Entry.ExpireAt, v.Entry.Version))
			}
		}
	}
	return upgradedState{reads: out}
}

// dumpFile lists the schema and every row of every table of the file,
// read-only on the real disk.
func dumpFile(t *testing.T, path string) []string {
	t.Helper()
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer os.Remove(path + "-shm")
	var out, tables []string
	stmt, _, err := conn.Prepare(`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY name`)
	if err != nil {
		return []string{fmt.Sprintf("read the schema: %v", err)}
	}
	for stmt.Step() {
		out = append(out, fmt.Sprintf("schema %s %q on %q: %s", stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnText(2), stmt.ColumnText(3)))
		if stmt.ColumnText(0) == "table" {
			tables = append(tables, stmt.ColumnText(1))
		}
	}
	if err := errors.Join(stmt.Err(), stmt.Close()); err != nil {
		out = append(out, fmt.Sprintf("read the schema: %v", err))
	}
	for _, table := range tables {
		if strings.HasSuffix(table, ":links") || strings.HasSuffix(table, ":chained") || strings.HasSuffix(table, ":history_by_key") {
			out = append(out, "leftover table "+table)
		}
		stmt, _, err := conn.Prepare(`SELECT * FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
		if err != nil {
			out = append(out, fmt.Sprintf("read %s: %v", table, err))
			continue
		}
		var rows []string
		for stmt.Step() {
			var row strings.Builder
			for c := range stmt.ColumnCount() {
				switch stmt.ColumnType(c) {
				case sqlite3.NULL:
					row.WriteString("NULL")
				case sqlite3.INTEGER:
					fmt.Fprint(&row, stmt.ColumnInt64(c))
				case sqlite3.FLOAT:
					fmt.Fprint(&row, stmt.ColumnFloat(c))
				case sqlite3.TEXT:
					fmt.Fprintf(&row, "%q", stmt.ColumnText(c))
				default:
					fmt.Fprintf(&row, "x%x", stmt.ColumnRawBlob(c))
				}
				row.WriteString(",")
			}
			rows = append(rows, row.String())
		}
		if err := errors.Join(stmt.Err(), stmt.Close()); err != nil {
			rows = append(rows, fmt.Sprintf("read %s: %v", table, err))
		}
		slices.Sort(rows)
		out = append(out, fmt.Sprintf("table %s: %d rows", table, len(rows)))
		out = append(out, rows...)
	}
	return out
}

// isUpgraded reports whether the file as a cut left it has every table
// upgraded (no history with the key index left).
func isUpgraded(path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	conn, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	defer os.Remove(path + "-shm")
	stmt, _, err := conn.Prepare(`SELECT count(*) FROM sqlite_schema WHERE name LIKE '%:history_by_key'`)
	if err != nil {
		return false, err
	}
	defer stmt.Close()
	if !stmt.Step() {
		return false, stmt.Err()
	}
	return stmt.ColumnInt(0) == 0, nil
}
