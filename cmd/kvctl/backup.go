package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

func bindBackup(fs *flag.FlagSet) runner {
	force := fs.Bool("force", false, "replace FILE if it exists")
	return func(ctx context.Context, e *env, args []string) error {
		file := args[0]
		if file == "" {
			return usagef("backup needs a FILE to write")
		}
		// Checked before the download, which may be long: a folder is
		// never replaced, and an existing file only with --force.
		if fi, err := os.Stat(file); err == nil && fi.IsDir() {
			return usagef("%s is a folder; name the FILE to write", file)
		}
		if !*force {
			if _, err := os.Lstat(file); err == nil {
				return usagef("%s exists; give --force to replace it", file)
			}
		}
		n, err := backupTo(ctx, e, file, *force)
		if err != nil {
			return err
		}
		return e.out.print(func() any { return map[string]any{"file": file, "bytes": n} }, func(w io.Writer) {
			fmt.Fprintf(w, "backed up %d bytes to %s\n", n, file)
		})
	}
}

// backupTo downloads the copy into a temporary file beside file, flushes
// it to disk and only then puts it in place, so that file is never a
// partial copy: a failed or interrupted backup leaves whatever was there.
func backupTo(ctx context.Context, e *env, file string, force bool) (int64, error) {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".kvctl-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // gone once renamed; else the partial copy
	n, err := e.client.BackupTo(ctx, tmp)
	if err == nil {
		err = checkSQLite(tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := place(tmp.Name(), file, force); err != nil {
		return 0, err
	}
	syncDir(dir)
	return n, nil
}

// checkSQLite refuses a download that is not a SQLite file (a proxy's
// page, say) before it can pass for a backup.
func checkSQLite(f *os.File) error {
	head := make([]byte, len(sqliteMagic))
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, sqliteMagic) {
		return fmt.Errorf("kvd: backup: the copy is not a SQLite database")
	}
	return nil
}

// place moves the finished copy to file. Without force a hard link puts
// it there only if file still does not exist (someone may have made it
// while the copy downloaded); a file system without hard links falls back
// to a rename after the check made before downloading.
func place(tmp, file string, force bool) error {
	if !force {
		err := os.Link(tmp, file)
		if errors.Is(err, fs.ErrExist) {
			return usagef("%s exists; give --force to replace it", file)
		}
		if err == nil {
			return nil
		}
	}
	return os.Rename(tmp, file)
}

// syncDir flushes dir's entry for the new file; a failure only weakens
// durability across a power cut, so it is not the backup's error.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
