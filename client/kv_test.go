package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

// allBytes is a value no text encoding survives.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestPutGet_RoundTripsBytesAndContentType(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	cases := []struct {
		name   string
		value  client.Value
		wantCT string
	}{
		{"text", client.Text("hello"), "text/plain"},
		{"json", client.RawJSON([]byte(`{"a": [1, 2]}`)), "application/json"},
		{"binary", client.Binary(allBytes()), "application/octet-stream"},
		{"inferred json", client.Value{Data: []byte(`[1,2]`)}, "application/json"},
		{"inferred text", client.Value{Data: []byte("plain words")}, "text/plain"},
		{"inferred binary", client.Value{Data: []byte{0xff, 0x00, 0xfe}}, "application/octet-stream"},
		{"empty", client.Value{}, "text/plain"},
		{"own type", client.Value{Data: []byte("<p>hi</p>"), ContentType: "text/html; charset=utf-8"}, "text/html; charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Put(ctx, tc.name, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Created || res.Key != tc.name || res.Version <= 0 {
				t.Errorf("put: got %+v, want created key %q with a version", res, tc.name)
			}
			e, err := c.Get(ctx, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.Data, tc.value.Data) {
				t.Errorf("value: got %q, want %q", e.Data, tc.value.Data)
			}
			if e.ContentType != tc.wantCT {
				t.Errorf("content type: got %q, want %q", e.ContentType, tc.wantCT)
			}
			if e.Version != res.Version || e.CreatedAt.IsZero() || e.UpdatedAt.IsZero() || !e.ExpiresAt.IsZero() {
				t.Errorf("metadata: got %+v, want version %d, times set, no expiry", e, res.Version)
			}
		})
	}
}

func TestPut_OverwriteReportsNotCreatedAndNewVersion(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	first, err := c.Put(ctx, "k", client.Text("1"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Put(ctx, "k", client.Text("2"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Version <= first.Version {
		t.Errorf("got %+v after %+v, want not created and a newer version", second, first)
	}
}

// Keys travel encodeURIComponent-style, so slashes, operation words and
// URL syntax inside a key all address the key itself.
func TestKeys_SlashesOperationWordsAndURLSyntaxAreKeys(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	keys := []string{
		"users/alice", "a/incr", "a/decr", "a/history", "a/snapshot", "a/rollback", "a/push", "a/pop", "a/remove",
		"incr", "batch/get", "batch/set", "batch/delete", "snapshots", "diff/x", "rollback/",
		"q?x=1&y=2#frag", "100% sure", "a+b c", "a%2Fb", "ünïcode/ключ/🔑", "semi;colon:at@", "dir/", "/lead", "tail//double", ".", "..", "a/../b", "./x",
	}
	for _, k := range keys {
		if _, err := c.Put(ctx, k, client.Text(k)); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
		got, err := c.Get(ctx, k)
		if err != nil || got.String() != k {
			t.Errorf("get %q: got %v, %v; want its own value", k, got, err)
		}
	}
	list, err := c.List(ctx, client.Limit(1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Keys) != len(keys) {
		t.Errorf("listed %d keys %q, want the %d written", len(list.Keys), list.Keys, len(keys))
	}
	// The names of table-level endpoints are no keys kvd creates; reading
	// one reaches the key, not the endpoint.
	for _, k := range []string{"snapshot", "diff", "rollback", "watch"} {
		if _, err := c.Put(ctx, k, client.Text("x")); !errors.Is(err, client.ErrInvalidParameters) {
			t.Errorf("put %q: got %v, want INVALID_PARAMETERS", k, err)
		}
		if _, err := c.Get(ctx, k); !errors.Is(err, client.ErrKeyNotFound) {
			t.Errorf("get %q: got %v, want KEY_NOT_FOUND", k, err)
		}
	}
	// The key "a/incr" is not a counter operation on "a".
	if _, err := c.Get(ctx, "a"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Errorf("get a: got %v, want KEY_NOT_FOUND", err)
	}
	n, err := c.Incr(ctx, "a/incr/incr", 5)
	if err != nil || n.Value != 5 || n.Key != "a/incr/incr" {
		t.Errorf("incr a/incr/incr: got %+v, %v; want 5", n, err)
	}
	if got, _ := c.Get(ctx, "a/incr"); got == nil || got.String() != "a/incr" {
		t.Errorf("a/incr after incr of a/incr/incr: got %v, want unchanged", got)
	}
}

func TestGet_MissingKeyExpiredAndDatabaseErrors(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	_, err := c.Get(ctx, "nope")
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, client.ErrKeyNotFound) || errors.Is(err, client.ErrKeyExpired) {
		t.Fatalf("got %v, want only KEY_NOT_FOUND", err)
	}
	if e.StatusCode != 404 || e.Message == "" || e.RequestID == "" || !client.IsNotFound(err) {
		t.Errorf("got %+v, want status 404, a message and a request id", e)
	}
	if _, err := c.Get(ctx, "k", client.DB("no_such_db")); !errors.Is(err, client.ErrDatabaseNotFound) {
		t.Errorf("missing db: got %v, want DATABASE_NOT_FOUND", err)
	}
	if _, err := c.Get(ctx, "k", client.DB("../etc/passwd")); !errors.Is(err, client.ErrInvalidDBPath) {
		t.Errorf("db outside: got %v, want INVALID_DB_PATH", err)
	}
	if _, err := c.Get(ctx, "k", client.Table("no-dashes")); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("bad table: got %v, want INVALID_PARAMETERS", err)
	}
	if _, err := c.Get(ctx, ""); err == nil {
		t.Error("empty key: want an error")
	}
}

func TestTTL_ExpiresAndReadsAsKeyExpired(t *testing.T) {
	c, clock := clockServer(t)
	ctx := testContext(t)
	if _, err := c.Put(ctx, "session", client.Text("token"), client.TTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, "session")
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(10 * time.Second); !e.ExpiresAt.Equal(want) {
		t.Errorf("expires at %v, want %v", e.ExpiresAt, want)
	}
	clock.Advance(11 * time.Second)
	if ok, err := c.Exists(ctx, "session"); ok || err != nil {
		t.Errorf("exists after expiry: got %v, %v; want false", ok, err)
	}
	if _, err := c.Put(ctx, "s2", client.Text("x"), client.TTL(1500*time.Millisecond)); err == nil {
		t.Error("ttl of 1.5s: want a client-side error")
	}
	if _, err := c.Put(ctx, "s3", client.Text("x"), client.TTL(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Second)
	if _, err := c.Get(ctx, "s3"); !errors.Is(err, client.ErrKeyExpired) || !client.IsNotFound(err) {
		t.Errorf("get after expiry: got %v, want KEY_EXPIRED", err)
	}
}

func TestHeadExists_MetadataWithoutValue(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	put, err := c.PutJSON(ctx, "doc", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Head(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	if e.Data != nil || e.ContentType != "application/json" || e.Version != put.Version {
		t.Errorf("head: got %+v, want no data, JSON, version %d", e, put.Version)
	}
	if ok, err := c.Exists(ctx, "doc"); !ok || err != nil {
		t.Errorf("exists doc: got %v, %v", ok, err)
	}
	if ok, err := c.Exists(ctx, "nope"); ok || err != nil {
		t.Errorf("exists nope: got %v, %v; want false", ok, err)
	}
	if ok, err := c.Exists(ctx, "doc", client.DB("no_such_db")); ok || err != nil {
		t.Errorf("exists in a missing db: got %v, %v; want false", ok, err)
	}
	_, err = c.Head(ctx, "nope")
	if !client.IsNotFound(err) {
		t.Errorf("head nope: got %v, want a not-found error", err)
	}
	// A HEAD answer has no body: the status survives, the code cannot.
	var bad *client.Error
	if _, err := c.Exists(ctx, "doc", client.DB("../x")); !errors.As(err, &bad) || bad.StatusCode != 400 {
		t.Errorf("exists with a bad db: got %v, want a 400 error", err)
	}
}

func TestCAS_ValueVersionAndAbsent(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	if _, err := c.Put(ctx, "k", client.Text("old"), client.IfMatch([]byte("old"))); !errors.Is(err, client.ErrCASKeyMissing) {
		t.Errorf("if_match on a missing key: got %v, want CAS_KEY_MISSING", err)
	}
	if _, err := c.Put(ctx, "k", client.Text("old"), client.IfAbsent()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "k", client.Text("again"), client.IfAbsent()); !errors.Is(err, client.ErrCASMismatch) {
		t.Errorf("if absent on an existing key: got %v, want CAS_MISMATCH", err)
	}
	if _, err := c.Put(ctx, "k", client.Text("new"), client.IfMatch([]byte("wrong"))); !errors.Is(err, client.ErrCASMismatch) {
		t.Errorf("if_match wrong: got %v, want CAS_MISMATCH", err)
	}
	res, err := c.Put(ctx, "k", client.Text("new"), client.IfMatch([]byte("old")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "k", client.Text("x"), client.IfVersion(res.Version-1)); !errors.Is(err, client.ErrCASMismatch) {
		t.Errorf("stale version: got %v, want CAS_MISMATCH", err)
	}
	if _, err := c.Put(ctx, "k", client.Text("newer"), client.IfVersion(res.Version)); err != nil {
		t.Errorf("current version: %v", err)
	}
	// Binary CAS: the compared bytes travel percent-encoded in the query.
	bin := allBytes()
	if _, err := c.Put(ctx, "bin", client.Binary(bin)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "bin", client.Text("swapped"), client.IfMatch(bin)); err != nil {
		t.Errorf("binary if_match: %v", err)
	}
}

func TestPath_GetPutAndIncrInsideJSON(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	if _, err := c.PutJSON(ctx, "user", map[string]any{"prefs": map[string]string{"theme": "dark"}, "visits": 1}); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, "user", client.Path("prefs.theme"))
	if err != nil || e.String() != `"dark"` || !e.IsJSON() {
		t.Fatalf("get prefs.theme: got %v, %v; want \"dark\" as JSON", e, err)
	}
	if _, err := c.Put(ctx, "user", client.RawJSON([]byte(`"light"`)), client.Path("prefs.theme"), client.IfMatch([]byte("dark"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Incr(ctx, "user", 2, client.Path("visits")); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Prefs  map[string]string
		Visits int
	}
	if _, err := c.GetJSON(ctx, "user", &got); err != nil {
		t.Fatal(err)
	}
	if got.Prefs["theme"] != "light" || got.Visits != 3 {
		t.Errorf("got %+v, want theme light and 3 visits", got)
	}
	if _, err := c.Get(ctx, "user", client.Path("prefs.missing")); !errors.Is(err, client.ErrPathNotFound) {
		t.Errorf("missing path: got %v, want PATH_NOT_FOUND", err)
	}
}

func TestIncrDecr_CountsFromZeroAndRefusesBadInput(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	n, err := c.Incr(ctx, "views", 1)
	if err != nil || n.Value != 1 || n.Previous != 0 {
		t.Fatalf("incr: got %+v, %v; want 1 from 0", n, err)
	}
	if n, err = c.Incr(ctx, "views", 10); err != nil || n.Value != 11 {
		t.Errorf("incr 10: got %+v, %v; want 11", n, err)
	}
	if n, err = c.Decr(ctx, "views", 3); err != nil || n.Value != 8 || n.Previous != 11 {
		t.Errorf("decr 3: got %+v, %v; want 8 from 11", n, err)
	}
	if _, err := c.Incr(ctx, "views", 0); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("delta 0: got %v, want INVALID_PARAMETERS", err)
	}
	if _, err := c.Put(ctx, "word", client.Text("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Incr(ctx, "word", 1); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("incr of text: got %v, want INVALID_PARAMETERS", err)
	}
	fresh := client.DB(fmt.Sprintf("fresh_%d", dbSerial.Add(1)))
	if _, err := c.Incr(ctx, "k", 1, fresh); !errors.Is(err, client.ErrDatabaseNotFound) {
		t.Errorf("incr in a missing db: got %v, want DATABASE_NOT_FOUND", err)
	}
	if n, err := c.Incr(ctx, "k", 1, fresh, client.CreateIfMissing()); err != nil || n.Value != 1 {
		t.Errorf("incr creating the db: got %+v, %v", n, err)
	}
}

func TestDelete_RemovesOnceThenKeyNotFound(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	res, err := c.Put(ctx, "k", client.Text("v"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "k", client.IfVersion(res.Version+1)); !errors.Is(err, client.ErrCASMismatch) {
		t.Errorf("delete with a wrong version: got %v, want CAS_MISMATCH", err)
	}
	if err := c.Delete(ctx, "k", client.IfVersion(res.Version)); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "k"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Errorf("second delete: got %v, want KEY_NOT_FOUND", err)
	}
}

func TestRef_ReadsFollowTheTarget(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	if _, err := c.Put(ctx, "config/v2", client.Text("two")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "config/current", client.Text("config/v2"), client.Ref()); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, "config/current")
	if err != nil {
		t.Fatal(err)
	}
	if e.String() != "two" || !e.Reference || e.ReferenceTarget != "config/v2" {
		t.Errorf("got %+v, want the value of config/v2 marked as a reference to it", e)
	}
	if err := c.Delete(ctx, "config/current"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Exists(ctx, "config/v2"); !ok {
		t.Error("deleting the reference removed its target")
	}
}

func TestOptions_RefusedWhereTheEndpointDoesNotTakeThem(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	_, err := c.Get(ctx, "k", client.TTL(time.Minute))
	if err == nil || errors.As(err, new(*client.Error)) {
		t.Fatalf("get with a TTL: got %v, want a client-side error", err)
	}
	if _, err := c.Put(ctx, "k", client.Text("v"), client.Option{}); err == nil {
		t.Error("zero Option: want an error")
	}
	if _, err := c.Put(ctx, "k", client.Text("v"), client.IfVersion(0)); err == nil {
		t.Error("version 0: want an error")
	}
}
