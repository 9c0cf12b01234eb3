package sqlitekv

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

func TestCheckpoints_RunBesideTheWriterAndKeepTheWALBounded(t *testing.T) {
	background, writer := backgroundCheckpointPages, writerCheckpointPages
	backgroundCheckpointPages, writerCheckpointPages = 40, 200
	t.Cleanup(func() { backgroundCheckpointPages, writerCheckpointPages = background, writer })

	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	value := bytes.Repeat([]byte("x"), 3000) // about a page, twice: value and history
	put := func(i int) {
		t.Helper()
		if err := w.Begin(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Put(PutRequest{Table: DefaultTable, Key: fmt.Sprint("k", i), Value: value, ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		w.CheckpointIfLarge() // as the database actor does after answering a group
	}
	size := func(path string) int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	// A read leaves its reader idle with a transaction open, which the
	// writes below overtake: it must not hold the checkpoints back.
	put(0)
	if _, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: "k0"}); err != nil {
		t.Fatal(err)
	}

	// Below the writer's own threshold, only the checkpointer copies pages
	// into the database file.
	before := size(s.path)
	i := 1
	for ; s.wal.pages.Load() < int64(backgroundCheckpointPages+10); i++ {
		put(i)
	}
	for deadline := time.Now().Add(10 * time.Second); size(s.path) == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes with %d pages in the WAL: no background checkpoint", before, s.wal.pages.Load())
		}
	}

	// Written to without pause, the WAL still starts over, even with a
	// read after every write, whose reader would keep its transaction open.
	for end := i + 1000; i < end; i++ {
		put(i)
		if _, err := s.Get(t.Context(), GetRequest{Table: DefaultTable, Key: "k0"}); err != nil {
			t.Fatal(err)
		}
	}
	// Without the writer's checkpoints these writes leave 26 MB. The bound
	// allows twice the writer's threshold more than it needs: on a loaded
	// machine the starved checkpointer can hold its lock while the
	// writer's own checkpoint comes round, and the WAL grows a group or
	// two more before it starts over (a run at load average 6 saw 1.78 MB against 1.65).
	const frame = 4096 + 24
	if got, limit := size(s.path+"-wal"), int64(4*writerCheckpointPages*frame); got > limit {
		t.Errorf("WAL is %d bytes after 1000 writes, want at most %d", got, limit)
	}
}

// A log truncated in place under kvd, in the middle of a commit's frames,
// must not be checkpointed: what is left of that commit would be copied
// over pages the database file holds from an earlier checkpoint, and the
// file would be corrupt. The checkpointer finds the cut before it copies,
// and the store is to be closed (the cleanup checks the file's integrity).
func TestCheckpoints_LeaveALogCutInPlaceAlone(t *testing.T) {
	s, _ := mustOpenStore(t, Options{})
	w := s.Writer()
	group := func(keys int, value string) {
		t.Helper()
		must(t, w.Begin())
		for i := range keys {
			if _, err := w.Put(PutRequest{Table: DefaultTable, Key: fmt.Sprint("k", i), Value: []byte(value), ContentType: "text/plain"}); err != nil {
				t.Fatal(err)
			}
		}
		must(t, w.Commit())
	}
	group(20, string(bytes.Repeat([]byte("."), 1000)))
	if _, _, err := w.conn.WALCheckpoint("main", sqlite3.CHECKPOINT_PASSIVE); err != nil {
		t.Fatal(err)
	}
	group(1, "before")
	walPath := s.path + "-wal"
	before, err := os.Stat(walPath)
	must(t, err)
	group(100, string(bytes.Repeat([]byte("b"), 2000)))
	after, err := os.Stat(walPath)
	must(t, err)
	must(t, os.Truncate(walPath, (before.Size()+after.Size())/2))

	w.ckpt.poke()
	for deadline := time.Now().Add(5 * time.Second); !s.MustReopen(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the checkpointer did not find the log cut")
		}
	}
}
