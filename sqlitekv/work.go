package sqlitekv

import (
	"context"
	"sync/atomic"
)

// workCount counts how often SQLite, running statements on the writer's
// connection, asks whether to stop: the driver asks its interrupt context
// at each step and every 1000 instructions of SQLite's virtual machine.
// A count that moves is a writer at work, however long its operation (a
// table rollback over 100,000 keys takes tens of seconds); one that stands
// still while the actor does not answer is a writer stuck outside SQLite
// (an fsync that never returns, say). The count never asks SQLite to stop.
type workCount struct {
	context.Context
	n atomic.Uint64
}

func newWorkCount() *workCount { return &workCount{Context: context.Background()} }

func (c *workCount) Err() error {
	c.n.Add(1)
	return nil
}

// WriterWork is the writer's work count (workCount): the actors' liveness
// check takes an actor that has not answered while it moved as busy, not
// stuck. A read-only store has no writer, and no work to count.
func (s *Store) WriterWork() uint64 {
	if s.writer == nil {
		return 0
	}
	return s.writer.work.n.Load()
}
