package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// watcherSet is the watchers of a run, each on a stream of its own.
type watcherSet struct {
	c      *Client
	http   *http.Client
	ws     []*watcher
	perKey bool
	cancel context.CancelFunc
	done   sync.WaitGroup
}

type watcher struct {
	url string
	key int // the key index it watches; -1: the prefix (every write)
	// incr: the values are counters, checked to go up by one; else each
	// value starts with its write's sequence number.
	incr bool

	mu       sync.Mutex
	arrivals []arrival
	seen     map[int64]bool
	lastOp   int64
	lastVal  int64
	dups     int64
	disorder int64
	gaps     int64
}

type arrival struct{ seq, at int64 }

func newWatcherSet(c *Client, targets []string, perKey bool) *watcherSet {
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	if c.tlsConfig != nil {
		tr.TLSClientConfig = c.tlsConfig.Clone()
	}
	set := &watcherSet{c: c, http: &http.Client{Transport: tr}, perKey: perKey}
	for i, t := range targets {
		key := -1
		if perKey {
			key = i
		}
		set.ws = append(set.ws, &watcher{url: t, key: key, seen: map[int64]bool{}})
	}
	return set
}

// start opens every stream and returns once each is in place.
func (s *watcherSet) start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	ready := make(chan error, len(s.ws))
	for _, w := range s.ws {
		s.done.Go(func() { w.run(wctx, s, ready) })
	}
	for range s.ws {
		select {
		case err := <-ready:
			if err != nil {
				cancel()
				return fmt.Errorf("start a watcher: %w", err)
			}
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		}
	}
	return nil
}

// settle waits until every watcher has what it should, or nothing more
// arrives for a second (10 s at most), then stops them.
func (s *watcherSet) settle(ctx context.Context, expected func(*watcher) int64) {
	want := make([]int64, len(s.ws))
	for i, w := range s.ws {
		want[i] = expected(w)
	}
	deadline := time.Now().Add(10 * time.Second)
	last, quiet := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		total, behind := int64(0), false
		for i, w := range s.ws {
			w.mu.Lock()
			n := int64(len(w.arrivals))
			w.mu.Unlock()
			total += n
			behind = behind || n < want[i]
		}
		if !behind {
			break
		}
		if total != last {
			last, quiet = total, time.Now()
		} else if time.Since(quiet) > time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cancel()
	s.done.Wait()
}

// run follows the stream, reconnecting after the last op it saw if it
// drops; ready hears once whether the first connection worked.
func (w *watcher) run(ctx context.Context, s *watcherSet, ready chan<- error) {
	first := true
	for ctx.Err() == nil {
		err := w.follow(ctx, s, func() {
			if first {
				first = false
				ready <- nil
			}
		})
		if first {
			ready <- err
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *watcher) follow(ctx context.Context, s *watcherSet, started func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return err
	}
	for _, line := range bytes.Split([]byte(s.c.head), []byte("\r\n")) {
		if name, value, ok := bytes.Cut(line, []byte(": ")); ok && string(name) != "Host" {
			req.Header.Set(string(name), string(value))
		}
	}
	req.URL.Scheme, req.URL.Host = "http", s.c.addr
	if s.c.tlsConfig != nil {
		req.URL.Scheme = "https"
	}
	if op := w.lastOpNow(); op > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(op, 10))
	}
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("watch answered %s", res.Status)
	}
	started()
	r := bufio.NewReaderSize(res.Body, 16<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue // a value larger than the buffer: not this load's
			}
			return err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			w.event(data, time.Now().UnixNano())
		}
	}
}

func (w *watcher) lastOpNow() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOp
}

// event takes one data line, without decoding more JSON than it needs.
func (w *watcher) event(data []byte, at int64) {
	op := jsonInt(data, `"op_number":`)
	raw := jsonString(data, `"raw_value":"`)
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(data, []byte(`"code":"TIME_TRAVEL_GAP"`)) {
		w.gaps++
		return
	}
	if op <= w.lastOp {
		w.disorder++
		return
	}
	w.lastOp = op
	value, err := base64.StdEncoding.DecodeString(string(raw))
	if err != nil {
		return
	}
	if w.incr {
		n, _ := strconv.ParseInt(string(value), 10, 64)
		switch {
		case w.lastVal != 0 && n > w.lastVal+1:
			w.gaps += n - w.lastVal - 1
		case w.lastVal != 0 && n <= w.lastVal:
			w.dups++
		}
		w.lastVal = n
		w.arrivals = append(w.arrivals, arrival{seq: n, at: at})
		return
	}
	head, _, _ := bytes.Cut(value, []byte(":"))
	seq, err := strconv.ParseInt(string(head), 10, 64)
	if err != nil {
		return // not a write of this run (the start key)
	}
	if w.seen[seq] {
		w.dups++
		return
	}
	w.seen[seq] = true
	w.arrivals = append(w.arrivals, arrival{seq: seq, at: at})
}

func jsonInt(data []byte, field string) int64 {
	_, rest, ok := bytes.Cut(data, []byte(field))
	if !ok {
		return 0
	}
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n
}

func jsonString(data []byte, field string) []byte {
	_, rest, ok := bytes.Cut(data, []byte(field))
	if !ok {
		return nil
	}
	s, _, _ := bytes.Cut(rest, []byte(`"`))
	return s
}
