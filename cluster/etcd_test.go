package cluster

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestEtcd_AnEndpointThatDoesNotAnswerLeavesTimeForTheNext: with the
// first endpoint listed hung, a keep-alive (a third of a TTL to reach
// etcd) still reaches the next, and later calls go there first.
func TestEtcd_AnEndpointThatDoesNotAnswerLeavesTimeForTheNext(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0") // connects, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	f := newFakeEtcd(t)
	e := newEtcd([]string{"http://" + hung.Addr().String(), f.URL})
	budget := 400 * time.Millisecond
	for _, call := range []string{"first", "second"} {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		start := time.Now()
		_, _, err := e.grant(ctx, 3*time.Second)
		cancel()
		if err != nil {
			t.Fatalf("%s grant within %v: %v", call, budget, err)
		}
		if call == "second" && time.Since(start) > budget/4 {
			t.Errorf("second grant took %v: the hung endpoint was tried first again", time.Since(start))
		}
	}
}
