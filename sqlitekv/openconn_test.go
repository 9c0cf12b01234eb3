package sqlitekv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// An open out of file descriptors is refused (503) before the SQLite
// driver is asked: the driver keeps a failed open's memory, a quarter GiB
// of address space reserved each time (a tester's kvd out of descriptors
// for 90 s grew from 81 to 236 MB of memory).
func TestOpen_OutOfDescriptorsLeavesNoMemoryBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	var saved unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &saved))
	open, err := openDescriptors()
	must(t, err)
	before := addressSpace(t)
	near := saved
	near.Cur = uint64(open + 8)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &near); err != nil {
		t.Skip(err)
	}
	var taken []int // every descriptor left, as a kvd at its limit
	for {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		taken = append(taken, fd)
	}
	var codes []Code
	for range 20 {
		_, err := Open(path, true, Options{})
		codes = append(codes, CodeOf(err))
	}
	for _, fd := range taken {
		unix.Close(fd)
	}
	must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &saved))
	for _, code := range codes {
		if code != CodeOverloaded {
			t.Fatalf("opens out of descriptors: %v, want OVERLOADED each", codes)
		}
	}
	if grown := addressSpace(t) - before; grown > 64<<20 {
		t.Fatalf("20 opens out of descriptors took %d MB more address space", grown>>20)
	}
}

// addressSpace is the process's virtual memory size, in bytes.
func addressSpace(t *testing.T) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	_, rest, _ := bytes.Cut(status, []byte("VmSize:"))
	var kb int64
	if _, err := fmt.Sscan(string(rest), &kb); err != nil {
		t.Fatal(err)
	}
	return kb << 10
}
