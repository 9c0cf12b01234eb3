//go:build !linux

package sqlitekv

// holdFolder, elsewhere than Linux, takes no lock: the directory-mode
// folder's only writer is for the operator to see to (dirmode_lock_linux.go).
func holdFolder(*Writer) error { return nil }
