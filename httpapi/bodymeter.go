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
// values answers 503 OVERLOADED instead of exhausting memory.

var errBodyBudget = errors.New("request body budget exhausted")

// bodyMeter charges what is read through it to budget. A read the budget
// cannot cover fails, and the request gives back all it had at once: it is
// going to fail, and its bytes must not fail the requests still reading.
type bodyMeter struct {
	io.ReadCloser
	budget *atomic.Int64
	taken  int64
}

func (m *bodyMeter) Read(p []byte) (int, error) {
	n, err := m.ReadCloser.Read(p)
	if n > 0 && !m.charge(int64(n)) {
		m.budget.Add(m.taken)
		m.taken = 0
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
func meterBody(r *http.Request, budget *atomic.Int64) (*http.Request, func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, func() {}
	}
	m := &bodyMeter{ReadCloser: r.Body, budget: budget}
	r = r.WithContext(r.Context())
	r.Body = m
	return r, func() { budget.Add(m.taken) }
}
