package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// Under a file limit that holds far fewer databases than --max-open-dbs
// (RLIMIT_NOFILE 64, set by prlimit), kvd keeps fewer open, says so at
// start, and serves every database: each create and each read of a
// database written before answers 200, where kvd used to run out of
// descriptors after eight and answer 500 (and 400) until databases idled
// out.
func TestKvd_LowFileLimitServesManyDatabases(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is needed to lower kvd's RLIMIT_NOFILE")
	}
	for _, nofile := range []int{64, 256} {
		t.Run(fmt.Sprint(nofile), func(t *testing.T) {
			d := startDaemonUnder(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile)}, t.TempDir())
			opened := regexp.MustCompile(`level=WARN msg="RLIMIT_NOFILE is too low for --max-open-dbs.*max_open_dbs=(\d+)`).FindStringSubmatch(d.logs.String())
			if opened == nil {
				t.Fatalf("no warning of fewer open databases at start:\n%s", d.logs)
			}
			t.Logf("RLIMIT_NOFILE %d: at most %s databases open", nofile, opened[1])
			do := d.requester(t)
			const databases = 40
			for i := range databases {
				if status, body := do("PUT", fmt.Sprintf("/api/v1/sqlite/kv/k?db=m%d&create_db_if_missing=true", i), fmt.Sprint(i)); status != 200 {
					t.Fatalf("create of database %d: got %d %s, want 200\n%s", i, status, body, d.logs)
				}
			}
			for i := range databases {
				if status, body := do("GET", fmt.Sprintf("/api/v1/sqlite/kv/k?db=m%d", i), ""); status != 200 || body != fmt.Sprint(i) {
					t.Fatalf("read of database %d: got %d %s, want 200 %d\n%s", i, status, body, i, d.logs)
				}
			}
			if status, _ := do("GET", "/readyz", ""); status != 200 {
				t.Fatalf("/readyz: got %d, want 200", status)
			}
			if strings.Contains(d.logs.String(), "too many open files") {
				t.Errorf("kvd ran out of file descriptors:\n%s", d.logs)
			}
			if code := d.stop(t); code != 0 {
				t.Fatalf("exit code: got %d, want 0\n%s", code, d.logs)
			}
		})
	}
}

// fitFiles gives connections at least half the limit, databases what is
// left beside the spare room, and, when not one database fits with its
// readers, fewer readers; when not even one reader fits, kvd cannot run.
func TestFitFiles_DividesTheFileLimit(t *testing.T) {
	two := sqlitekv.Options{Readers: 2} // 14 files a database
	for _, c := range []struct {
		limit, maxConns, maxOpenDBs int
		store                       sqlitekv.Options
		want                        fileBudget
		fails                       bool
	}{
		// Enough for everything: connections get what 1024 databases leave.
		{limit: 1 << 20, maxOpenDBs: 1024, store: two, want: fileBudget{limit: 1 << 20, connections: 1<<20 - 14*1024 - 64, databases: 1024, perDatabase: 14}},
		// The tester's limit: half for connections, (1024-512-64)/14 databases.
		{limit: 1024, maxOpenDBs: 1024, store: two, want: fileBudget{limit: 1024, connections: 512, databases: 32, perDatabase: 14}},
		// 64: 32 connections, 16 spare, one database.
		{limit: 64, maxOpenDBs: 1024, store: two, want: fileBudget{limit: 64, connections: 32, databases: 1, perDatabase: 14}},
		// Connections as given; databases fit beside them.
		{limit: 1024, maxConns: 100, maxOpenDBs: 1024, store: two, want: fileBudget{limit: 1024, connections: 100, databases: 61, perDatabase: 14}},
		// Many cores at 64: 16 readers (98 files) do not fit in 16; 2 do.
		{limit: 64, maxOpenDBs: 8, store: sqlitekv.Options{Readers: 16}, want: fileBudget{limit: 64, connections: 32, databases: 1, readers: 2, perDatabase: 14}},
		// Connections that leave no room for a database with one reader.
		{limit: 64, maxConns: 60, maxOpenDBs: 1, store: two, fails: true},
	} {
		got, err := fitFiles(c.limit, c.maxConns, c.maxOpenDBs, c.store)
		if c.fails {
			if err == nil {
				t.Errorf("fitFiles(%d, %d, %d): got %+v, want an error", c.limit, c.maxConns, c.maxOpenDBs, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("fitFiles(%d, %d, %d): got %+v %v, want %+v", c.limit, c.maxConns, c.maxOpenDBs, got, err, c.want)
		}
	}
}

// Watches keep their databases open as long as they last. Under
// RLIMIT_NOFILE 64, watches of six databases took every descriptor and
// other databases answered 500 "Database file cannot be written or
// opened". Now a watch of one database too many answers 503 OVERLOADED,
// and the other databases are served; nothing answers 500.
func TestKvd_WatchesUnderALowFileLimitLeaveRoomForOtherDatabases(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is needed to lower kvd's RLIMIT_NOFILE")
	}
	d := startDaemonUnder(t, []string{prlimit, "--nofile=64:64"}, t.TempDir())
	do := d.requester(t)
	for i := range 9 {
		if status, body := do("PUT", fmt.Sprintf("/api/v1/sqlite/kv/k?db=w%d&create_db_if_missing=true", i), "v"); status != 200 {
			t.Fatalf("create of w%d: got %d %s, want 200", i, status, body)
		}
	}
	watching := 0
	for i := range 6 {
		res, err := (&http.Client{}).Get(fmt.Sprintf("%s/api/v1/sqlite/kv/watch?db=w%d", d.url, i))
		if err != nil {
			t.Fatalf("watch of w%d: %v\n%s", i, err, d.logs)
		}
		defer res.Body.Close() // a watch lasts until its client goes
		switch res.StatusCode {
		case 200:
			watching++
		case 503:
		default:
			body, _ := io.ReadAll(res.Body)
			t.Fatalf("watch of w%d: got %d %s, want 200 or 503 OVERLOADED", i, res.StatusCode, body)
		}
	}
	if watching == 0 {
		t.Fatal("no watch was served")
	}
	for i := 6; i < 9; i++ {
		if status, body := do("PUT", fmt.Sprintf("/api/v1/sqlite/kv/k?db=w%d", i), "w"); status != 200 {
			t.Fatalf("write to w%d beside %d watches: got %d %s, want 200\n%s", i, watching, status, body, d.logs)
		}
		if status, body := do("GET", fmt.Sprintf("/api/v1/sqlite/kv/k?db=w%d", i), ""); status != 200 || body != "w" {
			t.Fatalf("read of w%d beside %d watches: got %d %s, want 200 w\n%s", i, watching, status, body, d.logs)
		}
	}
	if status, body := do("PUT", "/api/v1/sqlite/kv/k?db=fresh&create_db_if_missing=true", "v"); status != 200 {
		t.Fatalf("create beside %d watches: got %d %s, want 200\n%s", watching, status, body, d.logs)
	}
}

// requester sends requests to d, each given up after 10 s; a request
// that fails fails the test, with d's logs.
func (d *kvdProcess) requester(t *testing.T) func(method, target, body string) (int, string) {
	client := &http.Client{Timeout: 10 * time.Second}
	return func(method, target, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, d.url+target, strings.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, target, err, d.logs)
		}
		defer res.Body.Close()
		got, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(got)
	}
}
