//go:build !linux

package sqlitekv

import "os"

// lockFolder, elsewhere than Linux, takes no lock: the directory-mode
// folder's only writer is for the operator to see to (dirmode_lock_linux.go).
func lockFolder(string) (*os.File, error) { return nil, nil }
