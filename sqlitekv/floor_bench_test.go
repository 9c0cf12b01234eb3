package sqlitekv

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// BenchmarkSQLiteFloor is the least SQLite work a batch-set item costs the
// writer, without any of kvd's code: kvbench's batch-set (100-byte values
// over 1000 keys, 64 batches of 100 per group) as bare prepared statements
// on kvd's own schema. Checkpoints run outside the timer, as kvd runs them
// on another core.
//
//   - chained: the history row, linked into its key's chain by the
//     writer's own linkFor (chain.go). Every write is a version of its
//     key, so every item costs this much: one writer cannot store more
//     items per second than it measures;
//   - chained+value: that and an UPDATE of the value row per item, which
//     kvd avoids by writing a key's value row once per group (heldvalues.go);
//   - key index: the row with an entry in a per-key index on (key, ts)
//     instead, as kvd stored versions before chains;
//   - row alone: neither, to show what linking costs.
func BenchmarkSQLiteFloor(b *testing.B) {
	for _, c := range []struct {
		name           string
		chained, value bool
		keyIndex       bool
	}{
		{"chained", true, false, false},
		{"chained+value", true, true, false},
		{"key index", false, false, true},
		{"row alone", false, false, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			conn, names := floorDatabase(b)
			if c.keyIndex {
				must(b, conn.Exec(`CREATE INDEX "`+names.name+`:history_by_key" ON `+names.history+` (key, ts)`))
			}
			record := mustPrepare(b, conn, `INSERT INTO `+names.history+` (key, op, ts, recorded, seq, prev, jump, jump_ts, value, content_type, expire_at)
VALUES (?1, 'set', ?2, 1, ?4, ?5, ?6, ?7, ?3, 'application/json', NULL)`)
			links, err := prepareWriteTable(conn, names) // for linkFor
			must(b, err)
			b.Cleanup(links.close)
			store := mustPrepare(b, conn, `UPDATE `+names.values+` SET value = ?3, updated_at = ?2, version = ?2 WHERE key = ?1`)
			keys := make([]string, 1000)
			value := []byte(`"` + strings.Repeat("v", 98) + `"`)
			create := mustPrepare(b, conn, `INSERT INTO `+names.values+` (key, value, content_type, created_at, updated_at, expire_at, version) VALUES (?1, ?3, 'application/json', ?2, ?2, NULL, ?2)`)
			for i := range keys {
				keys[i] = fmt.Sprintf("kvbench/%06d", i)
				floorExec(b, create, keys[i], 0, value) // as kvbench, which writes keys that exist
			}
			const group = 64 * MaxBatch
			b.ResetTimer()
			for n := 0; n < b.N; {
				must(b, conn.Exec(`BEGIN IMMEDIATE`))
				for end := min(n+group, b.N); n < end; n++ {
					key := keys[n*7919%len(keys)] // every key, in no order
					var l link
					if c.chained {
						var err error
						if l, err = links.linkFor(key); err != nil {
							b.Fatal(err)
						}
					}
					record.BindInt64(4, l.seq)
					record.BindInt64(5, l.prev.op)
					record.BindInt64(6, l.jump.op)
					record.BindInt64(7, l.jump.ts)
					floorExec(b, record, key, n, value)
					if c.chained {
						links.recent.appended(key, chainRow{conn.LastInsertRowID(), int64(n)}, l, false, false)
					}
					if c.value {
						floorExec(b, store, key, n, value)
					}
				}
				must(b, conn.Exec(`COMMIT`))
				b.StopTimer()
				must(b, conn.Exec(`PRAGMA wal_checkpoint(PASSIVE)`))
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// floorDatabase opens a fresh database set up as the writer sets up its
// own (newWriter), with checkpoints left to the benchmark.
func floorDatabase(b *testing.B) (*sqlite3.Conn, tableNames) {
	b.Helper()
	conn, err := sqlite3.Open(filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	names := namesFor(DefaultTable)
	must(b, conn.Exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 0;`+names.ddl()))
	return conn, names
}

func floorExec(b *testing.B, stmt *sqlite3.Stmt, key string, n int, value []byte) {
	stmt.BindText(1, key)
	stmt.BindInt64(2, int64(n))
	stmt.BindBlob(3, value)
	if err := stmt.Exec(); err != nil {
		b.Fatal(err)
	}
}

func mustPrepare(b *testing.B, conn *sqlite3.Conn, sql string) *sqlite3.Stmt {
	b.Helper()
	stmt, _, err := conn.Prepare(sql)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stmt.Close() })
	return stmt
}
