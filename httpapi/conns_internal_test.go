package httpapi

import (
	"net"
	"runtime"
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
	limiter := newConnLimiter(ln, 10, NewMetrics(), nil)
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

func readAsync(c net.Conn) <-chan readResult {
	got := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		got <- readResult{string(buf[:n]), err}
	}()
	return got
}

// waitHeld waits (bounded) until a read waits in c's hold.
func waitHeld(t *testing.T, c *trackedConn) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); runtime.Gosched() {
		c.quietMu.Lock()
		held := c.held
		c.quietMu.Unlock()
		if held > 0 {
			return
		}
	}
	t.Fatal("no read waits in the hold")
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

// A read that waits in a write's hold (net/http's background read) goes
// on only when a deadline is set (net/http ending that read), not when the
// handler returns; and it reads what is there.
func TestHeldReads_WaitingReadGoesOnAtTheDeadline(t *testing.T) {
	c, client := acceptTracked(t)
	c.holdReads()
	// Not a request line: the framing guard passes it on as it is.
	if _, err := client.Write([]byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	got := readAsync(c)
	waitHeld(t, c)
	c.handlerDone()
	select {
	case r := <-got:
		t.Fatalf("read went on when the handler was done (got %q, %v); want it held until the deadline", r.data, r.err)
	default:
	}
	c.SetReadDeadline(time.Time{})
	wantRead(t, got, "x\r\n")
}

// With no read waiting when the handler is done, reads go ahead: net/http
// may read the rest of a body the handler left, or start its background
// read only then.
func TestHeldReads_HandlerDoneWithNoReadWaitingLetsReadsThrough(t *testing.T) {
	c, client := acceptTracked(t)
	c.holdReads()
	c.handlerDone()
	if _, err := client.Write([]byte("y\r\n")); err != nil {
		t.Fatal(err)
	}
	wantRead(t, readAsync(c), "y\r\n")
}

// Closing the connection releases a held read, which then fails.
func TestHeldReads_CloseReleasesThem(t *testing.T) {
	c, _ := acceptTracked(t)
	c.holdReads()
	got := readAsync(c)
	waitHeld(t, c)
	c.Close()
	select {
	case r := <-got:
		if r.err == nil {
			t.Fatalf("read on a closed connection: got %q, want an error", r.data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still held after Close")
	}
}
