package sqlitekv

import (
	"fmt"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// TestJumpSeq_FollowsMyersRule checks the closed form against the rule it
// stands for: a new node jumps where its parent's jump jumps when the
// parent's two jumps span the same length, else to its parent.
func TestJumpSeq_FollowsMyersRule(t *testing.T) {
	const n = 200_000
	jump := make([]int64, n+1) // by seq; the first version jumps to itself here
	jump[1] = 1
	for seq := int64(2); seq <= n; seq++ {
		p := seq - 1
		want := p
		if pj := jump[p]; p-pj == pj-jump[pj] {
			want = jump[pj]
		}
		jump[seq] = want
		if got := jumpSeq(seq); got != want {
			t.Fatalf("jumpSeq(%d) = %d, want %d", seq, got, want)
		}
	}
}

// TestChain_SearchesInLogHops counts the rows a search reads down one
// long chain: it must grow with log(versions), for every target.
func TestChain_SearchesInLogHops(t *testing.T) {
	const n = 100_000
	store, _ := mustOpenStore(t, Options{HistoryKeep: -1})
	w := store.Writer()
	must(t, w.Begin())
	for i := range n {
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: "k", Value: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, w.Commit())
	tw, err := w.table(DefaultTable, false)
	must(t, err)
	head, found, err := tw.newest("k")
	if err != nil || !found || head.seq != n {
		t.Fatalf("head %+v %v %v", head, found, err)
	}
	most := 0
	for target := int64(1); target <= n; target += 97 {
		row, found, err := tw.atSeq(head, target)
		if err != nil || !found || row.seq != target {
			t.Fatalf("atSeq(%d) = %+v %v %v", target, row, found, err)
		}
		reads := 0 // each row a search reads is looked at once; a jump's time, in its row, too
		at, found, _, err := tw.seek(head, func(h hop) bool {
			if h.seq != 0 {
				reads++
			}
			return h.op <= row.op
		})
		if err != nil || !found || at.op != row.op {
			t.Fatalf("seek to seq %d: %+v %v %v, want op %d", target, at, found, err, row.op)
		}
		if reads > 3*17 { // a read a step, at most about 3·log2(n) steps
			t.Fatalf("seek to seq %d read %d rows", target, reads)
		}
		most = max(most, reads)
	}
	t.Logf("a search down %d versions read at most %d rows", n, most)
}

// checkAllChains runs chainsOf, as CheckIntegrity does.
func checkAllChains(tb testing.TB, conn *sqlite3.Conn) {
	tb.Helper()
	if err := chainsOf(conn); err != nil {
		tb.Error(err)
	}
}

// TestCheckIntegrity_FindsABrokenChain: a chain cut in its middle, or a
// jump to a row of the wrong seq, fails CheckIntegrity.
func TestCheckIntegrity_FindsABrokenChain(t *testing.T) {
	for _, breakIt := range []string{
		`UPDATE "kv_store:history" SET prev = NULL WHERE seq = 5`,
		`UPDATE "kv_store:history" SET jump = prev WHERE seq = 4`,
	} {
		s, path := fileStore(t)
		for i := range 8 {
			put(t, s, "k", fmt.Sprint(i))
		}
		changeOutside(t, s, path, breakIt)
		if err := CheckIntegrity(path); err == nil {
			t.Errorf("after %s: CheckIntegrity found nothing", breakIt)
		} else {
			t.Log(err)
		}
	}
}
