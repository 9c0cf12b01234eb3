package sqlitekv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kvd/kvd/internal/srcconst"
)

// TestCodes_ListsEveryDeclaredCode fails when a Code constant is declared
// without being added to Codes(): httpapi's tests check each code there
// has its HTTP status, so a code left out would answer 500.
func TestCodes_ListsEveryDeclaredCode(t *testing.T) {
	declared, err := srcconst.Declared(".", "Code")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[Code]bool{}
	for _, c := range Codes() {
		if listed[c] {
			t.Errorf("Codes() lists %s twice", c)
		}
		listed[c] = true
	}
	values := map[Code]bool{}
	for name, value := range declared {
		values[Code(value)] = true
		if !listed[Code(value)] {
			t.Errorf("%s (%s) is declared but not in Codes()", name, value)
		}
	}
	for c := range listed {
		if !values[c] {
			t.Errorf("Codes() lists %s, declared as no constant", c)
		}
	}
}

// A bare SQLITE_CANTOPEN of a process a few descriptors short of its limit
// is taken for want of them (503), though the four that kvd once asked for
// could still be opened: under load, the files the failed open and other
// requests had are closed again by the time kvd looks.
func TestCannotOpenMore_NearTheLimitCounts(t *testing.T) {
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	if cannotOpenMore() {
		t.Fatalf("far from the limit (%d): said out of files", saved.Cur)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	near := saved
	near.Cur = uint64(len(open) + 8)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &near); err != nil {
		t.Skip(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &saved)
	if !cannotOpenMore() {
		t.Fatalf("8 descriptors short of the limit (%d): not said out of files", near.Cur)
	}
}
