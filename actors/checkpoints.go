package actors

import (
	"sync"
	"time"
)

// checkpointWarnings logs failed checkpoints, at most one line every
// checkpointWarningEvery: a disk that fails every fsync fails a checkpoint
// at every commit or so, and nothing else would tell (the pages stay in
// the log, which only grows).
type checkpointWarnings struct {
	mu       sync.Mutex
	loggedAt time.Time
	unsaid   int // failures since the last line
}

const checkpointWarningEvery = 10 * time.Second

func (r *Registry) checkpointFailed(path string, err error) {
	r.cfg.Hooks.checkpointFailed()
	w := &r.checkpoints
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unsaid++
	if time.Since(w.loggedAt) < checkpointWarningEvery {
		return
	}
	r.cfg.Logger.Error("checkpoint failed: the log keeps the writes and grows until one succeeds", "db", path, "err", err, "failures", w.unsaid)
	w.loggedAt, w.unsaid = time.Now(), 0
}
