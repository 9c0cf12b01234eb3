package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client/clienttest"
)

// runAsKvctl makes the test binary behave as kvctl itself, so a test can
// run the real command (main, flags, os.Exit) as a child process.
const runAsKvctl = "KVCTL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsKvctl) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// envOf is a getenv for run that sees only vars, never the developer's
// own KVCTL_* settings.
func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// kvd is a real kvd for one test, with kvctl pointed at it.
type kvd struct {
	t   *testing.T
	url string
	db  string
}

func newKVD(t *testing.T, opts clienttest.Options) *kvd {
	t.Helper()
	srv := clienttest.New(t, opts)
	return &kvd{t: t, url: srv.URL, db: "app"}
}

// result is what one kvctl run did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs kvctl in-process with --url and --db of this kvd (a later
// --db on the command line wins) and stdin as its input.
func (k *kvd) run(stdin string, args ...string) result {
	k.t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	full := append([]string{"--url", k.url, "--db", k.db}, args...)
	code := run(ctx, full, envOf(nil), strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout.String(), stderr.String(), code}
}

// must runs kvctl and fails the test unless it exits 0.
func (k *kvd) must(stdin string, args ...string) string {
	k.t.Helper()
	r := k.run(stdin, args...)
	if r.code != exitOK {
		k.t.Fatalf("kvctl %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

// TestCommand_RealBinaryExitCodes runs kvctl as a process: the exit
// statuses scripts see come from os.Exit, not from run's return value.
func TestCommand_RealBinaryExitCodes(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	kvctl := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(environWithoutKvctl(), runAsKvctl+"=1", "KVCTL_URL="+k.url, "KVCTL_DB=app")
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("kvctl %q: %v", args, err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	steps := []struct {
		stdin    string
		args     []string
		wantOut  string
		wantCode int
	}{
		{"", []string{"get", "users/alice"}, "", exitNotFound},
		{"", []string{"put", "--create", "users/alice", "Alice"}, "created\n", exitOK},
		{"Alice B.\n", []string{"put", "users/alice"}, "updated\n", exitOK},
		{"", []string{"get", "users/alice"}, "Alice B.\n", exitOK},
		{"", []string{"exists", "users/alice"}, "true\n", exitOK},
		{"", []string{"exists", "users/bob"}, "false\n", exitNotFound},
		{"", []string{"incr", "views/incr", "5"}, "5\n", exitOK},
		{"", []string{"put", "users/alice", "x", "--if-match", "nope"}, "", exitFailure},
		{"", []string{"get"}, "", exitUsage},
		{"", []string{"--url", "http://127.0.0.1:1", "get", "k"}, "", exitFailure},
		{"", []string{"-h"}, usage, exitOK},
	}
	for _, s := range steps {
		out, code := kvctl(s.stdin, s.args...)
		if code != s.wantCode || out != s.wantOut {
			t.Errorf("kvctl %q: exit %d, stdout %q; want exit %d, stdout %q", s.args, code, out, s.wantCode, s.wantOut)
		}
	}
}

// environWithoutKvctl is this process's environment less the developer's
// KVCTL_* settings, for a kvctl child process.
func environWithoutKvctl() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KVCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestRun_VersionPrintsBuildWithoutAServer(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"--url", "http://127.0.0.1:1", "--version"}, envOf(nil), strings.NewReader(""), &stdout, &stderr)
	if code != exitOK || !strings.HasPrefix(stdout.String(), "kvctl ") || !strings.Contains(stdout.String(), runtime.Version()) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and kvctl's name and Go version", code, stdout.String(), stderr.String())
	}
}
