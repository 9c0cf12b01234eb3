package main

import (
	"fmt"
	"runtime"
	"syscall"
)

// Each open database holds three files (the database, its WAL and its
// shared-memory index) for its writer and for each of its readers
// (sqlitekv's default: GOMAXPROCS, at least 2).
func filesPerDatabase() int { return 3 * (1 + max(2, runtime.GOMAXPROCS(0))) }

// spareFiles is room for everything else: the listener, the profiler,
// logs, the token file, backups, directory scans.
const spareFiles = 64

// connectionCap is --max-connections when not given: the files kvd may
// open (RLIMIT_NOFILE; Go raises its soft limit to the hard one at start)
// less room for --max-open-dbs databases, yet at most half of them, so a
// low limit still leaves connections.
func connectionCap(maxOpenDBs int) (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	files := int(min(lim.Cur, 1<<30))
	return files - min(files/2, filesPerDatabase()*maxOpenDBs+spareFiles), nil
}
