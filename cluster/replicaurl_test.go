package cluster

import "testing"

func TestReplicaURL_PutsDatabaseAndEpochBeforeTheQuery(t *testing.T) {
	for _, c := range []struct{ root, db, want string }{
		{"file:///var/lib/kvd-replica", "app.db", "file:///var/lib/kvd-replica/app.db/7"},
		{"file:///var/lib/kvd-replica/", "team/x.db", "file:///var/lib/kvd-replica/team/x.db/7"},
		{"s3://bucket/kvd?endpoint=http://minio:9000&region=us-east-1", "app.db", "s3://bucket/kvd/app.db/7?endpoint=http://minio:9000&region=us-east-1"},
		{"s3://bucket", "app.db", "s3://bucket/app.db/7"},
	} {
		if got := replicaURL(c.root, c.db, 7); got != c.want {
			t.Errorf("replicaURL(%q, %q, 7) = %q, want %q", c.root, c.db, got, c.want)
		}
	}
}

// TestCheckReplica_RefusesRootsLitestreamWouldShipNowhere: Litestream
// takes such a root when a database registers, then replicates nothing,
// while kvd acknowledges writes; so kvd refuses it at start.
func TestCheckReplica_RefusesRootsLitestreamWouldShipNowhere(t *testing.T) {
	for _, root := range []string{"file:///var/lib/kvd-replica", "file:///r/", "s3://bucket", "s3://bucket/kvd?endpoint=http://minio:9000", "gs://b/p", "sftp://user@host/p"} {
		if err := CheckReplica(root); err != nil {
			t.Errorf("CheckReplica(%q): %v, want nil", root, err)
		}
	}
	for _, root := range []string{"", "replica", "/var/lib/kvd-replica", "http://minio:9000/kvd", "s3:///kvd", "s3:bucket", "file://", "file:///", "file://relative/path", "file:relative", "ftp://host/p", "://x"} {
		if err := CheckReplica(root); err == nil {
			t.Errorf("CheckReplica(%q): nil, want an error", root)
		}
	}
}
