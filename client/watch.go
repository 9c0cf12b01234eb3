package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WatchEvent is one committed write Watch reports, or a gap.
type WatchEvent struct {
	Key      string
	Op       string // set, delete, incr, decr, expire, rollback, push, pop, remove, import
	OpNumber int64
	Time     time.Time
	// Value is the bytes the write left, nil for a removal (delete,
	// expire, a rollback to nothing) and for a gap. JSON tells that kvd
	// showed it inline as JSON.
	Value       []byte
	ContentType string
	JSON        bool
	// Gap: history cannot show what happened before ResumeOp (it was
	// pruned, or a write was made with history=false: then Key, Op and
	// OpNumber name that write). The events go on after it.
	Gap      bool
	ResumeOp int64
}

// FromOp starts a watch after op number n: every later write is
// reported (0: from the first write history keeps).
func FromOp(n int64) Option { return queryOption("FromOp", "after_op", strconv.FormatInt(n, 10)) }

// Since starts a watch at time t: every write from then on is reported.
func Since(t time.Time) Option { return queryOption("Since", "since", unixParam(t)) }

// Watch follows the writes of key as they commit, or, with key empty,
// those of the table (or the keys under Prefix). Without FromOp or Since
// it starts from now. The iterator reconnects by itself when the
// connection drops, stays silent for Config.WatchIdleTimeout (kvd sends
// a heartbeat at least every 15 s), or is answered a 5xx or a proxy's 429
// (no sooner than its Retry-After, up to a minute), resuming after the last event
// it yielded, so no write is missed or repeated; it ends when ctx ends
// (without an error), when the loop breaks, or with an error yielded
// once, which no retry mends: one kvd answered (a missing database, a
// bad option, a token no longer accepted), a failure to reach kvd at all
// on the first try (nothing listening, a wrong URL, no answer within
// Config.WatchIdleTimeout), a certificate that does not verify, or an
// event it cannot read. Options: DB, Table, Prefix (only without key),
// FromOp, Since.
func (c *Client) Watch(ctx context.Context, key string, opts ...Option) iter.Seq2[WatchEvent, error] {
	return func(yield func(WatchEvent, error) bool) {
		cl, path, err := c.watchCall(key, opts)
		if err != nil {
			yield(WatchEvent{}, err)
			return
		}
		at := watchPlace{last: -1} // no event yet: the options say where to start
		backoff := 100 * time.Millisecond
		var badCert *tls.CertificateVerificationError
		for reached := false; ctx.Err() == nil; {
			if at.last >= 0 {
				cl.header.Set("Last-Event-ID", strconv.FormatInt(at.last, 10))
			}
			// Each connection lives under a watchdog: kvd sends a line at
			// least every 15 s, so a stream silent for c.watchIdle is
			// stalled (a dead route, a stuck proxy) and is given up.
			attempt, abandon := context.WithCancel(ctx)
			dog := newWatchdog(c.watchIdle, abandon)
			finish := func() { dog.stop(); abandon() }
			resp, err := c.send(attempt, request{method: http.MethodGet, path: path, call: cl})
			// Only the watchdog's own cancellation is "no answer": an answer
			// kvd gave (a 503 whose body the countdown cut) stays what it is.
			if err != nil && errors.Is(err, context.Canceled) && dog.fired() && ctx.Err() == nil {
				err = fmt.Errorf("kvd: watch %s: no answer in %v", path, c.watchIdle)
			}
			var kvdErr *Error
			answered := err == nil || errors.As(err, &kvdErr)
			switch {
			case ctx.Err() != nil:
				finish()
				return
			case kvdErr != nil && kvdErr.StatusCode < 500 && kvdErr.StatusCode != http.StatusTooManyRequests:
				finish()
				yield(WatchEvent{}, err) // asking again would get the same answer
				return
			case !answered && (!reached || errors.As(err, &badCert)):
				finish()
				yield(WatchEvent{}, err) // a kvd never reached, or not trusted
				return
			case err == nil:
				got, more := readWatch(resp, &at, dog.feed, func(ev WatchEvent, err error) bool {
					dog.stop() // the caller's time with an event is not the stream's silence
					defer dog.feed()
					return yield(ev, err)
				})
				resp.Body.Close() // not drained: the stream has no end
				if !more {
					finish()
					return
				}
				if got {
					backoff = 100 * time.Millisecond
				}
			}
			finish()
			reached = reached || answered
			wait := backoff
			if kvdErr != nil { // no sooner than the answer asked
				wait = max(wait, min(kvdErr.RetryAfter, time.Minute))
			}
			select { // dropped, or kvd restarting: try again, less often each time
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

func (c *Client) watchCall(key string, opts []Option) (*call, string, error) {
	if key == "" {
		cl, err := c.newCall("Watch", opts, "DB", "Table", "Prefix", "FromOp", "Since")
		return cl, APIPrefix + "/kv/watch", err
	}
	return c.newKeyCall("Watch", key, "watch", opts, "DB", "Table", "FromOp", "Since")
}

// watchPlace is where a watch stands between its connections.
type watchPlace struct {
	last int64 // the op of the last event yielded with an id; -1: none yet
	// gap is the ResumeOp of a gap of pruned history yielded since last.
	// Such a gap has no id, so kvd sends it again after a reconnection,
	// which must not yield it twice.
	gap int64
}

// readWatch yields the events of one answer, keeping at up to date; it
// reports whether it read any and whether the caller still wants more.
func readWatch(resp *http.Response, at *watchPlace, alive func(), yield func(WatchEvent, error) bool) (got, more bool) {
	// Every byte read is a sign of life, not only a whole line: a large
	// event arriving slowly may take longer than the idle timeout.
	lines := bufio.NewScanner(aliveReader{resp.Body, alive})
	lines.Buffer(make([]byte, 64<<10), 64<<20)
	var id, name, data string
	for lines.Scan() {
		line := lines.Text()
		switch {
		case line == "":
			if name == "" {
				continue
			}
			ev, err := parseWatchEvent(name, data)
			if err != nil {
				// Reconnecting would meet this event again: the watch
				// ends here, with the error yielded once.
				yield(WatchEvent{}, err)
				return got, false
			}
			got = true
			if repeated := ev.Gap && id == "" && ev.ResumeOp == at.gap; !repeated && !yield(ev, nil) {
				return got, false
			}
			switch {
			case id != "":
				at.last, _ = strconv.ParseInt(id, 10, 64)
				at.gap = 0
			case ev.Gap:
				at.gap = ev.ResumeOp
			}
			id, name, data = "", "", ""
		case strings.HasPrefix(line, ": watching after op ") && at.last < 0:
			// Where a watch from now began: a reconnection resumes there.
			at.last, _ = strconv.ParseInt(line[len(": watching after op "):], 10, 64)
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
	if err := lines.Err(); errors.Is(err, bufio.ErrTooLong) {
		// An event past 64 MiB: reconnecting would meet it again, forever.
		yield(WatchEvent{}, fmt.Errorf("kvd: watch event: %w", err))
		return got, false
	}
	return got, true
}

// aliveReader calls alive after each read that brought bytes.
type aliveReader struct {
	r     io.Reader
	alive func()
}

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.alive()
	}
	return n, err
}

func parseWatchEvent(name, data string) (WatchEvent, error) {
	var w struct {
		Key         string          `json:"key"`
		Op          string          `json:"op"`
		OpNumber    int64           `json:"op_number"`
		Timestamp   float64         `json:"timestamp"`
		Value       json.RawMessage `json:"value"`
		RawValue    *string         `json:"raw_value"`
		ContentType string          `json:"content_type"`
		Code        string          `json:"code"`
		ResumeOp    int64           `json:"resume_op"`
	}
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		return WatchEvent{}, fmt.Errorf("kvd: watch event %q: %w", data, err)
	}
	ev := WatchEvent{Key: w.Key, Op: w.Op, OpNumber: w.OpNumber, ContentType: w.ContentType,
		Gap: name == "gap", ResumeOp: w.ResumeOp, JSON: w.RawValue == nil && len(w.Value) > 0}
	if w.Timestamp > 0 {
		ev.Time = unixTime(w.Timestamp)
	}
	var err error
	if w.RawValue != nil {
		ev.Value, err = base64.StdEncoding.DecodeString(*w.RawValue)
	} else if len(w.Value) > 0 {
		ev.Value = w.Value
	}
	if err != nil {
		return WatchEvent{}, fmt.Errorf("kvd: watch event %q: %w", data, err)
	}
	return ev, nil
}

// watchdog calls its func once no feed has come for d (0: never).
type watchdog struct {
	d     time.Duration
	timer *time.Timer
	once  sync.Once
	done  chan struct{}
}

func newWatchdog(d time.Duration, f func()) *watchdog {
	w := &watchdog{d: d, done: make(chan struct{})}
	if d > 0 {
		w.timer = time.AfterFunc(d, func() { w.once.Do(func() { close(w.done); f() }) })
	}
	return w
}

// feed says the stream is alive: the countdown starts again.
func (w *watchdog) feed() {
	if w.timer != nil {
		w.timer.Reset(w.d)
	}
}

func (w *watchdog) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// fired reports whether the countdown ran out.
func (w *watchdog) fired() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}
