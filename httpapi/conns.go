package httpapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Every connection holds a file descriptor, and a client that connects and
// then stalls holds it for as long as kvd lets it. connLimiter caps the
// connections kvd keeps open below the descriptors it may have, so it never
// meets EMFILE (which would fail accepts and database opens for everyone).
// When the cap is reached, a new connection takes the place of the one
// that has waited longest for its client among those that are idle or
// still receiving a request: a stalled client loses its slot to one that
// talks, and one that is sending makes progress, so it is rarely the
// stalest. A connection whose request is being served (its body all read)
// is never closed for another. Only when every slot is in service is the
// newcomer refused, with a 503.

// connLimiter wraps the listener. Its conns are in a slice, so that a
// victim can be sampled at random in constant time.
type connLimiter struct {
	net.Listener
	max  int
	shed *prometheus.CounterVec // connections closed for room, by reason
	tls  *tls.Config            // nil: plain HTTP

	newID func() string // a request id for an answer net/http would have sent (goerrors.go)

	refusing chan struct{} // TLS refusals being written (see refuseTLS)

	closed    chan struct{} // the listener is closed
	closeOnce sync.Once

	sheddingUploads atomic.Bool // closeStalledUploads runs (shedStalledUploads)

	mu    sync.Mutex
	conns []*trackedConn
}

// evictionSample is how many connections are looked at to find a victim:
// enough that a flood of stalled ones is nearly always where it is found.
const evictionSample = 64

func newConnLimiter(ln net.Listener, max int, m *Metrics, tlsConfig *tls.Config, newID func() string) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, tls: tlsConfig, newID: newID, refusing: make(chan struct{}, maxTLSRefusals), closed: make(chan struct{}), shed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvd_connections_shed_total", Help: "Connections closed for room or for stalling: evicted (a stalled or idle one, for a newcomer at --max-connections), refused (every slot in service), or stalled (an answer its client read nothing of for 30 s, or an upload that sent nothing for a second while request bodies had spent their memory).",
	}, []string{"reason"})}
	for _, reason := range []string{"evicted", "refused", "stalled"} {
		l.shed.WithLabelValues(reason) // at 0 from the start, so that an alert on it finds its series
	}
	// With Metrics shared by several servers (tests), the first one's series stay.
	m.reg.Register(l.shed)
	m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvd_connections", Help: "Client connections open now.",
	}, func() float64 { return float64(l.open()) }))
	go l.closeStalledWrites()
	return l
}

// Close closes the listener. The connections left are still watched for
// stalled answers (closeStalledWrites) until they are gone.
func (l *connLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// closeStalledWrites closes, once a second, each connection whose answer
// has waited answerWriteStall for its client; once the listener is
// closed (kvd stops), writeStalledAfter: its work is done, and stopping
// need not wait for a client that reads nothing. It ends when the
// listener is closed and no connection is left.
func (l *connLimiter) closeStalledWrites() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stall, closed := answerWriteStall, l.closed
	for {
		select {
		case <-closed:
			stall, closed = writeStalledAfter, nil
		case <-tick.C:
		}
		if left := l.closeStalledAnswers(stall); stall == writeStalledAfter && left == 0 {
			return
		}
	}
}

// closeStalledAnswers closes each connection whose answer has waited
// longer than stall for its client, and tells how many are left.
func (l *connLimiter) closeStalledAnswers(stall time.Duration) (left int) {
	return l.closeStalled(func(c *trackedConn) bool {
		limit := stall
		if stall == answerWriteStall && c.fromFile.Load() {
			limit = fileAnswerWriteStall
		}
		return c.writeStalled(limit)
	})
}

// closeStalledUploads closes each connection whose handler waits for a
// body that has received nothing for longer than stall. Each is claimed
// as a newcomer claims its victim: its handler, finding it so, gives up
// (bodyWatch.Read) and gives its body's memory back.
func (l *connLimiter) closeStalledUploads(stall time.Duration) {
	l.closeStalled(func(c *trackedConn) bool {
		return c.uploading.Load() && time.Since(time.Unix(0, c.lastRead.Load())) > stall && c.work.CompareAndSwap(connIdle, connEvicted)
	})
}

// closeStalled closes each connection stalled picks (under the limiter's
// lock), counting it as stalled, and tells how many are left.
func (l *connLimiter) closeStalled(stalled func(*trackedConn) bool) (left int) {
	var shut []*trackedConn
	l.mu.Lock()
	for _, c := range l.conns {
		if stalled(c) {
			shut = append(shut, c)
		}
	}
	left = len(l.conns) - len(shut)
	l.mu.Unlock()
	for _, c := range shut {
		c.evict()
		l.shed.WithLabelValues("stalled").Inc()
	}
	return left
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, raw: c, limiter: l, index: -1}
		if l.tls != nil {
			tc.Conn = tls.Server(touching{c, tc}, l.tls) // the handshake waits for the first read
		}
		tc.guard = newFramingGuard(readerFunc(tc.readRaw))
		tc.touch()
		admitted, victim := l.admit(tc)
		if victim != nil {
			victim.evict()
			l.shed.WithLabelValues("evicted").Inc()
		}
		if admitted {
			return tc, nil
		}
		l.shed.WithLabelValues("refused").Inc()
		if l.tls != nil {
			l.refuseTLS(tc.Conn)
		} else {
			l.refuse(c)
		}
	}
}

// admit takes tc into the set, making room if it must; the victim, if
// any, is out of the set and the caller closes it.
func (l *connLimiter) admit(tc *trackedConn) (admitted bool, victim *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		// A handler may start on the one found before it is claimed: then
		// it is no longer evictable, and another is looked for.
		for victim = l.stalest(); victim != nil && !victim.claimForNewcomer(); victim = l.stalest() {
		}
		if victim == nil {
			return false, nil
		}
		l.removeLocked(victim)
	}
	tc.index = len(l.conns)
	l.conns = append(l.conns, tc)
	return true, victim
}

// stalest samples the conns and returns the one that received a byte
// longest ago among those that may be closed, or nil.
func (l *connLimiter) stalest() *trackedConn {
	var best *trackedConn
	n := len(l.conns)
	for i := range min(n, evictionSample) {
		c := l.conns[i]
		if n > evictionSample {
			c = l.conns[rand.IntN(n)]
		}
		if c.evictable() && (best == nil || c.lastRead.Load() < best.lastRead.Load()) {
			best = c
		}
	}
	return best
}

func (l *connLimiter) remove(tc *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeLocked(tc)
}

func (l *connLimiter) removeLocked(tc *trackedConn) {
	i := tc.index
	if i < 0 {
		return
	}
	last := l.conns[len(l.conns)-1]
	l.conns[i], last.index = last, i
	l.conns[len(l.conns)-1] = nil
	l.conns = l.conns[:len(l.conns)-1]
	tc.index = -1
}

// open is how many connections kvd holds now.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// refusal is written to a connection kvd has no room for, with a request
// id as every answer has.
func (l *connLimiter) refusal() []byte {
	const body = `{"statusCode":503,"error":"Service Unavailable","code":"OVERLOADED","message":"Too many connections; retry shortly"}`
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"+
		"X-Request-Id: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", l.newID(), len(body), body)
}

// refuse answers a plain connection kvd has no room for. A fresh socket's
// send buffer takes the answer at once; the deadline is only a guard.
func (l *connLimiter) refuse(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.Write(l.refusal())
	c.Close()
}

// trackedConn is a connection the limiter counts: what it last received
// and where its request stands decide whether it may be closed for
// another. Its reads go through the framing guard, which reads Conn:
// under TLS, the decrypted stream.
type trackedConn struct {
	net.Conn          // the TLS connection over raw, or raw itself
	raw      net.Conn // the socket
	limiter  *connLimiter
	guard    *framingGuard
	index    int // in limiter.conns; -1 once out (guarded by limiter.mu)

	lastRead  atomic.Int64 // unix nanoseconds of the last byte received (or of the accept)
	state     atomic.Int32 // http.ConnState
	work      atomic.Int32 // connIdle, connWorking or connEvicted: see evictable
	closeOnce sync.Once

	quiet     atomic.Bool // a write waits for its database (see holdReads)
	uploading atomic.Bool // a handler reads the request's body (bodyWatch)
	answering atomic.Bool // a handler's answer is going out: set by ServeHTTP, cleared when the connection goes idle (goerrors.go)

	writingSince atomic.Int64  // unix nanoseconds a write of an answer began, or last moved; 0: none waits
	acked        atomic.Uint64 // the client's acknowledged bytes at the last look (writeStalled)
	fromFile     atomic.Bool   // the answer is sent from a file: it may wait fileAnswerWriteStall
}

// A client that reads nothing of its answers would hold its connection,
// and the answer's memory, for good. The limiter closes a connection whose
// answer has waited answerWriteStall for its client to take a byte (see
// closeStalledWrites), as a watcher's stream is; each writeChunk of an
// answer waits on its own, and so does each look that finds the client
// has taken more (writeStalled), so a client reading slowly but steadily
// keeps its connection through a large answer. At the cap, an answer that has
// waited writeStalledAfter makes its connection one whose place a
// newcomer may take. (A deadline on every write would do it too, but
// cost every answer a timer's update.)
const (
	answerWriteStall  = watchWriteStall
	writeChunk        = 256 << 10
	writeStalledAfter = time.Second
)

// fileAnswerWriteStall is how long an answer sent from a file (a backup)
// may wait for its client. It holds no answer memory, only its backup's
// slot and copy, and a client that reads it slowly but steadily may show
// its progress in steps of megabytes: its window reopens only once half
// of its receive buffer is free, which Linux grows to tens of megabytes
// (a client reading 200 KB/s was seen to take 5 MB every 22 s, and 30 s
// cut it off).
const fileAnswerWriteStall = 5 * time.Minute

// sendingFile marks r's connection as sending an answer from a file (see
// fileAnswerWriteStall) until the returned func is called.
func sendingFile(r *http.Request) (done func()) {
	c := connOf(r)
	if c == nil {
		return func() {}
	}
	c.fromFile.Store(true)
	return func() { c.fromFile.Store(false) }
}

func (c *trackedConn) Write(p []byte) (n int, err error) {
	if !c.answering.Load() {
		if answer, ok := asJSONError(p, c.limiter.newID); ok { // net/http refusing a request in plain text
			if _, err := c.write(answer); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.write(p)
}

func (c *trackedConn) write(p []byte) (n int, err error) {
	defer c.writingSince.Store(0)
	for len(p) > 0 && err == nil {
		c.writingSince.Store(time.Now().UnixNano())
		var m int
		m, err = c.Conn.Write(p[:min(len(p), writeChunk)])
		n, p = n+m, p[m:]
	}
	return n, err
}

// writeStalled: an answer has waited longer than d for its client to
// take any of it. A chunk's write can stay blocked for seconds while its
// client reads steadily (the kernel wakes a writer only once a third of
// the send buffer is free, megabytes on a fast link), so what the client
// has acknowledged counts too: a look that finds it grown starts the wait
// again. closeStalledWrites looks at every waiting answer each second.
func (c *trackedConn) writeStalled(d time.Duration) bool {
	since := c.writingSince.Load()
	if since == 0 {
		return false
	}
	if acked, ok := bytesAcked(c.raw); ok && c.acked.Swap(acked) != acked {
		c.writingSince.CompareAndSwap(since, time.Now().UnixNano())
		return false
	}
	return time.Since(time.Unix(0, since)) > d
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if len(p) == 1 && c.quiet.Load() {
		return 0, nil // net/http's background read, while a write waits
	}
	return c.guard.Read(p)
}

// While a handler runs, net/http reads the connection in the background
// (one byte, to notice a client that leaves). That read costs a syscall
// that finds nothing, a park, and at the handler's end a deadline in the
// past to wake it and a wait for it to end: on a write, a fifth of what
// HTTP costs beyond the no-op. A write, once sent to its actor, is
// applied whether its client stays or not, so nothing needs that read
// while it waits: holdReads makes it end at once with nothing read (net/http
// takes (0, nil) as no byte and no error, and does not retry), and the
// handler's end then has no read to abort.
//
// Only a handler that will read nothing more may hold, from its call to
// the actor until it is done (handlerDone). Any other read goes ahead:
// only net/http's background read asks for a single byte. That holds for
// HTTP/1.1, the only protocol kvd serves (serverTLS).
func (c *trackedConn) holdReads() {
	c.quiet.Store(true)
}

// handlerDone ends a hold: net/http may then read the rest of a body no
// handler read, or the next request.
func (c *trackedConn) handlerDone() {
	c.quiet.Store(false)
}

func (c *trackedConn) readRaw(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.raw == c.Conn {
		c.touch()
	}
	if err != nil && c.raw != c.Conn {
		answerPlainHTTP(err, c.limiter.newID)
	}
	return n, err
}

func (c *trackedConn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// touching is a TLS connection's socket, which notes each byte received
// as it arrives: TLS hands a record's bytes on only once the whole record
// (up to 16 KiB) is in, so a client uploading steadily at 8 KiB/s looked
// silent for 2 s at a time, and was closed as a stalled upload.
type touching struct {
	net.Conn
	tc *trackedConn
}

func (t touching) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.tc.touch()
	}
	return n, err
}

// Where a connection's request stands, as far as closing it goes (work).
// A handler that has its request whole is at work (connWorking) from
// ServeHTTP on, but while it waits for more of the body, and until the
// connection is idle again. A newcomer's eviction may close only an idle
// one, and marks it connEvicted first, in one step: a handler that starts
// (or has read the body) just then finds it so and does nothing, where it
// would have applied a write whose answer could never go out.
const (
	connIdle int32 = iota
	connWorking
	connEvicted
)

// startWork marks c's request as at work; false: c was closed for a
// newcomer, and the request must be left undone.
func (c *trackedConn) startWork() bool {
	return c.work.CompareAndSwap(connIdle, connWorking)
}

// waitForBody marks the handler as waiting for its body: c may be closed
// for a newcomer meanwhile (startWork after the wait says so).
func (c *trackedConn) waitForBody() { c.work.CompareAndSwap(connWorking, connIdle) }

// evictable: closing it loses no work (evict then claims it). A new or
// idle connection has no request; one whose handler waits for the body
// has not started it; one whose answer its client has not read for a
// while has done its work, and so has a watch stream (a connection taken
// over from the server) whose client has not read its events: on
// reconnecting it resumes.
func (c *trackedConn) evictable() bool {
	switch http.ConnState(c.state.Load()) {
	case http.StateNew, http.StateIdle, http.StateActive:
		return c.work.Load() == connIdle || c.writeStalled(writeStalledAfter)
	case http.StateHijacked:
		return c.writeStalled(writeStalledAfter)
	}
	return false
}

// claimForNewcomer takes a connection evictable found for a newcomer,
// unless its handler went to work since: then the newcomer gets no place.
func (c *trackedConn) claimForNewcomer() bool {
	return c.work.CompareAndSwap(connIdle, connEvicted) || c.writeStalled(writeStalledAfter)
}

// evict closes the socket of a connection closed for room: under TLS
// without a close_notify, whose write could wait on a client that reads
// nothing while the accept loop waits for it.
func (c *trackedConn) evict() {
	c.closeOnce.Do(func() {
		c.limiter.remove(c)
		c.raw.Close()
	})
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.limiter.remove(c)
		err = c.Conn.Close()
	})
	return err
}

// CloseWrite lets net/http half-close before closing: the client then
// reads an early answer rather than a reset caused by its unread body.
// Under TLS, that is a close_notify.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps net/http's sendfile path for large answers (backups), a
// writeChunk at a time as Write goes.
func (c *trackedConn) ReadFrom(r io.Reader) (n int64, err error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	defer c.writingSince.Store(0)
	left := int64(math.MaxInt64)
	if lr, ok := r.(*io.LimitedReader); ok { // sendfile looks through one, not two
		r, left = lr.R, lr.N
		defer func() { lr.N = left }()
	}
	for left > 0 {
		c.writingSince.Store(time.Now().UnixNano())
		want := min(left, writeChunk)
		m, err := rf.ReadFrom(&io.LimitedReader{R: r, N: want})
		n, left = n+m, left-m
		if err != nil || m < want {
			return n, err
		}
	}
	return n, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// trackConnState is the http.Server's ConnState hook.
func trackConnState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*trackedConn); ok {
		tc.state.Store(int32(state))
		if state == http.StateIdle { // after the answer's last flush
			tc.answering.Store(false)
			tc.work.CompareAndSwap(connWorking, connIdle)
		}
	}
}

type connKey struct{}

// withConn is the http.Server's ConnContext hook: handlers find their
// connection in the request's context.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

func connOf(r *http.Request) *trackedConn {
	tc, _ := r.Context().Value(connKey{}).(*trackedConn)
	return tc
}
