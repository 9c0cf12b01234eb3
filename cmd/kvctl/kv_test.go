package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client/clienttest"
)

func TestPutGet_ValueFromArgumentFileAndStdin(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	binary := "\xff\x00\x01binary\n"
	file := filepath.Join(t.TempDir(), "value.bin")
	if err := os.WriteFile(file, []byte(binary), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := k.must("", "put", "--create", "arg", "from argument"); out != "created\n" {
		t.Errorf("put: got %q, want created", out)
	}
	k.must("", "put", "file", "--file", file)
	k.must(binary, "put", "stdin")
	k.must(binary, "put", "dash", "-")
	k.must(binary, "put", "file-dash", "--file", "-")
	want := map[string]string{"arg": "from argument", "file": binary, "stdin": binary, "dash": binary, "file-dash": binary}
	for key, value := range want {
		if got := k.must("", "get", key); got != value {
			t.Errorf("get %s: got %q, want %q", key, got, value)
		}
	}
	if out := k.must("", "put", "arg", "again"); out != "updated\n" {
		t.Errorf("second put: got %q, want updated", out)
	}
}

func TestPut_FlagsReachKvd(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	k.must("", "put", "--create", "doc", `{"prefs":{"theme":"dark"}}`)
	k.must("", "put", "doc", `"light"`, "--path", "prefs.theme", "--if-match", "dark")
	if got := k.must("", "get", "doc", "--path", "prefs.theme"); got != `"light"` {
		t.Errorf("theme: got %s, want \"light\"", got)
	}
	k.must("", "put", "html", "<p>", "--content-type", "text/html")
	k.must("", "put", "session", "tok", "--ttl", "1h")
	k.must("", "put", "current", "doc", "--ref")
	var got struct {
		ContentType     string `json:"content_type"`
		ExpiresAt       int64  `json:"expires_at"`
		Reference       bool   `json:"reference"`
		ReferenceTarget string `json:"reference_target"`
		Version         int64  `json:"version"`
	}
	for key, check := range map[string]func() bool{
		"html":    func() bool { return got.ContentType == "text/html" },
		"session": func() bool { return got.ExpiresAt > time.Now().Unix() },
		"current": func() bool { return got.Reference && got.ReferenceTarget == "doc" },
	} {
		got.ContentType, got.ExpiresAt, got.Reference, got.ReferenceTarget = "", 0, false, ""
		if err := json.Unmarshal([]byte(k.must("", "--json", "get", key)), &got); err != nil || !check() {
			t.Errorf("%s: got %+v, %v", key, got, err)
		}
	}
	if r := k.run("", "put", "session", "x", "--if-absent"); r.code != exitFailure || !strings.Contains(r.stderr, "CAS_MISMATCH") {
		t.Errorf("if-absent on an existing key: got %+v, want exit 3 CAS_MISMATCH", r)
	}
	if err := json.Unmarshal([]byte(k.must("", "--json", "get", "html")), &got); err != nil {
		t.Fatal(err)
	}
	version := strconv.FormatInt(got.Version, 10)
	k.must("", "put", "html", "<i>", "--if-version", version, "--no-history")
	if r := k.run("", "del", "html", "--if-version", version); r.code != exitFailure {
		t.Errorf("delete with a stale version: got %+v, want exit 3", r)
	}
}

func TestDelExists_ExitOneWhenMissing(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	k.must("", "put", "--create", "k", "v")
	if out := k.must("", "exists", "k"); out != "true\n" {
		t.Errorf("exists: got %q", out)
	}
	if out := k.must("", "del", "k"); out != "deleted\n" {
		t.Errorf("del: got %q", out)
	}
	r := k.run("", "exists", "k")
	if r.code != exitNotFound || r.stdout != "false\n" || r.stderr != "" {
		t.Errorf("exists after del: got %+v, want exit 1, false, no message", r)
	}
	if r := k.run("", "del", "k"); r.code != exitNotFound || !strings.Contains(r.stderr, "KEY_NOT_FOUND") {
		t.Errorf("second del: got %+v, want exit 1 KEY_NOT_FOUND", r)
	}
	if r := k.run("", "--json", "exists", "k"); r.code != exitNotFound || r.stdout != `{"exists":false,"key":"k"}`+"\n" {
		t.Errorf("exists --json: got %+v", r)
	}
}

func TestIncrDecr_PrintTheNewValue(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"incr", "--create", "hits/incr"}, "1\n"},
		{[]string{"incr", "hits/incr", "10"}, "11\n"},
		{[]string{"decr", "hits/incr", "2"}, "9\n"},
		{[]string{"--json", "incr", "hits/incr"}, `{"key":"hits/incr","value":10,"previous":9}` + "\n"},
	} {
		if got := k.must("", step.args...); got != step.want {
			t.Errorf("kvctl %q: got %q, want %q", step.args, got, step.want)
		}
	}
	if got := k.must("", "list"); got != "hits/incr\n" {
		t.Errorf("keys: got %q, want only hits/incr", got)
	}
}

func TestGet_AtTimeAndJSONMetadata(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "k", "one")
	clock.Advance(10 * time.Second)
	k.must("", "put", "k", "two")
	clock.Advance(500 * time.Millisecond)
	k.must("", "put", "k", "three")
	cases := map[string]string{"1700000000": "one", "1700000009.999": "one", "2023-11-14T22:13:30Z": "three", "1700000010.0": "two",
		"2023-11-14T22:13:30.000Z": "two", "2023-11-14T22:13:30.0+00:00": "two", "2023-11-14T22:13:30.5Z": "three"} // a fraction names the instant, as in Unix seconds
	for at, want := range cases {
		if got := k.must("", "get", "k", "--at", at); got != want {
			t.Errorf("--at %s: got %q, want %q", at, got, want)
		}
	}
	var meta map[string]any
	if err := json.Unmarshal([]byte(k.must("", "get", "k", "--json")), &meta); err != nil {
		t.Fatal(err)
	}
	if meta["value"] != "three" || meta["content_type"] != "text/plain" || meta["version"] != 3.0 || meta["updated_at"] != 1_700_000_010.0 {
		t.Errorf("get --json: got %v", meta)
	}
}
