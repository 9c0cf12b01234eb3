//go:build !linux || sqlite3_flock

package sqlitekv

import "os"

// lockFolder, elsewhere than Linux or where the driver's own locks are
// flock(2) ones (which this one would be released by), takes no lock: the
// directory-mode folder's only writer is for the operator to see to
// (dirmode_lock_linux.go).
func lockFolder(string) (*os.File, error) { return nil, nil }
