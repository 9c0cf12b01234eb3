package sqlitekv

import (
	"os"

	"github.com/ncruces/go-sqlite3/vfs"
)

// Hooks for the power-cut test (package sqlitekv_test, which drives the
// actors): they put a simulated disk under kvd's own VFS layers.

// UnderVFS registers base as name, and kvd's WAL buffering and read VFS
// on top of it, so that stores opened with OnVFS(opts, name) reach their
// files through the writer's buffered WAL or the readers' VFS, then base.
func UnderVFS(name string, base vfs.VFSFilename) {
	vfs.Register(name, base)
	registerWALBuffering(name, base)
	registerReadVFS(name, base)
}

// OnVFS returns opts with every connection opened through the VFS name.
func OnVFS(opts Options, name string) Options {
	opts.vfs = name
	return opts
}

// SyncFolder is the fsync of a folder that SetSyncDir replaces.
var SyncFolder = syncFolder

// SetSyncDir replaces the fsync of a database's folder (Store.Open) and
// returns what restores it.
func SetSyncDir(fn func(folder string) error) (restore func()) {
	old := syncDir
	syncDir = fn
	return func() { syncDir = old }
}

// SetCheckpointPages sets the WAL sizes at which the background and the
// writer's own checkpoints run (checkpoint.go), and returns what restores
// them. Only while no store is open.
func SetCheckpointPages(background, writer int) (restore func()) {
	oldBackground, oldWriter := backgroundCheckpointPages, writerCheckpointPages
	backgroundCheckpointPages, writerCheckpointPages = background, writer
	return func() { backgroundCheckpointPages, writerCheckpointPages = oldBackground, oldWriter }
}

// SetBeforeKeyFileOpen runs fn on a key file's path after directory mode
// has looked at the file and before it opens it to read (swap the file
// there), and returns what restores the plain open.
func SetBeforeKeyFileOpen(fn func(path string)) (restore func()) {
	old := openKeyFile
	openKeyFile = func(t *treeFS, p string) (*os.File, error) {
		fn(p)
		return old(t, p)
	}
	return func() { openKeyFile = old }
}

// SetBeforeResolveFolder runs fn on the folder directory mode found for a
// key just before it resolves the folder's symlinks (remove it there), and
// returns what restores the plain resolution.
func SetBeforeResolveFolder(fn func(folder string)) (restore func()) {
	old := resolveFolder
	resolveFolder = func(folder string) (string, error) {
		fn(folder)
		return old(folder)
	}
	return func() { resolveFolder = old }
}

// SetBeforeStagingTemp runs fn on the folder directory mode picked for a
// key's temp file just before it creates the file there (remove the
// folder there), and returns what restores the plain creation.
func SetBeforeStagingTemp(fn func(dir string)) (restore func()) {
	old := createStagingTemp
	createStagingTemp = func(t *treeFS, dir string) (*os.File, string, error) {
		fn(dir)
		return old(t, dir)
	}
	return func() { createStagingTemp = old }
}

// SetBeforeFolderInTheWay runs fn on a folder that stands where a key's
// file is to go just before directory mode opens it to see what it holds
// (remove it there), and returns what restores the plain open.
func SetBeforeFolderInTheWay(fn func(folder string)) (restore func()) {
	old := openFolderInTheWay
	openFolderInTheWay = func(t *treeFS, p string) (*os.File, error) {
		fn(p)
		return old(t, p)
	}
	return func() { openFolderInTheWay = old }
}

// KeyIndexDDL is a table as kvd made it before chains (upgrade.go).
const KeyIndexDDL = keyIndexDDL
