package sqlitekv

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ncruces/go-sqlite3"
)

// The SQLite driver keeps a failed open's memory for good (its module
// instance: a quarter GiB of address space reserved, about 125 KB used),
// and while kvd is out of file descriptors every open fails: a kvd at its
// limit grew by 150 MB a minute, and would have run out of memory maps.
// So kvd asks the driver for a connection only once it could open the
// files one takes (the database, its log and shared memory, a folder to
// sync).
const descriptorsForAConnection = 4

// openConn opens a connection as sqlite3.OpenFlags does, or answers 503
// without asking the driver when the files it would take cannot be had,
// or when the driver cannot map the memory a connection takes (it
// panics then): under an address-space limit, say, after many
// connections retired by faults kept theirs (faults.go).
func openConn(name string, flags sqlite3.OpenFlag) (conn *sqlite3.Conn, err error) {
	if err := canOpen(descriptorsForAConnection); err != nil {
		return nil, outOfFiles("Database file cannot be opened", err)
	}
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); !ok || !errors.Is(e, syscall.ENOMEM) {
				panic(p)
			}
			conn, err = nil, fmt.Errorf("a connection's memory: %w", p.(error)) // 503 (dbError)
		}
	}()
	return sqlite3.OpenFlags(name, flags)
}
