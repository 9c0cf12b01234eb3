package httpapi

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// The per-database queue bounds waiting writes by count; the body budget
// bounds them by size. Every byte read from a request body is charged to
// one server-wide budget until its request ends, so a flood of large
// values answers 503 OVERLOADED instead of exhausting memory. Bodies whose
// clients stall would hold that memory until the read timeout (a client
// holding 324 uploads a byte short of their end refused everyone else's
// writes for 60 s at a time), so when it is spent, the uploads that have
// received nothing for a second give way, as stalled answers do
// (answermemory.go), and a retry finds room.

var errBodyBudget = errors.New("request body budget exhausted")

// bodyMeter charges what is read through it to budget. A read the budget
// cannot cover fails, and the request gives back all it had at once: it is
// going to fail, and its bytes must not fail the requests still reading.
// It also tells spent, so that uploads that have stalled give way and a
// retry finds room (shedStalledUploads).
type bodyMeter struct {
	io.ReadCloser
	budget *atomic.Int64
	spent  func()
	taken  int64
}

func (m *bodyMeter) Read(p []byte) (int, error) {
	n, err := m.ReadCloser.Read(p)
	if n > 0 && !m.charge(int64(n)) {
		m.budget.Add(m.taken)
		m.taken = 0
		m.spent()
		return n, errBodyBudget
	}
	return n, err
}

func (m *bodyMeter) charge(n int64) bool {
	for {
		left := m.budget.Load()
		if left < n {
			return false
		}
		if m.budget.CompareAndSwap(left, left-n) {
			m.taken += n
			return true
		}
	}
}

// meterBody returns r with its body on the budget, and a func that gives
// back what was read. Requests without a body cost nothing. The metered
// request is a copy: net/http must still find its own body in the request
// it made, or it cannot tell what of the body is unread when an answer
// comes early (an error before the body is read), and waits for the body
// (Expect: 100-continue: forever) instead of closing the connection.
func meterBody(r *http.Request, budget *atomic.Int64, spent func()) (*http.Request, func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, func() {}
	}
	m := &bodyMeter{ReadCloser: r.Body, budget: budget, spent: spent}
	r = r.WithContext(r.Context())
	r.Body = m
	return r, func() { budget.Add(m.taken) }
}

// shedStalledUploads closes the connections of uploads that received
// nothing for writeStalledAfter, once the bodies' memory is spent; one
// look at a time.
func (s *Server) shedStalledUploads() {
	if l, ok := s.ln.(*connLimiter); ok && l.sheddingUploads.CompareAndSwap(false, true) {
		go func() {
			defer l.sheddingUploads.Store(false)
			l.closeStalledUploads(writeStalledAfter)
		}()
	}
}
