package client_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

// smallAnswersServer is a kvd whose answers hold 16 KiB of values, so a
// few values of 4 KiB make it cut them.
func smallAnswersServer(t *testing.T) (*client.Client, *clienttest.Clock) {
	t.Helper()
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	srv := clienttest.New(t, clienttest.Options{Now: clock.Now, MaxAnswerBytes: 16 << 10})
	return newClientOf(t, srv.URL, ""), clock
}

// value4K is value i: 4 KiB, not UTF-8 (kvd shows it as base64).
func value4K(i int) []byte {
	return append([]byte{0xff, byte(i)}, bytes.Repeat([]byte{byte(i)}, 4<<10-2)...)
}

func TestHistory_FollowsKvdsCursorToTheLimit(t *testing.T) {
	c, _ := smallAnswersServer(t)
	ctx := testContext(t)
	for i := range 12 {
		if _, err := c.Put(ctx, "doc", client.Value{Data: value4K(i), ContentType: "application/octet-stream"}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.HistoryPage(ctx, "doc", client.Limit(10))
	if err != nil {
		t.Fatal(err)
	}
	if !page.Truncated || page.NextCursor == "" || len(page.Operations) >= 10 {
		t.Fatalf("one page of 10 writes of 4 KiB under a 16 KiB bound: got %d writes, truncated %v, cursor %q; want fewer than 10, truncated, a cursor",
			len(page.Operations), page.Truncated, page.NextCursor)
	}
	next, err := c.HistoryPage(ctx, "doc", client.Cursor(page.NextCursor))
	if err != nil || len(next.Operations) == 0 || next.Operations[0].OpNumber >= page.Operations[len(page.Operations)-1].OpNumber {
		t.Fatalf("the page after: got %+v, %v; want older writes", next, err)
	}
	ops, err := c.History(ctx, "doc", client.Limit(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 10 {
		t.Fatalf("History with Limit(10): got %d writes, want 10 (it follows kvd's cursor)", len(ops))
	}
	for i, op := range ops {
		if want := value4K(11 - i); !bytes.Equal(op.NewValue, want) || !bytes.Equal(op.OldValue, value4K(10-i)) {
			t.Fatalf("write %d: got new %x..., old %x..., want new %x..., old %x...", i, op.NewValue[:2], op.OldValue[:2], want[:2], value4K(10 - i)[:2])
		}
	}
	all, err := c.History(ctx, "doc", client.Limit(1000))
	if err != nil || len(all) != 12 {
		t.Fatalf("History with Limit(1000): got %d writes, %v; want all 12", len(all), err)
	}
}

func TestBatchGetAndList_GatherWhatKvdCut(t *testing.T) {
	c, _ := smallAnswersServer(t)
	ctx := testContext(t)
	var keys []string
	for i := range 12 {
		key := fmt.Sprintf("k%02d-%s", i, strings.Repeat("x", 1000))
		keys = append(keys, key)
		if _, err := c.Put(ctx, key, client.Value{Data: value4K(i), ContentType: "application/octet-stream"}); err != nil {
			t.Fatal(err)
		}
	}
	values, err := c.BatchGet(ctx, append(slices.Clone(keys), "missing"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := values["missing"]; !ok || v != nil || len(values) != 13 {
		t.Fatalf("BatchGet: got %d values (missing: %v, %v), want 13 with missing nil", len(values), v, ok)
	}
	for i, k := range keys {
		if v := values[k]; v == nil || !bytes.Equal(v.Data, value4K(i)) {
			t.Fatalf("BatchGet: value %d is not the one written", i)
		}
	}
	for i := range 20 {
		if _, err := c.Put(ctx, fmt.Sprintf("z%02d-%s", i, strings.Repeat("y", 1000)), client.Text("v")); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.List(ctx, client.Limit(25))
	if err != nil {
		t.Fatal(err)
	}
	if list.Count != 25 || len(list.Keys) != 25 || list.Keys[24][:3] != "z12" {
		t.Fatalf("List(Limit 25) of 32 keys of 1 KiB under a 16 KiB bound: got %d keys (count %d), want the first 25", len(list.Keys), list.Count)
	}
}

func TestDiff_OfKeysPagesByAfter(t *testing.T) {
	c, clock := smallAnswersServer(t)
	ctx := testContext(t)
	from := clock.Now()
	var keys []string
	for i := range 8 {
		keys = append(keys, fmt.Sprintf("k%d", i))
		if _, err := c.Put(ctx, keys[i], client.Value{Data: value4K(i), ContentType: "application/octet-stream"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	var seen []string
	for after, page := "", 0; ; page++ {
		if page > 8 {
			t.Fatalf("still paging after %d pages", page)
		}
		d, err := c.Diff(ctx, from.Add(-time.Second), clock.Now(), client.Keys(keys...), client.After(after))
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range d.Changes {
			seen = append(seen, ch.Key)
		}
		if after = d.NextAfter; after == "" {
			break
		}
		if !d.Truncated {
			t.Fatalf("a page with a NextAfter must say Truncated")
		}
	}
	if !slices.Equal(seen, keys) {
		t.Fatalf("diff of keys over all pages: got %q, want %q", seen, keys)
	}
}
