package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// kvd runs with few file descriptors (RLIMIT_NOFILE 256, set by prlimit),
// and a stalled client opens twice that many connections from 127.0.0.2,
// half of them with a body announced and never sent, half without a word.
// kvd never runs out of descriptors: past its connection cap each newcomer
// takes the slot of the stalest connection, so a client on 127.0.0.1 gets
// /healthz and a PUT through well before any timeout frees a slot. A body
// that trickles in (1 byte/s) is cut after --read-timeout with a 408.
func TestKvd_StalledClientsDoNotLockOutOthers(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is needed to lower kvd's RLIMIT_NOFILE")
	}
	const nofile = 256
	const readTimeout = 3 * time.Second
	d := startDaemonUnder(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile)}, t.TempDir(),
		"--read-timeout", readTimeout.String(), "--log-level", "debug") // debug: Go logs failed accepts (EMFILE) there
	addr := strings.TrimPrefix(d.url, "http://")
	var capOf []string
	for deadline := time.Now().Add(5 * time.Second); capOf == nil; time.Sleep(10 * time.Millisecond) {
		if capOf = regexp.MustCompile(`max_connections=(\d+)`).FindStringSubmatch(d.logs.String()); capOf == nil && time.Now().After(deadline) {
			t.Fatalf("no max_connections in the start-up log:\n%s", d.logs)
		}
	}
	t.Logf("RLIMIT_NOFILE %d: kvd caps connections at %s", nofile, capOf[1])

	// A body trickling in at 1 byte/s is cut after the read timeout.
	trickle := dialFrom(t, "127.0.0.2", addr)
	start := time.Now()
	fmt.Fprintf(trickle, "PUT /api/v1/sqlite/kv/t?db=app&create_db_if_missing=true HTTP/1.1\r\nHost: kvd\r\nContent-Length: 100\r\n\r\n")
	go func() {
		for range 100 {
			time.Sleep(time.Second)
			if _, err := trickle.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	trickle.SetReadDeadline(time.Now().Add(readTimeout + 5*time.Second))
	line, _ := bufio.NewReader(trickle).ReadString('\n')
	cut := time.Since(start)
	if !strings.HasPrefix(line, "HTTP/1.1 408 ") || cut < readTimeout-100*time.Millisecond || cut > readTimeout+3*time.Second {
		t.Fatalf("trickling body: got %q after %v, want 408 after about %v", line, cut, readTimeout)
	}
	t.Logf("trickling body (1 byte/s): 408 after %v (--read-timeout %v)", cut.Round(time.Millisecond), readTimeout)

	const stalled = 2 * nofile
	flood := make([]net.Conn, stalled)
	for i := range flood {
		c := dialFrom(t, "127.0.0.2", addr)
		flood[i] = c
		if i%2 == 0 {
			fmt.Fprintf(c, "PUT /api/v1/sqlite/kv/s%d?db=app&create_db_if_missing=true HTTP/1.1\r\nHost: kvd\r\nContent-Length: 100\r\n\r\npartial", i)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	start = time.Now()
	res, err := client.Get(d.url + "/healthz")
	if err != nil {
		t.Fatalf("/healthz with %d stalled connections: %v\n%s", stalled, err, d.logs)
	}
	res.Body.Close()
	healthz := time.Since(start)
	start = time.Now()
	req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/k?db=app&create_db_if_missing=true", strings.NewReader("through"))
	put, err := client.Do(req)
	if err != nil {
		t.Fatalf("PUT with %d stalled connections: %v\n%s", stalled, err, d.logs)
	}
	put.Body.Close()
	putTook := time.Since(start)
	if res.StatusCode != 200 || put.StatusCode != 200 {
		t.Fatalf("with %d stalled connections: /healthz %d, PUT %d; want 200 and 200", stalled, res.StatusCode, put.StatusCode)
	}
	if strings.Contains(d.logs.String(), "too many open files") {
		t.Errorf("kvd ran out of file descriptors")
	}
	// Both well before a timeout could have freed a slot: room was made.
	if healthz > readTimeout || putTook > readTimeout {
		t.Fatalf("with %d stalled connections: /healthz took %v, PUT %v; want each under %v", stalled, healthz, putTook, readTimeout)
	}
	metrics := scrape(t, client, d.url)
	t.Logf("%d stalled connections from 127.0.0.2: /healthz in %v, PUT in %v; then %s open connections, %s evicted",
		stalled, healthz.Round(time.Millisecond), putTook.Round(time.Millisecond), metrics["kvd_connections"], metrics[`kvd_connections_shed_total{reason="evicted"}`])
	if open, _ := strconv.Atoi(metrics["kvd_connections"]); open > nofile {
		t.Errorf("open connections: got %d, want fewer than RLIMIT_NOFILE %d", open, nofile)
	}
	for _, c := range flood {
		c.Close()
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
}

// Clients that ask for a large value, or watch a database that holds
// one, and read nothing of the answer fill every slot: once their answers
// have waited a second, a newcomer still takes the place of one, and kvd
// stops without waiting for them. A watch stream is its own connection,
// taken over from Go's HTTP server, and must give way all the same.
func TestKvd_ClientsThatReadNoAnswerDoNotLockOutOthers(t *testing.T) {
	for name, path := range map[string]string{
		"GET":   "/api/v1/sqlite/kv/big?db=app",
		"watch": "/api/v1/sqlite/kv/watch?db=app&after_op=0",
	} {
		t.Run(name, func(t *testing.T) { lockedOutByReadingNothing(t, path) })
	}
}

func lockedOutByReadingNothing(t *testing.T, path string) {
	const slots = 4
	d := startDaemon(t, t.TempDir(), "--max-connections", strconv.Itoa(slots))
	client := &http.Client{Timeout: 10 * time.Second}
	big := strings.Repeat("v", 8<<20) // more than the sockets' buffers hold
	req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/big?db=app&create_db_if_missing=true", strings.NewReader(big))
	if res, err := client.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("PUT of the large value: %v %v", res, err)
	}
	client.CloseIdleConnections()
	addr := strings.TrimPrefix(d.url, "http://")
	readers := make([]net.Conn, slots)
	for i := range readers {
		if i == slots-1 { // watches may hold all slots but one: a GET holds the last, as the newest it goes last
			path = "/api/v1/sqlite/kv/big?db=app"
		}
		readers[i] = startReadingNothing(t, addr, path)
	}
	time.Sleep(2 * time.Second) // past writeStalledAfter
	// On a busy machine the answers may begin later, and wait their
	// second from then: a newcomer gets in well before a stalled write's
	// 30 s run out, or never without eviction.
	var res *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err = client.Get(d.url + "/healthz")
		if err == nil && res.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		if err == nil {
			res.Body.Close()
		}
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/healthz with %d clients reading nothing: %v %v\n%s", slots, res, err, d.logs)
	}
	res.Body.Close()
	if evicted := scrape(t, client, d.url)[`kvd_connections_shed_total{reason="evicted"}`]; evicted == "" || evicted == "0" {
		t.Fatalf("evicted connections: %q, want some", evicted)
	}
	// Stopping does not wait for clients that read nothing: their work is done.
	start := time.Now()
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("stopping with %d clients reading nothing took %v", len(readers), took)
	}
}

// A watcher that closes its connection gives back its connection slot
// and its watched database at once, not at the stream's next heartbeat
// (15 s): watches dropped as fast as they open must not lock others out.
func TestKvd_WatchersThatLeaveGiveTheirSlotsBackAtOnce(t *testing.T) {
	const slots = 4
	// --max-open-dbs 2 lets one database be watched at a time.
	d := startDaemon(t, t.TempDir(), "--max-connections", strconv.Itoa(slots), "--max-open-dbs", "2")
	client := &http.Client{Timeout: 10 * time.Second}
	for _, db := range []string{"wa", "wb"} {
		req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/k?create_db_if_missing=true&db="+db, strings.NewReader("v"))
		if res, err := client.Do(req); err != nil || res.StatusCode != 200 {
			t.Fatalf("PUT to %s: %v %v", db, res, err)
		}
	}
	client.CloseIdleConnections()
	addr := strings.TrimPrefix(d.url, "http://")
	for _, db := range []string{"wa", "wb", "wa"} {
		watchers := make([]net.Conn, slots-1) // watches may hold all but one of the slots
		for i := range watchers {
			watchers[i] = watchFor(t, addr, "/api/v1/sqlite/kv/watch?db="+db, 3*time.Second)
		}
		for _, c := range watchers {
			c.Close()
		}
	}
	// The streams end as kvd reads their clients' ends: a moment, not a
	// heartbeat's 15 s.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := client.Get(d.url + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		if err == nil && res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz 3 s after the watchers left: %v %v", res, err)
		}
	}
}

// watchFor opens a watch of path on a connection of its own, trying
// again after a 503 until within is up, and returns once it is watching.
func watchFor(t *testing.T, addr, path string, within time.Duration) net.Conn {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: kvd\r\n\r\n", path)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		answer, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && strings.HasPrefix(answer, "HTTP/1.1 200") {
			return c
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("GET %s, the watchers before it gone: %q %v", path, answer, err)
		}
	}
}

// startReadingNothing asks for path and reads only the status line of its
// answer, from a connection of its own. A 503 is retried: the PUT's
// connection may still hold its slot, in service, for a moment after its
// client has its answer, and a reader refused then would leave a free
// slot that no eviction made.
func startReadingNothing(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c := dialFrom(t, "127.0.0.2", addr)
		c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: kvd\r\n\r\n", path)
		status := make([]byte, len("HTTP/1.1 200"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadFull(c, status)
		c.SetReadDeadline(time.Time{})
		if err == nil && string(status) == "HTTP/1.1 200" {
			return c
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %q %v", path, status, err)
		}
	}
}

// dialFrom opens a TCP connection from a loopback address of its own,
// closed when the test ends.
func dialFrom(t *testing.T, from, to string) net.Conn {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := dialer.Dial("tcp", to)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// scrape reads /metrics into series → value.
func scrape(t *testing.T, client *http.Client, url string) map[string]string {
	t.Helper()
	res, err := client.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	series := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			series[name] = value
		}
	}
	return series
}

// A newcomer at --max-connections takes the place of a connection with no
// work in hand, and one that has a request whole is at work: closing it
// would apply a write whose client never learns so. Many clients, each
// sending one PUT a connection at a cap far below their number: every key
// stored must be one whose client was told so, and every key a client was
// told of stored.
func TestKvd_AConnectionClosedForANewcomerTookNoWrite(t *testing.T) {
	const slots, clients = 4, 24
	d := startDaemon(t, t.TempDir(), "--max-connections", strconv.Itoa(slots))
	addr := strings.TrimPrefix(d.url, "http://")
	put := func(key string) (stored bool) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "PUT /api/v1/sqlite/kv/%s?db=app&create_db_if_missing=true HTTP/1.1\r\nHost: kvd\r\nContent-Length: 1\r\n\r\nv", key)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}
	told := make(chan string, 1<<16)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range clients {
		wg.Go(func() {
			for n, end := 0, time.Now().Add(2*time.Second); time.Now().Before(end); n++ {
				sent.Add(1)
				if key := fmt.Sprintf("k%d-%d", i, n); put(key) {
					told <- key
				}
			}
		})
	}
	wg.Wait()
	close(told)
	answered := map[string]bool{}
	for key := range told {
		answered[key] = true
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var stored, untold int
	storedKeys := map[string]bool{}
	for offset := 0; ; offset += 1000 {
		res, err := client.Get(fmt.Sprintf("%s/api/v1/sqlite/kv?db=app&limit=1000&offset=%d", d.url, offset))
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Keys []string }
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range page.Keys {
			stored++
			storedKeys[key] = true
			if !answered[key] {
				untold++
			}
		}
		if len(page.Keys) < 1000 {
			break
		}
	}
	t.Logf("%d PUTs sent, %d stored, %d of them without a 200", sent.Load(), stored, untold)
	if stored == 0 || untold > 0 {
		t.Fatalf("%d of %d keys stored were never answered with a 200", untold, stored)
	}
	for key := range answered {
		if !storedKeys[key] {
			t.Fatalf("%s was answered with a 200 and is not stored", key)
		}
	}
}

// Two kvds may serve one database file (SQLite serializes their commits),
// and a watcher of one must get the other's writes too, in op order, none
// missed: they reach history but not the watched kvd's hub, and its
// streams skipped them for good, with no gap said. A stream on A follows
// writes made alternately through A and B; then, with A idle, one made
// through B only.
func TestKvd_AWatcherGetsTheWritesOfAnotherKvdOnTheFile(t *testing.T) {
	dir := t.TempDir()
	a, b := startDaemon(t, dir), startDaemon(t, dir)
	client := &http.Client{Timeout: 10 * time.Second}
	put := func(d *kvdProcess, value string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", d.url+"/api/v1/sqlite/kv/k?db=app&create_db_if_missing=true", strings.NewReader(value))
		res, err := client.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("PUT %s: %v %v", value, res, err)
		}
		res.Body.Close()
	}
	put(a, "a0") // op 1
	c := watchFor(t, strings.TrimPrefix(a.url, "http://"), "/api/v1/sqlite/kv/watch?db=app&after_op=1", 5*time.Second)
	defer c.Close()
	c.SetReadDeadline(time.Time{})
	events := make(chan string, 100)
	go func() {
		lines := bufio.NewScanner(c)
		for lines.Scan() {
			if id, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
				events <- id
			} else if strings.HasPrefix(lines.Text(), "event: gap") {
				events <- "gap"
			}
		}
		close(events)
	}()
	for i, d := range []*kvdProcess{b, a, b, a, b} { // ops 2 to 6
		put(d, fmt.Sprintf("v%d", i+2))
	}
	var got []string
	for deadline := time.After(10 * time.Second); len(got) < 5; {
		select {
		case id, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %v", got)
			}
			got = append(got, id)
		case <-deadline:
			t.Fatalf("events of ops 2 to 6, written through two kvds: got %v", got)
		}
	}
	if fmt.Sprint(got) != "[2 3 4 5 6]" {
		t.Fatalf("events of ops 2 to 6, written through two kvds: got %v", got)
	}
}
