package sqlitekv

import (
	"strings"
	"testing"

	"github.com/ncruces/go-sqlite3"
)

// The writer tells its owner of what another process committed to the
// file (a second kvd, a sqlite3 shell), once: looking outside a group, at
// a group's Begin, and across its connection's renewal, whose fresh
// connection would count such a commit as its own starting point.
func TestOthersCommitted_SaidOnceAndAcrossARenewal(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	other := func() {
		t.Helper()
		conn, err := sqlite3.Open(s.path)
		must(t, err)
		must(t, conn.Exec(`PRAGMA busy_timeout = 5000; CREATE TABLE IF NOT EXISTS outside(x); INSERT INTO outside VALUES (1)`))
		must(t, conn.Close())
	}
	put(t, s, "k", "v")
	if w.OthersCommitted() {
		t.Fatal("the writer's own commit was said to be another's")
	}
	other()
	if !w.OthersCommitted() || w.OthersCommitted() {
		t.Fatal("another's commit outside a group: want it said once")
	}
	other()
	must(t, w.Begin())
	must(t, w.Commit())
	if !w.OthersCommitted() {
		t.Fatal("another's commit before a group's Begin: not said")
	}
	renewed := ConnectionsRenewed()
	put(t, s, "large", strings.Repeat("x", 2<<20))
	other()
	if w.RenewIfGrown(); ConnectionsRenewed() != renewed+1 {
		t.Fatal("the writer was not renewed after a value of 2 MiB")
	}
	if !w.OthersCommitted() {
		t.Fatal("another's commit before the writer's renewal: not said")
	}
}
