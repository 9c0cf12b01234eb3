package actors

import (
	"sync"
	"time"
)

// sweepSchedule remembers when each database's sweep last came due, across
// its closes: a database closed sooner than a sweep interval after each
// open (evicted past MaxOpen, or closed idle, and opened again by the next
// request) would otherwise never be swept, and its expired keys and the
// history past its keep would pile up.
type sweepSchedule struct {
	mu  sync.Mutex
	due map[string]time.Time // by real path: when its last sweep came due, or it was first opened
}

// maxRemembered bounds the schedule: past it, it starts afresh, and each
// database's next sweep comes a whole interval after its next open.
const maxRemembered = 1 << 16

// start calls sweep every interval until stop is called, the first time an
// interval after the last one of path's database (or after its first open),
// at once if that is past.
func (s *sweepSchedule) start(interval time.Duration, path string, sweep func()) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	t := time.NewTimer(s.untilNext(interval, path))
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				s.cameDue(path)
				sweep()
				t.Reset(interval)
			case <-done:
				return
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}

func (s *sweepSchedule) untilNext(interval time.Duration, path string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.due[path]
	if !ok {
		if s.due == nil || len(s.due) >= maxRemembered {
			s.due = map[string]time.Time{}
		}
		s.due[path] = time.Now()
		return interval
	}
	return max(0, time.Until(last.Add(interval)))
}

func (s *sweepSchedule) cameDue(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.due != nil {
		s.due[path] = time.Now()
	}
}
