package client_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

func TestCreateDB_ThenWritesNeedNoFlag(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	created, err := c.CreateDB(ctx, "made_by_test", client.Table("things"))
	if err != nil {
		t.Fatal(err)
	}
	if created.Table != "things" || filepath.Base(created.Path) != "made_by_test.db" {
		t.Errorf("got %+v, want made_by_test.db with table things", created)
	}
	if _, err := c.Put(ctx, "k", client.Text("v"), client.DB("made_by_test")); err != nil {
		t.Errorf("put into the created db: %v", err)
	}
	if _, err := c.CreateDB(ctx, "../escape"); !errors.Is(err, client.ErrInvalidDBPath) {
		t.Errorf("create outside the data dir: got %v, want INVALID_DB_PATH", err)
	}
}

// A backup is a SQLite file kvd can serve again as it is.
func TestBackup_StreamsADatabaseKvdCanOpen(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{})
	c, ctx := newClientOf(t, srv.URL, ""), testContext(t)
	if _, err := c.Put(ctx, "k", client.Binary(allBytes())); err != nil {
		t.Fatal(err)
	}
	body, err := c.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.HasPrefix(data, []byte("SQLite format 3\x00")) {
		t.Fatalf("backup: %d bytes, %v; want a SQLite file", len(data), err)
	}
	f, err := os.Create(filepath.Join(srv.DataDir, "restored.db"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.BackupTo(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != int64(len(data)) {
		t.Fatalf("backup to a file: %d bytes, %v; want %d", n, err, len(data))
	}
	e, err := c.Get(ctx, "k", client.DB("restored"))
	if err != nil || !bytes.Equal(e.Data, allBytes()) {
		t.Errorf("read from the restored copy: got %v, %v", e, err)
	}
	if _, err := c.Backup(ctx, client.DB("no_such_db")); !errors.Is(err, client.ErrDatabaseNotFound) {
		t.Errorf("backup of a missing db: got %v, want DATABASE_NOT_FOUND", err)
	}
}

func TestHealthReady_AnswerWithoutADatabase(t *testing.T) {
	c, err := client.New(client.Config{URL: kvdURL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testContext(t)
	if err := c.Health(ctx); err != nil {
		t.Errorf("health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("ready: %v", err)
	}
}

// In directory mode each key is a file; Rebuild lets kvd see files written
// behind its back.
func TestDirectoryMode_KeysAreFilesAndRebuildSeesOutsideEdits(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{})
	dir := filepath.Join(srv.DataDir, "notes")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{URL: srv.URL, DB: dir, Table: "site"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testContext(t)
	if _, err := c.Put(ctx, "docs/readme.md", client.Text("# hi")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "site", "docs", "readme.md")); err != nil || string(got) != "# hi" {
		t.Fatalf("file: got %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site", "outside.txt"), []byte("edited"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, "outside.txt", client.Rebuild())
	if err != nil || e.String() != "edited" {
		t.Fatalf("rebuilt read: got %v, %v", e, err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list.Keys) != 2 {
		t.Errorf("list after rebuild: got %v, %v; want both files", list, err)
	}
}
