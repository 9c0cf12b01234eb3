package actors_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/sqlitekv"
)

// Rebuild requests that pile up share a rescan, but a rescan answers only
// the requests sent before it began: a file added by hand before a rebuild
// is always in the listing after it.
func TestRebuild_RequestsThatPileUpShareARescan(t *testing.T) {
	root := t.TempDir()
	resolver, err := sqlitekv.NewResolver(t.TempDir(), []string{root}, false)
	if err != nil {
		t.Fatal(err)
	}
	var rescans atomic.Int64
	reg := actors.NewRegistry(actors.Config{Resolver: resolver, Hooks: actors.Hooks{Rescanned: func() { rescans.Add(1) }}})
	t.Cleanup(func() { reg.Close() })
	dir := filepath.Join(root, "notes")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	db, err := reg.Open(context.Background(), dir, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Release()
	byHand := func(name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "t"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "t", name), []byte(name), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 { // enough files that a rescan takes a while
		byHand(fmt.Sprintf("f%03d", i))
	}

	const clients = 32
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			if err := db.Rebuild(context.Background(), "t"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := rescans.Load(); n == 0 || n >= clients {
		t.Errorf("%d rescans for %d rebuild requests at once, want them shared", n, clients)
	}

	for i := range 5 {
		name := fmt.Sprintf("new%d", i)
		byHand(name)
		if err := db.Rebuild(context.Background(), "t"); err != nil {
			t.Fatal(err)
		}
		keys, err := db.List(context.Background(), sqlitekv.ListRequest{Table: "t", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(keys, name) {
			t.Fatalf("%s, added by hand before a rebuild, is not listed after it", name)
		}
	}
}
