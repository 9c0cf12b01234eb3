package httpapi_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
	"github.com/kvd/kvd/sqlitekv"
)

// TestMetrics_NameDatabasesWithoutAbsolutePaths: /metrics is open to anyone
// who reaches the port, so a database shows as its path below its root,
// never where the roots lie on disk.
func TestMetrics_NameDatabasesWithoutAbsolutePaths(t *testing.T) {
	notes, shared := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(shared, "team"), 0o750); err != nil {
		t.Fatal(err)
	}
	var resolver *sqlitekv.Resolver
	ts := newTestServer(t, func(a *actors.Config, _ *httpapi.Config) {
		var err error
		if resolver, err = sqlitekv.NewResolver(a.Resolver.DataDir(), []string{notes, shared}, false); err != nil {
			t.Fatal(err)
		}
		a.Resolver = resolver
	})
	create := "&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("k", "db=app"+create), "v"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(filepath.Join(shared, "team", "x.db"))+create), "v"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("k", "db="+url.QueryEscape(notes)+"&table=notes"), "v"), 200) // directory mode

	body := string(ts.do(t, "GET", "/metrics", "").Body)
	for _, want := range []string{
		`kvd_db_queue_depth{db="app.db"} 0`,
		`kvd_db_queue_depth{db="allow-dir-1"} 0`,
		`kvd_db_queue_depth{db="allow-dir-2/team/x.db"} 0`,
		"kvd_open_databases 3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, dir := range []string{ts.DataDir, notes, shared, realPath(t, notes), realPath(t, shared), filepath.Dir(realPath(t, shared))} {
		if strings.Contains(body, dir) {
			t.Errorf("metrics show the absolute path %s", dir)
		}
	}
}

// The connection-shedding counter is there at 0 from the start, one
// series per reason, so that an alert rule on it finds them before the
// first shed.
func TestMetrics_ShedConnectionsAreCountedFromZero(t *testing.T) {
	ts := newTestServer(t)
	body := string(ts.do(t, "GET", "/metrics", "").Body)
	for _, reason := range []string{"evicted", "refused", "stalled"} {
		if series := `kvd_connections_shed_total{reason="` + reason + `"} 0`; !strings.Contains(body, series) {
			t.Errorf("/metrics of a fresh kvd lacks %s", series)
		}
	}
}
