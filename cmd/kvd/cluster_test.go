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
		{[]string{"--cluster-lease-ttl", "-5s"}, "--cluster-lease-ttl"},
		{[]string{"--cluster-lease-ttl", "0"}, "--cluster-lease-ttl"},
		{[]string{"--cluster-lease-ttl", "1500ms"}, "--cluster-lease-ttl"},
		{[]string{"--cluster-node", " n1 "}, "--cluster-node"},
		{[]string{"--cluster-node", "n1\t"}, "--cluster-node"},
		{[]string{"--cluster-advertise", "127.0.0.1:8081"}, "--cluster-advertise"},
		{[]string{"--cluster-advertise", "tcp://127.0.0.1:8081"}, "--cluster-advertise"},
		{[]string{"--cluster-advertise", "http://"}, "--cluster-advertise"},
		{[]string{"--cluster-advertise", "http://127.0.0.1:8081?x=1"}, "--cluster-advertise"},
		{[]string{"--cluster-advertise", "http:// 127.0.0.1"}, "--cluster-advertise"},
	} {
		args := append(append([]string{}, node...), "--cluster-replica", "file:///var/lib/kvd-replica")
		_, err := parseConfig(append(args, tc.args...), nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.says)
		}
	}
	good := append(node, "--cluster-replica", "file:///var/lib/kvd-replica", "--cluster-lease-ttl", "2s", "--cluster-advertise", "https://n1.example:8443/kvd/")
	if _, err := parseConfig(good, nil, io.Discard); err != nil {
		t.Errorf("good flags %v: %v", good, err)
	}
}
