package actors

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/sqlitekv"
)

// Only clean spellings of a database are remembered, so a client cannot
// grow the name cache by inventing spellings (a/./b, a//b, ...).
func TestRegistry_RemembersOnlyCleanSpellings(t *testing.T) {
	dataDir := t.TempDir()
	resolver, err := sqlitekv.NewResolver(dataDir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(Config{Resolver: resolver})
	defer reg.Close()
	abs := filepath.Join(resolver.DataDir(), "app.db")
	spellings := []string{"app", "./app", abs, resolver.DataDir() + "//app.db", resolver.DataDir() + "/./app.db"}
	for i := range 50 {
		spellings = append(spellings, resolver.DataDir()+"/"+strings.Repeat("./", i+1)+"app.db")
	}
	for _, name := range spellings {
		db, err := reg.Open(name, true, false)
		if err != nil {
			t.Fatalf("Open(%q): %v", name, err)
		}
		db.Release()
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.dbs) != 1 || len(reg.byName) != 2 {
		t.Fatalf("after %d spellings: %d databases, %d names remembered; want 1 and 2 (app, %s)", len(spellings), len(reg.dbs), len(reg.byName), abs)
	}
}
