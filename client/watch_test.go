package client_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

func TestWatch_YieldsEachWriteAndGapsInOrder(t *testing.T) {
	c := newClient(t)
	ctx := testContext(t)
	if _, err := c.PutJSON(ctx, "cfg/a", map[string]int{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "cfg/b", client.Text("x"), client.NoHistory()); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "cfg/a"); err != nil {
		t.Fatal(err)
	}
	var got []client.WatchEvent
	for ev, err := range c.Watch(ctx, "", client.Prefix("cfg/"), client.FromOp(0)) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, ev); len(got) == 3 {
			break
		}
	}
	if e := got[0]; e.Key != "cfg/a" || e.Op != "set" || e.OpNumber != 1 || string(e.Value) != `{"v":1}` || !e.JSON || e.Time.IsZero() {
		t.Errorf("set: got %+v", e)
	}
	if e := got[1]; !e.Gap || e.Key != "cfg/b" || e.ResumeOp != 3 || e.Value != nil {
		t.Errorf("write without history: got %+v, want a gap naming it", e)
	}
	if e := got[2]; e.Op != "delete" || e.OpNumber != 3 || e.Value != nil {
		t.Errorf("delete: got %+v", e)
	}
}

func TestWatch_ReconnectsAfterADroppedConnectionWithoutMissingOrRepeating(t *testing.T) {
	proxy := newCutter(t, kvdURL)
	c := newClientOf(t, proxy.url, "")
	ctx := testContext(t)
	for i := range 3 {
		if _, err := c.Incr(ctx, "n", 1); err != nil {
			t.Fatalf("incr %d: %v", i, err)
		}
	}
	want := int64(1)
	for ev, err := range c.Watch(ctx, "n", client.FromOp(0)) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.OpNumber != want {
			t.Fatalf("got op %d, want %d", ev.OpNumber, want)
		}
		if want == 2 { // drop the connection mid-stream, and write meanwhile
			proxy.cut()
			for range 3 {
				if _, err := c.Incr(ctx, "n", 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		if want == 6 {
			break
		}
		want++
	}
	if proxy.conns() < 2 {
		t.Fatalf("connections: got %d, want a reconnection", proxy.conns())
	}
}

// A gap of pruned history has no id, so kvd sends it again to a watch
// that reconnects right after it: the iterator yields it once.
func TestWatch_AGapBeforeAReconnectionIsYieldedOnce(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{HistoryKeep: 2})
	proxy := newCutter(t, srv.URL)
	proxy.mu.Lock() // read by the proxy's goroutine under mu
	proxy.cutFirstAfter = []byte("event: gap\n")
	proxy.mu.Unlock()
	c := newClientOf(t, proxy.url, "")
	ctx := testContext(t)
	for range 10 {
		if _, err := c.Incr(ctx, "n", 1); err != nil {
			t.Fatal(err)
		}
	}
	var got []client.WatchEvent
	for ev, err := range c.Watch(ctx, "n", client.FromOp(0)) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, ev); ev.OpNumber == 10 {
			break
		}
	}
	if len(got) != 3 || !got[0].Gap || got[1].OpNumber != 9 || got[2].OpNumber != 10 || proxy.conns() < 2 {
		t.Fatalf("got %+v over %d connections, want one gap, then ops 9 and 10, over two", got, proxy.conns())
	}
}

func TestWatch_AnswerErrorsEndTheIteration(t *testing.T) {
	c := newClient(t)
	n := 0
	for _, err := range c.Watch(testContext(t), "k", client.DB("no-such-db")) {
		if !errors.Is(err, client.ErrDatabaseNotFound) {
			t.Fatalf("got %v, want ErrDatabaseNotFound", err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("errors yielded: got %d, want 1", n)
	}
	for _, err := range c.Watch(testContext(t), "k", client.Prefix("p")) {
		var arg *client.ArgumentError
		if !errors.As(err, &arg) {
			t.Fatalf("Prefix with a key: got %v, want an *ArgumentError", err)
		}
	}
}

// A watch that cannot reach kvd at all, or not trust it, says so at once:
// it retried in silence for as long as the caller waited (kvctl watch
// printed nothing). Only a connection it had made is retried.
func TestWatch_AKvdNeverReachedOrNotTrustedEndsTheIteration(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close() // nothing listens there now
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	defer untrusted.Close()
	for name, url := range map[string]string{"nothing listening": "http://" + closed.Addr().String(), "untrusted certificate": untrusted.URL} {
		c, err := client.New(client.Config{URL: url, DB: "app"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var errs []error
		for _, err := range c.Watch(testContext(t), "k") {
			errs = append(errs, err)
		}
		var badCert *tls.CertificateVerificationError
		if len(errs) != 1 || errs[0] == nil || name == "untrusted certificate" && !errors.As(errs[0], &badCert) {
			t.Errorf("%s: got %v, want one error, yielded at once", name, errs)
		}
	}
}

// cutter is a TCP proxy to kvd whose connections a test can drop.
type cutter struct {
	url string
	// cutFirstAfter, when set, drops the first connection once kvd has
	// sent it these bytes and the event they begin.
	cutFirstAfter []byte
	mu            sync.Mutex
	cs            []net.Conn
	n             int
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutter{url: "http://" + ln.Addr().String()}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", u.Host)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.cs, p.n = append(p.cs, in, out), p.n+1
			first := p.n == 1
			cutAfter := p.cutFirstAfter
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() {
				if first && cutAfter != nil {
					copyThroughEventOf(in, out, cutAfter)
					out.Close()
				} else {
					io.Copy(in, out)
				}
				in.Close()
			}()
		}
	}()
	return p
}

// copyThroughEventOf copies from src to dst up to the end of the first
// event (its blank line) after marker, and not a byte beyond.
func copyThroughEventOf(dst io.Writer, src io.Reader, marker []byte) {
	var seen []byte
	b := make([]byte, 1)
	for {
		if _, err := src.Read(b); err != nil {
			return
		}
		seen = append(seen, b[0])
		dst.Write(b)
		if at := bytes.Index(seen, marker); at >= 0 && bytes.HasSuffix(seen[at:], []byte("\n\n")) {
			return
		}
	}
}

func (p *cutter) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cs {
		c.Close()
	}
	p.cs = nil
}

func (p *cutter) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
