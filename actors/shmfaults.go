package actors

import (
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// A database whose -shm is changed underneath kvd is opened afresh after
// each fault (sqlitekv/faults.go), and each fault leaves the memory of
// the connections it retired behind: under a script truncating one -shm
// in a loop, a tester's kvd grew by 700 MB in 10 s. So a fault within a
// minute of the database's last one doubles how long its reopen waits,
// from 250 ms up to 30 s; meanwhile its requests are asked to retry. A
// fault alone waits for nothing.
const (
	firstShmFaultWait = 250 * time.Millisecond
	maxShmFaultWait   = 30 * time.Second
	shmFaultMemory    = time.Minute
)

// shmFaults is when each database's store last met a -shm fault, and how
// long its reopen waits after it.
type shmFaults map[string]*shmFaultWait

type shmFaultWait struct {
	at   time.Time
	wait time.Duration
}

// note records that path's store was closed after a -shm fault.
func (f shmFaults) note(path string, now time.Time) {
	last := f[path]
	switch {
	case last == nil || now.Sub(last.at) > shmFaultMemory:
		last = &shmFaultWait{}
	case last.wait == 0:
		last.wait = firstShmFaultWait
	default:
		last.wait = min(2*last.wait, maxShmFaultWait)
	}
	last.at = now
	f[path] = last
}

// reopenRefused is the answer to a request that must wait before path is
// opened again, nil when it may be.
func (f shmFaults) reopenRefused(path string, now time.Time) error {
	last := f[path]
	switch {
	case last == nil:
		return nil
	case now.Sub(last.at) > shmFaultMemory:
		delete(f, path)
		return nil
	}
	if left := last.at.Add(last.wait).Sub(now); left > 0 {
		return sqlitekv.Errorf(sqlitekv.CodeOverloaded, "The database's -shm file keeps being changed underneath kvd: it is opened again in %v; retry then", left.Round(time.Millisecond))
	}
	return nil
}
