package sqlitekv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// TestChain_AgreesWithAScan writes long, pruned histories (retention by
// count and by age, deletes, expiries, history=false writes, several
// writes a millisecond, groups that fail) and checks every chain answer
// against a plain scan of the rows the history table holds: the version
// in effect at many times, each key's versions newest first, and its
// writes after an op.
func TestChain_AgreesWithAScan(t *testing.T) {
	s, now := mustOpenStore(t, Options{HistoryKeep: 40, HistoryMaxAge: 20 * time.Second})
	w := s.Writer()
	rng := rand.New(rand.NewPCG(7, 7))
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	start := now.UnixMilli()
	for range 40 {
		must(t, w.Begin())
		for range 150 {
			key := keys[rng.IntN(len(keys))]
			var err error
			switch r := rng.IntN(20); {
			case r < 2:
				err = w.Delete(DeleteRequest{Table: DefaultTable, Key: key, NoHistory: r == 1})
			case r < 3:
				_, err = w.Put(PutRequest{Table: DefaultTable, Key: key, Value: []byte("t"), TTL: time.Duration(rng.IntN(30)) * time.Millisecond})
			case r < 4:
				_, err = w.RollbackKey(RollbackKeyRequest{Table: DefaultTable, Key: key, Steps: 1 + rng.IntN(3)})
			default:
				_, err = w.Incr(IncrRequest{Table: DefaultTable, Key: key, Delta: 1, NoHistory: r == 4})
			}
			if c := CodeOf(err); err != nil && c != CodeKeyNotFound && c != CodeKeyExpired && c != CodeTimeTravelGap && c != CodeInvalidParameters {
				t.Fatal(err)
			}
			*now = now.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
		if rng.IntN(8) == 0 {
			w.abandon() // a group that fails: its rows and op numbers go back
			continue
		}
		must(t, w.Commit())
		*now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		if _, err := w.Sweep(); err != nil {
			t.Fatal(err)
		}
	}
	end := now.UnixMilli()
	tw, err := w.table(DefaultTable, false)
	must(t, err)
	scanAt := mustPrepareT(t, w.conn, `SELECT op_number FROM "kv_store:history" WHERE key = ?1 AND ts <= ?2 ORDER BY op_number DESC LIMIT 1`)
	scanAll := mustPrepareT(t, w.conn, `SELECT op_number FROM "kv_store:history" WHERE key = ?1 ORDER BY op_number DESC`)
	for _, key := range keys {
		all := scanOps(t, scanAll, key)
		if len(all) == 0 {
			t.Fatalf("%s: no history", key)
		}
		for at := start - 5; at <= end+5; at += 1 + int64(rng.IntN(40)) {
			want := scanOps(t, scanAt, key, at)
			head, _, err := tw.newest(key)
			must(t, err)
			got, found, _, err := tw.seek(head, atTime(at, math.MaxInt64).reached)
			must(t, err)
			if found != (len(want) == 1) || found && got.op != want[0] {
				t.Fatalf("%s at %d: chain found %v %d, the scan %v", key, at, found, got.op, want)
			}
		}
		var listed []int64
		must(t, tw.olderThan(key, HistoryCursor{}, func(v Version) bool { listed = append(listed, v.OpNumber); return true }))
		if !slices.Equal(listed, all) {
			t.Fatalf("%s: versions %v, the scan %v", key, listed, all)
		}
		for _, after := range []int64{0, all[len(all)-1] - 1, all[len(all)/2], all[0]} {
			var got []int64
			must(t, tw.keyChangesAfter(key, after, 7, func(v Version) bool { got = append(got, v.OpNumber); return true }))
			var want []int64
			for _, op := range slices.Backward(all) {
				if op > after && len(want) < 7 {
					want = append(want, op)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s after %d: changes %v, the scan %v", key, after, got, want)
			}
		}
	}
}

func mustPrepareT(t *testing.T, conn *sqlite3.Conn, sql string) *sqlite3.Stmt {
	t.Helper()
	stmt, _, err := conn.Prepare(sql)
	must(t, err)
	t.Cleanup(func() { stmt.Close() })
	return stmt
}

func scanOps(t *testing.T, stmt *sqlite3.Stmt, args ...any) []int64 {
	t.Helper()
	defer stmt.Reset()
	must(t, bindAll(stmt, args...))
	var ops []int64
	for stmt.Step() {
		ops = append(ops, stmt.ColumnInt64(0))
	}
	must(t, stmt.Err())
	return ops
}
