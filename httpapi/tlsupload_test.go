package httpapi_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/internal/kvdtest"
)

// pacedConn sends 1 KiB every 125 ms: a client whose uplink carries
// 8 KiB/s, steadily.
type pacedConn struct{ net.Conn }

func (c pacedConn) Write(p []byte) (n int, err error) {
	for len(p) > 0 && err == nil {
		var m int
		m, err = c.Conn.Write(p[:min(len(p), 1024)])
		n, p = n+m, p[m:]
		time.Sleep(125 * time.Millisecond)
	}
	return n, err
}

// A client uploading steadily over TLS is no stalled upload, though TLS
// hands its bytes on a record (16 KiB) at a time: at 8 KiB/s, 2 s apart.
// While another client's stalled uploads keep spending the bodies' memory,
// and so keep being closed, the steady upload is served. (It was closed
// as stalled: kvd noted a connection's bytes as TLS handed them on.)
func TestBodyMemory_ASteadyUploadOverTLSIsNotTakenForStalled(t *testing.T) {
	const value = 256 << 10
	ca := kvdtest.NewCA(t)
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) {
		h.TLS, h.MaxValueBytes, h.MaxBodyMemory = ca.ServerTLS(t, 1), value, 4*value
	})
	ts.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), "x"), 200)
	dial := func(paced bool) net.Conn {
		c, err := net.Dial("tcp", addrOf(ts))
		if err != nil {
			t.Fatal(err)
		}
		if paced {
			c = pacedConn{c}
		}
		tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", DynamicRecordSizingDisabled: true})
		t.Cleanup(func() { tc.Close() })
		return tc
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for slot := range 4 { // uploads stalled 220 KiB in, each started again once closed
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := dial(false)
				fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: kvd\r\nContent-Length: %d\r\n\r\n%s", kv(fmt.Sprint("stalled", slot, "-", i), "db=app"), value, strings.Repeat("s", 220<<10))
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				c.Read(make([]byte, 1)) // until it is closed
				c.Close()
			}
		})
	}
	wg.Go(func() { // another client's writes meet the spent memory, and retry
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			ts.do(t, "PUT", kv("other", "db=app"), strings.Repeat("o", 200<<10))
		}
	})
	defer wg.Wait()
	defer close(stop)

	const size = 40 << 10 // three records: 5 s at 8 KiB/s
	c := dial(true)
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: kvd\r\nContent-Length: %d\r\n\r\n%s", kv("steady", "db=app"), size, strings.Repeat("v", size))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); !strings.Contains(line, " 200 ") {
		t.Fatalf("an upload sent steadily at 8 KiB/s over TLS: got %q, %v; want 200", line, err)
	}
}
