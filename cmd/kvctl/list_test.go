package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client/clienttest"
)

func TestList_PrefixPagesAndAll(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	var items []string
	for i := range 7 {
		items = append(items, fmt.Sprintf(`{"key":"users/%d","value":"x"}`, i))
	}
	k.must(strings.Join(append(items, `{"key":"orders/1","value":"x"}`), "\n"), "batch", "set", "--create")
	if r := k.run("", "list", "users/", "--limit", "3", "--offset", "2"); r.stdout != "users/2\nusers/3\nusers/4\n" || !strings.Contains(r.stderr, "--after users/4") {
		t.Errorf("page: got %q, stderr %q, want a full page, and on stderr where the next begins", r.stdout, r.stderr)
	}
	if r := k.run("", "list", "users/", "--limit", "3", "--offset", "5"); r.stdout != "users/5\nusers/6\n" || r.stderr != "" {
		t.Errorf("last page: got %q, stderr %q, want two keys and nothing said", r.stdout, r.stderr)
	}
	all := k.must("", "list", "users/", "--limit", "3", "--all")
	if got := strings.Count(all, "\n"); got != 7 || !strings.HasPrefix(all, "users/0\n") {
		t.Errorf("--all: got %q, want 7 keys", all)
	}
	var page struct {
		Keys  []string `json:"keys"`
		Count int      `json:"count"`
	}
	if err := json.Unmarshal([]byte(k.must("", "--json", "list", "--all", "--limit", "2")), &page); err != nil || page.Count != 8 || len(page.Keys) != 8 {
		t.Errorf("--json --all: got %+v, %v; want all 8 keys", page, err)
	}
}

func TestListAt_KeysAsTheyWere(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "a", "1")
	clock.Advance(10 * time.Second)
	k.must("", "put", "b", "2")
	k.must("", "del", "a")
	if got := k.must("", "list", "--at", "1700000000"); got != "a\n" {
		t.Errorf("then: got %q, want a", got)
	}
	if got := k.must("", "list"); got != "b\n" {
		t.Errorf("now: got %q, want b", got)
	}
}

func TestHistory_PlainAndJSON(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "k", "one")
	clock.Advance(time.Second)
	k.must("\xff\x00", "put", "k")
	clock.Advance(time.Second)
	k.must("", "put", "k", "secret", "--no-history")
	clock.Advance(time.Second)
	k.must("", "del", "k")
	want := "4\t2023-11-14T22:13:23Z\tdelete\t-\n" +
		"3\t2023-11-14T22:13:22Z\tset\t(unrecorded)\n" +
		"2\t2023-11-14T22:13:21Z\tset\t\"\\xff\\x00\"\n" +
		"1\t2023-11-14T22:13:20Z\tset\t\"one\"\n"
	if got := k.must("", "history", "k"); got != want {
		t.Errorf("history:\ngot  %q\nwant %q", got, want)
	}
}

// A look at a past time is paged by key: --all follows next_after to the
// end, --after starts a page where the previous one stopped.
func TestListAt_PagesWithAfterAndAll(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	var items []string
	for i := range 7 {
		items = append(items, fmt.Sprintf(`{"key":"k%d","value":"x"}`, i))
	}
	k.must(strings.Join(append(items, `{"key":"other","value":"x"}`), "\n"), "batch", "set", "--create")
	clock.Advance(10 * time.Second)
	k.must("", "del", "k1")
	now := "1700000010"

	r := k.run("", "list", "k", "--at", now, "--limit", "3")
	if r.code != exitOK || r.stdout != "k0\nk2\n" || !strings.Contains(r.stderr, "--after k2") {
		t.Errorf("first page: got %+v, want k0 k2 and a hint to continue --after k2", r)
	}
	if got := k.must("", "list", "k", "--at", now, "--limit", "3", "--after", "k2"); got != "k3\nk4\nk5\n" {
		t.Errorf("--after k2: got %q, want k3 k4 k5", got)
	}
	r = k.run("", "list", "k", "--at", now, "--limit", "3", "--all")
	if r.code != exitOK || r.stdout != "k0\nk2\nk3\nk4\nk5\nk6\n" || r.stderr != "" {
		t.Errorf("--all: got %+v, want k0 k2..k6 and no hint", r)
	}
	type jsonPage struct {
		Keys      []string `json:"keys"`
		Truncated bool     `json:"truncated"`
		NextAfter string   `json:"next_after"`
	}
	var page jsonPage
	out := k.must("", "--json", "list", "--at", now, "--limit", "2")
	if err := json.Unmarshal([]byte(out), &page); err != nil || !page.Truncated || page.NextAfter != "k1" || strings.Join(page.Keys, " ") != "k0" {
		t.Errorf("--json page: got %+v, %v; want k0, truncated, next_after k1", page, err)
	}
	page = jsonPage{}
	out = k.must("", "--json", "list", "--at", now, "--limit", "2", "--all")
	if err := json.Unmarshal([]byte(out), &page); err != nil || page.Truncated || page.NextAfter != "" || len(page.Keys) != 7 {
		t.Errorf("--json --all: got %+v, %v; want all 7 keys of then", page, err)
	}
}

func TestWatch_PrintsEachWriteOfAKeyOrPrefix(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	k.must("", "put", "--create", "cfg/a", "one")
	k.must("", "put", "cfg/b", `{"x":1}`, "--content-type", "application/json")
	k.must("", "del", "cfg/a")
	out := k.must("", "watch", "cfg/", "--from-op", "0", "--count", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "1\t") || !strings.HasSuffix(lines[0], "\tset\tcfg/a\t\"one\"") ||
		!strings.HasSuffix(lines[1], "\tset\tcfg/b\t\"{\\\"x\\\":1}\"") || !strings.HasSuffix(lines[2], "\tdelete\tcfg/a\t-") {
		t.Fatalf("got %q", out)
	}
	// A watch follows until --count or an interrupt; a --timeout given
	// still bounds it. Without --from-op it starts from now: none of the
	// writes before.
	start := time.Now()
	r := k.run("", "watch", "cfg/", "--timeout", "300ms")
	if r.code != exitFailure || time.Since(start) > 5*time.Second || r.stdout != "" || r.stderr != "kvctl: gave up after 300ms (--timeout)\n" {
		t.Fatalf("watch with --timeout 300ms: exit %d after %v, stdout %q, stderr %q; want nothing printed, and the time given up after", r.code, time.Since(start), r.stdout, r.stderr)
	}
	out = k.must("", "--json", "watch", "cfg/b", "--from-op", "0", "--count", "1")
	if !strings.Contains(out, `"event":"set"`) || !strings.Contains(out, `"value":{"x":1}`) || !strings.Contains(out, `"op_number":2`) {
		t.Fatalf("--json: got %q", out)
	}
}
