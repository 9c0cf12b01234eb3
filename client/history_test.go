package client_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

// writeTimeline writes doc at t0 (JSON), t0+10s (text), t0+20s (without
// history) and deletes it at t0+30s.
func writeTimeline(t *testing.T) (*client.Client, time.Time) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	t0 := clock.Now()
	steps := []func() error{
		func() error { _, err := c.PutJSON(ctx, "doc", map[string]int{"v": 1}); return err },
		func() error { _, err := c.Put(ctx, "doc", client.Text("two")); return err },
		func() error { _, err := c.Put(ctx, "doc", client.Text("secret"), client.NoHistory()); return err },
		func() error { return c.Delete(ctx, "doc") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
	}
	return c, t0
}

func TestHistory_NewestFirstWithValuesAndGaps(t *testing.T) {
	c, t0 := writeTimeline(t)
	ops, err := c.History(testContext(t), "doc")
	if err != nil {
		t.Fatal(err)
	}
	type op struct {
		name     string
		old, new string
		unrec    bool
		at       time.Time
	}
	want := []op{
		{"delete", "", "", false, t0.Add(30 * time.Second)},
		{"set", "two", "", true, t0.Add(20 * time.Second)},
		{"set", `{"v":1}`, "two", false, t0.Add(10 * time.Second)},
		{"set", "", `{"v":1}`, false, t0},
	}
	if len(ops) != len(want) {
		t.Fatalf("got %d operations %+v, want %d", len(ops), ops, len(want))
	}
	for i, w := range want {
		got := op{ops[i].Op, string(ops[i].OldValue), string(ops[i].NewValue), ops[i].Unrecorded, ops[i].Time}
		if got.name != w.name || got.old != w.old || got.new != w.new || got.unrec != w.unrec || !got.at.Equal(w.at) {
			t.Errorf("operation %d: got %+v, want %+v", i, got, w)
		}
		if i > 0 && ops[i].OpNumber >= ops[i-1].OpNumber {
			t.Errorf("operation %d: op numbers not newest first: %d after %d", i, ops[i].OpNumber, ops[i-1].OpNumber)
		}
	}
	first, err := c.KeySnapshot(testContext(t), "doc", ops[3].OpNumber)
	if err != nil || first.String() != `{"v":1}` || !first.IsJSON() {
		t.Errorf("snapshot after the first write: got %+v, %v", first, err)
	}
	if _, err := c.History(testContext(t), "never"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Errorf("history of a key never written: got %v, want KEY_NOT_FOUND", err)
	}
	if ops, err := c.History(testContext(t), "doc", client.Limit(1)); err != nil || len(ops) != 1 {
		t.Errorf("limit 1: got %d operations, %v", len(ops), err)
	}
}

func TestGetAt_TimeTravel(t *testing.T) {
	c, t0 := writeTimeline(t)
	ctx := testContext(t)
	cases := []struct {
		at      time.Time
		want    string
		wantErr error
	}{
		{t0.Add(-time.Second), "", client.ErrKeyNotFound},
		{t0, `{"v":1}`, nil}, // a whole second: its end, after the write at t0
		{t0.Add(9999 * time.Millisecond), `{"v":1}`, nil},
		{t0.Add(10 * time.Second), "two", nil},
		{t0.Add(25 * time.Second), "", client.ErrTimeTravelGap},
		{t0.Add(35 * time.Second), "", client.ErrKeyNotFound},
	}
	for _, tc := range cases {
		e, err := c.Get(ctx, "doc", client.At(tc.at))
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("at %v: got %v, want %v", tc.at, err, tc.wantErr)
			}
			continue
		}
		if err != nil || e.String() != tc.want {
			t.Errorf("at %v: got %v, %v; want %s", tc.at, e, err, tc.want)
		}
	}
}

func TestTableSnapshotAndDiff(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	t0 := clock.Now()
	if _, err := c.BatchSet(ctx, []client.Item{
		{Key: "cfg/a", Value: client.Text("1")}, {Key: "cfg/b", Value: client.Binary([]byte{0, 1, 2})}, {Key: "other", Value: client.RawJSON([]byte(`[1]`))},
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if _, err := c.Put(ctx, "cfg/a", client.Text("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "cfg/c", client.Text("new")); err != nil {
		t.Fatal(err)
	}
	snap, err := c.TableSnapshot(ctx, t0, client.Prefix("cfg/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Entries) != 2 || !slices.Equal(snap.BinaryKeys, []string{"cfg/b"}) || !snap.Time.Equal(t0.Add(999*time.Millisecond)) {
		t.Errorf("snapshot: got %+v, want cfg/a and binary cfg/b at the end of t0", snap)
	}
	if a, _ := snap.Bytes("cfg/a"); string(a) != "1" {
		t.Errorf("cfg/a then: got %q, want 1", a)
	}
	if b, _ := snap.Bytes("cfg/b"); !bytes.Equal(b, []byte{0, 1, 2}) {
		t.Errorf("cfg/b then: got %v, want 0 1 2", b)
	}
	d, err := c.Diff(ctx, t0, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d.Created != 1 || d.Modified != 1 || d.Deleted != 0 || len(d.Changes) != 2 {
		t.Errorf("diff: got %+v, want cfg/c created and cfg/a modified", d)
	}
	d, err = c.Diff(ctx, t0, clock.Now(), client.Keys("cfg/a"))
	if err != nil || len(d.Changes) != 1 || d.Changes[0].Key != "cfg/a" || string(d.Changes[0].OldValue) != `"1"` || string(d.Changes[0].NewValue) != `"2"` {
		t.Errorf("diff of cfg/a: got %+v, %v", d, err)
	}
	if _, err := c.Diff(ctx, t0, clock.Now(), client.Keys("a,b")); err == nil {
		t.Error("a key with a comma: want a client-side error")
	}
}

// A diff marks a binary value's base64 (OldEncoding, NewEncoding), so
// that OldBytes and NewBytes give back the bytes: the binary \x00\xff and
// the text AP8= (its base64) are not the same value.
func TestDiff_BinaryValuesAreMarkedAndBytesRecovered(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	if _, err := c.BatchSet(ctx, []client.Item{{Key: "changed", Value: client.Binary([]byte{2})}, {Key: "gone", Value: client.Text("bye")}}); err != nil {
		t.Fatal(err)
	}
	t0 := clock.Now()
	clock.Advance(10 * time.Second)
	if err := c.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchSet(ctx, []client.Item{
		{Key: "bin2", Value: client.Binary([]byte{0x00, 0xff})}, {Key: "txt2", Value: client.Text("AP8=")},
		{Key: "changed", Value: client.RawJSON([]byte(`{"a":1}`))}, {Key: "null", Value: client.RawJSON([]byte(`null`))},
	}); err != nil {
		t.Fatal(err)
	}
	d, err := c.Diff(ctx, t0, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	type side struct {
		encoding string
		data     string
		there    bool
	}
	want := map[string][2]side{ // old, new
		"bin2":    {{}, {"base64", "\x00\xff", true}},
		"txt2":    {{}, {"", "AP8=", true}},
		"changed": {{"base64", "\x02", true}, {"", `{"a":1}`, true}},
		"null":    {{}, {"", "null", true}},
		"gone":    {{"", "bye", true}, {}},
	}
	if len(d.Changes) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(d.Changes), len(want), d.Changes)
	}
	for _, ch := range d.Changes {
		oldData, oldThere := ch.OldBytes()
		newData, newThere := ch.NewBytes()
		got := [2]side{{ch.OldEncoding, string(oldData), oldThere}, {ch.NewEncoding, string(newData), newThere}}
		if got != want[ch.Key] {
			t.Errorf("%s: got %+v, want %+v", ch.Key, got, want[ch.Key])
		}
	}
}

func TestRollbackKey_UndoesWrites(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	for _, v := range []string{"1", "2", "3"} {
		if _, err := c.Put(ctx, "k", client.Text(v)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := c.RollbackKey(ctx, "k", 1)
	if err != nil || v == nil || v.String() != "2" {
		t.Fatalf("rollback 1: got %v, %v; want 2", v, err)
	}
	if e, _ := c.Get(ctx, "k"); e == nil || e.String() != "2" {
		t.Errorf("after rollback: got %v, want 2", e)
	}
	if v, err := c.RollbackKey(ctx, "k", 10); err == nil && v != nil {
		t.Errorf("rollback past the first write: got %v, want the key gone or an error", v)
	}
}

func TestRollbackTable_DryRunConfirmAndGaps(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	if _, err := c.Put(ctx, "x", client.Text("1")); err != nil {
		t.Fatal(err)
	}
	t1 := clock.Now()
	clock.Advance(10 * time.Second)
	for _, k := range []string{"x", "y", "z"} {
		if _, err := c.Put(ctx, k, client.Text("later")); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := c.RollbackTable(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.DryRun || len(plan.Changes) != 3 || plan.Message == "" {
		t.Errorf("plan: got %+v, want a dry run of 3 changes", plan)
	}
	if plan, err := c.RollbackTable(ctx, t1, client.Confirm(), client.DryRun()); err != nil || !plan.DryRun {
		t.Errorf("confirm with dry run: got %+v, %v; want a dry run", plan, err)
	}
	if e, _ := c.Get(ctx, "y"); e == nil {
		t.Error("a dry run wrote")
	}
	plan, err = c.RollbackTable(ctx, t1, client.ExcludeKeys("z"), client.Confirm())
	if err != nil {
		t.Fatal(err)
	}
	want := []client.RollbackChange{{Key: "x", Action: "restore"}, {Key: "y", Action: "delete"}}
	if plan.DryRun || !slices.Equal(plan.Changes, want) {
		t.Errorf("applied: got %+v, want %+v", plan, want)
	}
	if e, _ := c.Get(ctx, "x"); e == nil || e.String() != "1" {
		t.Errorf("x after rollback: got %v, want 1", e)
	}
	if ok, _ := c.Exists(ctx, "z"); !ok {
		t.Error("z was excluded but rolled back")
	}
	// A write without history leaves a gap: nothing is written, the keys are named.
	if _, err := c.Put(ctx, "x", client.Text("blind"), client.NoHistory()); err != nil {
		t.Fatal(err)
	}
	_, err = c.RollbackTable(ctx, clock.Now(), client.Keys("x"), client.Confirm())
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, client.ErrTimeTravelGap) || !slices.Equal(e.Keys, []string{"x"}) {
		t.Errorf("rollback over a gap: got %v (%+v), want TIME_TRAVEL_GAP naming x", err, e)
	}
}

// Keys spread from an empty slice must not reach kvd as "no key list",
// which kvd reads as every key: the whole table would be rolled back.
func TestKeys_EmptyIsRefusedNotTheWholeTable(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	if _, err := c.Put(ctx, "x", client.Text("1")); err != nil {
		t.Fatal(err)
	}
	t1 := clock.Now()
	clock.Advance(10 * time.Second)
	for _, k := range []string{"x", "y"} {
		if _, err := c.Put(ctx, k, client.Text("later")); err != nil {
			t.Fatal(err)
		}
	}
	var selected []string // e.g. a filter that matched nothing
	if plan, err := c.RollbackTable(ctx, t1, client.Keys(selected...), client.Confirm()); err == nil {
		t.Errorf("rollback of Keys(): got plan %+v, want a client-side error", plan)
	}
	for _, k := range []string{"x", "y"} {
		if e, err := c.Get(ctx, k); err != nil || e.String() != "later" {
			t.Errorf("%s after a refused rollback: got %v, %v; want later", k, e, err)
		}
	}
	if d, err := c.Diff(ctx, t1, clock.Now(), client.Keys(selected...)); err == nil {
		t.Errorf("diff of Keys(): got %+v, want a client-side error", d)
	}
}

func TestTableSnapshotAndDiff_PageByKeyWithAfter(t *testing.T) {
	c, t0, t1 := pagedTable(t)
	ctx := testContext(t)
	entries := map[string]string{}
	var nexts []string
	after := []client.Option{}
	for page := 0; ; page++ {
		if page == 5 {
			t.Fatalf("snapshot: still paging after %d pages: %q", page, nexts)
		}
		snap, err := c.TableSnapshot(ctx, t0, append([]client.Option{client.Prefix("k"), client.Limit(3)}, after...)...)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Entries) > 3 {
			t.Errorf("snapshot page %d: got %d entries, want at most 3", page, len(snap.Entries))
		}
		for k := range snap.Entries {
			v, _ := snap.Bytes(k)
			entries[k] = string(v)
		}
		if snap.NextAfter == "" {
			break
		}
		nexts = append(nexts, snap.NextAfter)
		after = []client.Option{client.After(snap.NextAfter)}
	}
	if len(entries) != 7 || entries["k0"] != "v0" || entries["k6"] != "v0" {
		t.Errorf("snapshot over every page: got %v, want k0..k6 = v0", entries)
	}
	if want := []string{"k2", "k5"}; !slices.Equal(nexts, want) {
		t.Errorf("snapshot next_after: got %q, want %q", nexts, want)
	}

	var changes []string
	nexts, after = nil, nil
	for page := 0; ; page++ {
		if page == 5 {
			t.Fatalf("diff: still paging after %d pages: %q", page, nexts)
		}
		d, err := c.Diff(ctx, t0, t1, append([]client.Option{client.Prefix("k"), client.Limit(3)}, after...)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range d.Changes {
			changes = append(changes, ch.Key+" "+ch.Change)
		}
		if d.Truncated != (d.NextAfter != "") {
			t.Errorf("diff page %d: Truncated %v with NextAfter %q", page, d.Truncated, d.NextAfter)
		}
		if d.NextAfter == "" {
			break
		}
		nexts = append(nexts, d.NextAfter)
		after = []client.Option{client.After(d.NextAfter)}
	}
	if want := []string{"k2 deleted", "k5 modified", "k7 created"}; !slices.Equal(changes, want) {
		t.Errorf("diff over every page: got %q, want %q", changes, want)
	}
	if want := []string{"k2", "k5"}; !slices.Equal(nexts, want) {
		t.Errorf("diff next_after: got %q, want %q", nexts, want)
	}
	// kvd compares exactly the keys named and would drop a page quietly.
	if _, err := c.Diff(ctx, t0, t1, client.Keys("k1"), client.Limit(3)); !errors.As(err, new(*client.ArgumentError)) {
		t.Errorf("Keys with Limit: got %v, want an *ArgumentError", err)
	}
}

// A stored JSON null is a value, the text null, wherever a JSON answer
// carries it; only a missing value is nil.
func TestJSONNull_IsAValueEverywhere(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	if _, err := c.Put(ctx, "n", client.Value{Data: []byte("null"), ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	at := clock.Now()
	clock.Advance(time.Second)
	values, err := c.BatchGet(ctx, []string{"n"})
	if err != nil || values["n"] == nil || string(values["n"].Data) != "null" {
		t.Fatalf("batch get: %+v, %v", values["n"], err)
	}
	ops, err := c.History(ctx, "n")
	if err != nil || len(ops) != 1 || string(ops[0].NewValue) != "null" || ops[0].OldValue != nil {
		t.Fatalf("history: %+v, %v", ops, err)
	}
	snap, err := c.KeySnapshot(ctx, "n", ops[0].OpNumber)
	if err != nil || string(snap.Data) != "null" {
		t.Fatalf("key snapshot: %+v, %v", snap, err)
	}
	table, err := c.TableSnapshot(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if data, ok := table.Bytes("n"); !ok || string(data) != "null" {
		t.Fatalf("table snapshot: %q, %v", data, ok)
	}
}
