package main

import (
	"io"
	"strings"
	"testing"
)

// TestClusterFlags_BadOnesStopKvdAtStart: a cluster flag kvd cannot
// honour stops it with a message naming the flag, where it would
// otherwise serve with writes that reach no replica, or fencing wrong.
func TestClusterFlags_BadOnesStopKvdAtStart(t *testing.T) {
	node := []string{"--cluster-node", "n1"}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--cluster-replica", "replica"}, "--cluster-replica"},
		{[]string{"--cluster-replica", "http://minio:9000/kvd"}, "--cluster-replica"},
		{[]string{"--cluster-replica", "s3:///kvd"}, "--cluster-replica"},
		{[]string{"--cluster-replica", "file://"}, "--cluster-replica"},
	} {
		_, err := parseConfig(append(node, tc.args...), nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.says)
		}
	}
	if _, err := parseConfig(append(node, "--cluster-replica", "file:///var/lib/kvd-replica"), nil, io.Discard); err != nil {
		t.Errorf("good flags: %v", err)
	}
}
