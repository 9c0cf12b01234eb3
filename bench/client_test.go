package bench

import (
	"testing"

	"github.com/kvd/kvd/client"
)

// The key's slash must stay escaped, or kvd would see /kv/a/b/incr and
// take "b" for part of the path to an operation.
func TestClient_KeyURLKeepsTheEscapedSlash(t *testing.T) {
	c, err := NewClient("http://127.0.0.1:8080/", "app", "t1", "", 1, DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	u := c.keyURL("a/b", "incr", c.query(true))
	want := "/api/v1/sqlite/kv/a%2Fb/incr?create_db_if_missing=true&db=app&table=t1"
	if u != want {
		t.Errorf("got %s, want %s", u, want)
	}
	// Escaped as package client escapes keys, which kvd's tests check.
	for _, key := range []string{"ü 100%", "x?y#z&w=1", "-_.!~*'()"} {
		want := "/api/v1/sqlite/kv/" + client.EscapeKey(key)
		if got := c.keyURL(key, "", nil); got != want {
			t.Errorf("%q: got %s, want %s", key, got, want)
		}
	}
}

// BenchmarkWorker_Noop is the client's cost per operation against a fake
// that does nothing: one worker's Do and record, i.e. everything kvbench
// adds on top of net/http and the loopback.
func BenchmarkWorker_Noop(b *testing.B) {
	_, u := newFake(b, nil)
	c, err := NewClient(u, DefaultDB, "", "", 1, DefaultTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sc, _ := NewScenario("noop", c, Config{})
	w, rec := sc.NewWorker(1), newRecorder(0)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		rec.record(w.Do(ctx), 0)
	}
	if rec.status[200] == 0 {
		b.Fatal("no 200 answers")
	}
}

// BenchmarkWorker_Get is the same for a GET of a 100-byte value.
func BenchmarkWorker_Get(b *testing.B) {
	_, u := newFake(b, nil)
	c, err := NewClient(u, DefaultDB, "", "", 1, DefaultTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sc, _ := NewScenario("get", c, Config{Keys: 100})
	if err := sc.Prepare(b.Context()); err != nil {
		b.Fatal(err)
	}
	w, rec := sc.NewWorker(1), newRecorder(0)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		rec.record(w.Do(ctx), 0)
	}
}
