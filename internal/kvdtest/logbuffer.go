package kvdtest

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// LogBuffer collects what a logger, or a child process's stderr, writes
// while the test reads it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Holds reports whether the log holds s within d: a child process's
// output is copied in by a goroutine of its own, which may not have got
// to a line the child wrote before it answered.
func (b *LogBuffer) Holds(s string, d time.Duration) bool {
	for deadline := time.Now().Add(d); !strings.Contains(b.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
