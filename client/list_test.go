package client_test

import (
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
