package client_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

func TestList_PrefixLimitOffset(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	for _, k := range []string{"users/bob", "users/alice", "users/carol", "orders/1"} {
		if _, err := c.Put(ctx, k, client.Text("x")); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"orders/1", "users/alice", "users/bob", "users/carol"}; !slices.Equal(all.Keys, want) {
		t.Errorf("all: got %q, want %q", all.Keys, want)
	}
	page, err := c.List(ctx, client.Prefix("users/"), client.Limit(2), client.Offset(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"users/bob", "users/carol"}; !slices.Equal(page.Keys, want) || page.Count != 2 || page.Limit != 2 || page.Offset != 1 || page.Prefix != "users/" {
		t.Errorf("page: got %+v, want %q", page, want)
	}
	// By key: a full page names its last key, the next page starts after it.
	first, err := c.List(ctx, client.Limit(2))
	if err != nil || first.NextAfter != "users/alice" {
		t.Fatalf("first page: %+v %v, want next_after users/alice", first, err)
	}
	next, err := c.List(ctx, client.Limit(2), client.After(first.NextAfter))
	if want := []string{"users/bob", "users/carol"}; err != nil || !slices.Equal(next.Keys, want) {
		t.Errorf("page after %q: got %+v %v, want %q", first.NextAfter, next, err, want)
	}
}

func TestListAt_KeysAsTheyWere(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	if _, err := c.Put(ctx, "a", client.Text("1")); err != nil {
		t.Fatal(err)
	}
	before := clock.Now()
	clock.Advance(10 * time.Second)
	if _, err := c.Put(ctx, "b", client.Text("2")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	then, err := c.ListAt(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(then.Keys, []string{"a"}) || len(then.GapKeys) != 0 || then.Truncated {
		t.Errorf("then: got %+v, want just a", then)
	}
	now, err := c.ListAt(ctx, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(now.Keys, []string{"b"}) {
		t.Errorf("now: got %+v, want just b", now)
	}
}

// pagedTable writes k0..k6 and other/x at t0, then at t1 deletes k2,
// modifies k5 and creates k7: more keys with history than a limit of 3.
func pagedTable(t *testing.T) (c *client.Client, t0, t1 time.Time) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	items := []client.Item{{Key: "other/x", Value: client.Text("x")}}
	for i := range 7 {
		items = append(items, client.Item{Key: fmt.Sprintf("k%d", i), Value: client.Text("v0")})
	}
	if _, err := c.BatchSet(ctx, items); err != nil {
		t.Fatal(err)
	}
	t0 = clock.Now()
	clock.Advance(10 * time.Second)
	if err := c.Delete(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k5", "k7"} {
		if _, err := c.Put(ctx, k, client.Text("v1")); err != nil {
			t.Fatal(err)
		}
	}
	return c, t0, clock.Now()
}

func TestListAt_PagesByKeyWithAfter(t *testing.T) {
	c, _, t1 := pagedTable(t)
	ctx := testContext(t)
	var keys, nexts []string
	after := "" // the first page
	for page := 0; ; page++ {
		if page == 5 {
			t.Fatalf("still paging after %d pages: %q", page, nexts)
		}
		res, err := c.ListAt(ctx, t1, client.Prefix("k"), client.Limit(3), client.After(after))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, res.Keys...)
		if res.Truncated != (res.NextAfter != "") {
			t.Errorf("page %d: Truncated %v with NextAfter %q", page, res.Truncated, res.NextAfter)
		}
		if res.NextAfter == "" {
			break
		}
		nexts = append(nexts, res.NextAfter)
		after = res.NextAfter
	}
	// The first page holds only k0 and k1 (k2 was deleted) and is not the last.
	if want := []string{"k0", "k1", "k3", "k4", "k5", "k6", "k7"}; !slices.Equal(keys, want) {
		t.Errorf("keys over every page: got %q, want %q", keys, want)
	}
	if want := []string{"k2", "k5"}; !slices.Equal(nexts, want) {
		t.Errorf("next_after of each page: got %q, want %q", nexts, want)
	}
}
