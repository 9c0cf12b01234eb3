package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// acceptTracked returns both ends of a loopback connection, kvd's end as
// the connection limiter hands it to net/http.
func acceptTracked(t *testing.T) (server *trackedConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limiter := newConnLimiter(ln, 10, NewMetrics(), nil, func() string { return "id" })
	t.Cleanup(func() { limiter.Close() })
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := limiter.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*trackedConn), client
}

type readResult struct {
	data string
	err  error
}

// readAsync reads once, into a buffer of size bytes.
func readAsync(c net.Conn, size int) <-chan readResult {
	got := make(chan readResult, 1)
	go func() {
		buf := make([]byte, size)
		n, err := c.Read(buf)
		got <- readResult{string(buf[:n]), err}
	}()
	return got
}

func wantRead(t *testing.T, got <-chan readResult, want string) {
	t.Helper()
	select {
	case r := <-got:
		if r.err != nil || r.data != want {
			t.Fatalf("read: got %q, %v; want %q", r.data, r.err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still held")
	}
}

// While a write is held, net/http's background read (one byte) ends at
// once with nothing read, and leaves what the client sent for the next
// read.
func TestHeldReads_BackgroundReadEndsAtOnceAndLosesNothing(t *testing.T) {
	c, client := acceptTracked(t)
	if _, err := client.Write([]byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	c.holdReads()
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != nil {
		t.Fatalf("one-byte read while held: got %d, %v; want 0, nil", n, err)
	}
	c.handlerDone()
	wantRead(t, readAsync(c, 16), "x\r\n")
}

// Any other read goes ahead while held.
func TestHeldReads_LongerReadsGoAhead(t *testing.T) {
	c, client := acceptTracked(t)
	c.holdReads()
	defer c.handlerDone()
	if _, err := client.Write([]byte("y\r\n")); err != nil {
		t.Fatal(err)
	}
	wantRead(t, readAsync(c, 16), "y\r\n")
}

// Once the handler is done, a one-byte read reads again.
func TestHeldReads_HandlerDoneLetsOneByteReadsThrough(t *testing.T) {
	c, client := acceptTracked(t)
	c.holdReads()
	c.handlerDone()
	if _, err := client.Write([]byte("z\r\n")); err != nil {
		t.Fatal(err)
	}
	wantRead(t, readAsync(c, 1), "z")
}

// An answer whose client reads it slowly but steadily is not stalled,
// though one chunk's write stays blocked for seconds (the kernel wakes a
// writer only once a third of the send buffer is free); once the client
// stops reading, it is stalled a second later.
func TestWriteStalled_ProgressIsWhatTheClientTakes(t *testing.T) {
	server, client := acceptTracked(t)
	go server.Write(make([]byte, 64<<20)) // ends when the test closes the connection
	buf := make([]byte, 16<<10)
	for start := time.Now(); time.Since(start) < 2500*time.Millisecond; {
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // 320 KB/s
		if server.writeStalled(time.Second) {
			t.Fatalf("stalled after %v of steady reading", time.Since(start))
		}
	}
	for start := time.Now(); !server.writeStalled(time.Second); time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("not stalled 5 s after its client stopped reading")
		}
	}
}

// An answer sent from a file (a backup) may wait fileAnswerWriteStall for
// its client, since a client reading it slowly behind a large receive
// buffer shows progress only in steps of megabytes; any other answer is
// closed after answerWriteStall, and so is a backup's once kvd stops.
func TestCloseStalledAnswers_AnAnswerFromAFileWaitsLonger(t *testing.T) {
	for _, c := range []struct {
		fromFile bool
		stall    time.Duration // what closeStalledWrites passes: answerWriteStall, or writeStalledAfter once stopping
		waited   time.Duration
		closed   bool
	}{
		{false, answerWriteStall, answerWriteStall + time.Second, true},
		{true, answerWriteStall, answerWriteStall + time.Second, false},
		{true, answerWriteStall, fileAnswerWriteStall + time.Second, true},
		{true, writeStalledAfter, answerWriteStall + time.Second, true},
	} {
		server, _ := acceptTracked(t) // its client reads nothing
		r := httptest.NewRequest("GET", "/", nil).WithContext(withConn(context.Background(), server))
		if c.fromFile {
			defer sendingFile(r)()
		}
		go server.Write(make([]byte, 64<<20)) // ends when the test closes the connection
		time.Sleep(200 * time.Millisecond)    // the buffers fill
		server.writeStalled(time.Hour)        // takes in what the client's kernel acknowledged
		server.writingSince.Store(time.Now().Add(-c.waited).UnixNano())
		if left := server.limiter.closeStalledAnswers(c.stall); (left == 0) != c.closed {
			t.Errorf("from a file %v, after %v (limit %v): closed %v, want %v", c.fromFile, c.waited, c.stall, left == 0, c.closed)
		}
	}
}

// A request whose connection was claimed for a newcomer, as it came in or
// while its handler waited for the body, is left undone without an answer:
// the handler aborts (http.ErrAbortHandler, which net/http takes for "close,
// say nothing"). Returning instead had net/http write its empty 200, a
// success for a write never applied; a body read's error had the handler
// answer that a valid request was wrong.
func TestClaimForNewcomer_TheRequestIsAbortedUnanswered(t *testing.T) {
	wantAbort := func(t *testing.T, what string, f func()) {
		t.Helper()
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("%s: got panic %v, want http.ErrAbortHandler", what, p)
			}
		}()
		f()
	}
	c, _ := acceptTracked(t)
	if !c.claimForNewcomer() {
		t.Fatal("an idle connection could not be claimed")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("PUT", "/api/v1/sqlite/kv/k?db=app", strings.NewReader("v"))
	wantAbort(t, "ServeHTTP", func() { (&Server{}).ServeHTTP(rec, req.WithContext(withConn(req.Context(), c))) })
	if rec.Code != 200 || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Fatalf("ServeHTTP answered: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}

	c, _ = acceptTracked(t)
	if !c.startWork() {
		t.Fatal("a handler could not start on an idle connection")
	}
	claimed := false
	body := &bodyWatch{conn: c, rc: http.NewResponseController(rec), ReadCloser: io.NopCloser(readerFunc(func(p []byte) (int, error) {
		claimed = c.claimForNewcomer() // while the handler waits for the body
		return copy(p, "v"), io.EOF
	}))}
	wantAbort(t, "a body read", func() { body.Read(make([]byte, 8)) })
	if !claimed {
		t.Fatal("a handler waiting for its body was not claimable")
	}
}
