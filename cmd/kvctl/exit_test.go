package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client/clienttest"
)

func TestExitCodes_NotFoundUsageAndOtherErrors(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "doc", `{"a":1}`)
	k.must("", "put", "session", "x", "--ttl", "5")
	clock.Advance(10 * time.Second)
	emptyKeyFile := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(emptyKeyFile, []byte(`["a", ""]`), 0o600); err != nil {
		t.Fatal(err)
	}
	hugeTTLFile := filepath.Join(t.TempDir(), "items.json")
	if err := os.WriteFile(hugeTTLFile, []byte(`{"key":"bb","value":"v","ttl":36028797018963968}`), 0o600); err != nil {
		t.Fatal(err) // wrapped around to 0: no expiry at all
	}
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"missing key", []string{"get", "nope"}, exitNotFound, "KEY_NOT_FOUND"},
		{"expired key", []string{"get", "session"}, exitNotFound, "KEY_EXPIRED"},
		{"missing path", []string{"get", "doc", "--path", "b"}, exitNotFound, "PATH_NOT_FOUND"},
		{"missing database", []string{"get", "doc", "--db", "other"}, exitNotFound, "DATABASE_NOT_FOUND"},
		{"history of a missing key", []string{"history", "nope"}, exitNotFound, "KEY_NOT_FOUND"},
		{"bad database path", []string{"get", "doc", "--db", "../x"}, exitFailure, "INVALID_DB_PATH"},
		{"bad table", []string{"get", "doc", "--table", "a-b"}, exitFailure, "INVALID_PARAMETERS"},
		{"cas mismatch", []string{"put", "doc", "2", "--if-match", "3"}, exitFailure, "CAS_MISMATCH"},
		{"incr of JSON object", []string{"incr", "doc"}, exitFailure, "INVALID_PARAMETERS"},
		{"no command", nil, exitUsage, "no command"},
		{"unknown command", []string{"fetch", "k"}, exitUsage, "unknown command"},
		{"batch without verb", []string{"batch"}, exitUsage, "get, set or del"},
		{"missing key argument", []string{"get"}, exitUsage, "usage: kvctl get"},
		{"too many arguments", []string{"del", "a", "b"}, exitUsage, "usage: kvctl del"},
		{"unknown flag", []string{"get", "k", "--colour"}, exitUsage, "colour"},
		{"bad ttl", []string{"put", "k", "v", "--ttl", "1.5s"}, exitUsage, "ttl"},
		{"ttl past a Duration", []string{"put", "k", "v", "--ttl", "36028797018964028"}, exitUsage, "at most"}, // wrapped around to 60 s
		{"empty path", []string{"put", "doc", "1", "--path", ""}, exitFailure, "JSON path must not be empty"},  // dropped, it replaced the whole value
		{"bad time", []string{"get", "k", "--at", "yesterday"}, exitUsage, "at"},
		{"bad delta", []string{"incr", "k", "-1"}, exitUsage, ""},
		{"zero delta", []string{"incr", "k", "0"}, exitUsage, "DELTA"},
		{"value and file", []string{"put", "k", "v", "--file", "f"}, exitUsage, "not both"},
		{"missing file", []string{"put", "k", "--file", "/nonexistent/f"}, exitUsage, "no such file"},
		{"list --at with --offset", []string{"list", "--at", "1", "--offset", "2"}, exitUsage, "--offset"},
		{"negative version", []string{"put", "k", "v", "--if-version", "-1"}, exitUsage, "version must be positive"},
		{"negative version on del", []string{"del", "k", "--if-version", "-1"}, exitUsage, "version must be positive"},
		{"version 0", []string{"put", "k", "v", "--if-version", "0"}, exitUsage, "version must be positive"},
		{"absent and a version", []string{"put", "k", "v", "--if-version", "3", "--if-absent"}, exitUsage, "--if-absent"},
		{"absent and a value", []string{"put", "k", "v", "--if-match", "x", "--if-absent"}, exitUsage, "--if-absent"},
		{"version 0 on del", []string{"del", "k", "--if-version", "0"}, exitUsage, "version must be positive"},
		{"empty key", []string{"get", ""}, exitUsage, "key must not be empty"},
		{"snapshot of nothing", []string{"snapshot", "k"}, exitUsage, "--op N"},
		{"snapshot --op and --at", []string{"snapshot", "k", "--op", "1", "--at", "1"}, exitUsage, "not both"},
		{"snapshot --op without key", []string{"snapshot", "--op", "1"}, exitUsage, "KEY --op N"},
		{"snapshot --op with --all", []string{"snapshot", "k", "--op", "1", "--all"}, exitUsage, "go with --at"},
		{"diff without --to", []string{"diff", "--from", "1"}, exitUsage, "--from and --to"},
		{"diff of keys and prefix", []string{"diff", "--from", "1", "--to", "2", "--keys", "a", "p"}, exitUsage, "not both"},
		{"diff of keys with a limit", []string{"diff", "--from", "1", "--to", "2", "--keys", "a", "--limit", "5"}, exitUsage, "limit"},
		{"diff backwards", []string{"diff", "--from", "2", "--to", "1"}, exitFailure, "INVALID_PARAMETERS"},
		{"rollback of nothing", []string{"rollback"}, exitUsage, "rollback KEY"},
		{"rollback of a key with --yes", []string{"rollback", "k", "--yes"}, exitUsage, "go with --to"},
		{"rollback --to with a key", []string{"rollback", "k", "--to", "1"}, exitUsage, "--keys"},
		{"rollback --to with --steps", []string{"rollback", "--to", "1", "--steps", "2"}, exitUsage, "--steps"},
		{"rollback of keys and all but keys", []string{"rollback", "--to", "1", "--keys", "a", "--exclude", "b"}, exitUsage, "not both"},
		{"rollback of no steps", []string{"rollback", "doc", "--steps", "0"}, exitFailure, "INVALID_PARAMETERS"},
		{"backup without file", []string{"backup"}, exitUsage, "usage: kvctl backup"},
		{"backup to an empty name", []string{"backup", ""}, exitUsage, "needs a FILE"},
		{"backup over a folder", []string{"backup", os.TempDir(), "--force"}, exitUsage, "is a folder"},
		{"empty key in a batch file", []string{"batch", "get", emptyKeyFile}, exitUsage, "must not be empty"},
		{"ttl past a Duration in a batch file", []string{"batch", "set", hugeTTLFile}, exitUsage, "at most"},
		// --timeout: were the number read as "from now" or "never", the watch would follow.
		{"watch from a negative op", []string{"watch", "k", "--from-op", "-5", "--timeout", "2s"}, exitUsage, "--from-op"},
		{"watch a negative count", []string{"watch", "cfg/", "--count", "-1", "--timeout", "2s"}, exitUsage, "--count"},
		{"completion of an unknown shell", []string{"completion", "tcsh"}, exitUsage, "bash, zsh or fish"},
		{"bad url", []string{"--url", "ftp://x", "get", "k"}, exitUsage, "url"},
		{"kvd not listening", []string{"--url", "http://127.0.0.1:1", "get", "k"}, exitFailure, "refused"},
	}
	for _, tc := range cases {
		r := k.run("", tc.args...)
		if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("%s: kvctl %q: exit %d, stderr %q; want exit %d mentioning %q", tc.name, tc.args, r.code, r.stderr, tc.wantCode, tc.wantErr)
		}
	}
}

func TestHelp_ExitsZeroWithUsage(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	if r := k.run("", "-h"); r.code != exitOK || r.stdout != usage {
		t.Errorf("-h: got exit %d, stdout %q", r.code, r.stdout)
	}
	if r := k.run("", "put", "-h"); r.code != exitOK || !strings.Contains(r.stdout, "--if-match") || strings.Contains(r.stdout, "--token ") {
		t.Errorf("put -h: got exit %d, stdout %q; want put's own flags", r.code, r.stdout)
	}
	// help as a command, and -h of batch itself, as a newcomer types them.
	for _, args := range [][]string{{"help"}, {"batch", "-h"}, {"batch", "--help"}} {
		if r := k.run("", args...); r.code != exitOK || r.stdout != usage {
			t.Errorf("kvctl %q: got exit %d, stdout %q, stderr %q; want the usage", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := k.run("", "help", "put"); r.code != exitOK || !strings.Contains(r.stdout, "--if-match") {
		t.Errorf("kvctl help put: got exit %d, stdout %q; want put's own flags", r.code, r.stdout)
	}
}

// kvctl -h lists every command of the table, each at the start of a line
// of its "Commands:" list.
func TestHelp_ListsEveryCommand(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	help := k.must("", "--help")
	_, list, _ := strings.Cut(help, "\nCommands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	for name := range commands {
		if !strings.Contains("\n"+list, "\n  "+name+" ") {
			t.Errorf("kvctl --help lists no %q under Commands:\n%s", name, list)
		}
	}
}

func TestJSONErrors_GoToStderrInKvdShape(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	r := k.run("", "--json", "get", "nope")
	if r.code != exitNotFound || r.stdout != "" || !strings.HasPrefix(r.stderr, `{"statusCode":404,"code":"DATABASE_NOT_FOUND","message":`) {
		t.Errorf("got %+v, want kvd's error JSON on stderr", r)
	}
	r = k.run("", "--json", "get")
	if r.code != exitUsage || !strings.Contains(r.stderr, `"code":"USAGE"`) {
		t.Errorf("usage error: got %+v", r)
	}
	r = k.run("", "--json", "put", "k", "v", "--if-version", "-1")
	if r.code != exitUsage || !strings.Contains(r.stderr, `"code":"USAGE"`) {
		t.Errorf("option the client refuses: got %+v, want exit 2 with code USAGE", r)
	}
}

// Flags go before or after the command and its operands; "--" lets a key
// start with a dash; the environment gives defaults that flags override.
func TestFlags_AnywhereAndFromTheEnvironment(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{Tokens: []string{"s3cret"}})
	k := &kvd{t: t, url: srv.URL, db: "app"}
	if r := k.run("", "put", "--create", "k", "v"); r.code != exitFailure || !strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Fatalf("without a token: got %+v, want exit 3 UNAUTHORIZED", r)
	}
	k.must("", "--token", "s3cret", "put", "--create", "k", "v")
	k.must("", "put", "k", "v2", "--token", "s3cret", "--table", "other", "--create")
	k.must("", "--token", "s3cret", "put", "--", "-dash", "v3")
	// A "--" that is a flag's value ends no flags: --no-history still counts.
	k.must("", "--token", "s3cret", "put", "--", "dashes", "--")
	k.must("", "--token", "s3cret", "put", "dashes", "--if-match", "--", "v4", "--no-history")
	if got := k.must("", "--token", "s3cret", "get", "dashes"); got != "v4" {
		t.Errorf("after put --if-match --: got %q, want v4", got)
	}
	getenv := envOf(map[string]string{"KVCTL_URL": srv.URL, "KVCTL_DB": "app", "KVCTL_TOKEN": "s3cret"})
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"get", "k"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK || stdout.String() != "v" {
		t.Errorf("from the environment: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run(t.Context(), []string{"get", "-dash", "--table", "kv_store"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitUsage {
		t.Errorf("a dash key without --: exit %d, want 2", code)
	}
	if code := run(t.Context(), []string{"get", "--", "-dash"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK || stdout.String() != "v3" {
		t.Errorf("get -- -dash: exit %d, stdout %q", code, stdout.String())
	}
	stdout.Reset()
	if code := run(t.Context(), []string{"--token", "wrong", "get", "k"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitFailure {
		t.Errorf("a --token overriding the environment: exit %d, want 3", code)
	}
	if code := run(t.Context(), []string{"get", "k", "--table", "other"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK || stdout.String() != "v2" {
		t.Errorf("--table after the key: exit %d, stdout %q", code, stdout.String())
	}
}

// run reads only the environment it is given: KVCTL_* in the test
// process (a developer's shell) must not steer it.
func TestRun_ReadsOnlyTheEnvironmentItIsGiven(t *testing.T) {
	srv := clienttest.New(t, clienttest.Options{})
	t.Setenv("KVCTL_URL", "http://127.0.0.1:1")
	t.Setenv("KVCTL_DB", "../outside")
	t.Setenv("KVCTL_TOKEN", "from-the-shell")
	getenv := envOf(map[string]string{"KVCTL_URL": srv.URL, "KVCTL_DB": "app"})
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"put", "--create", "k", "v"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("put: exit %d, stderr %q; want 0 with the given environment", code, stderr.String())
	}
	stdout.Reset()
	if code := run(t.Context(), []string{"get", "k"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK || stdout.String() != "v" {
		t.Errorf("get: exit %d, stdout %q, stderr %q; want v", code, stdout.String(), stderr.String())
	}
}
