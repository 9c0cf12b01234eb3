package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestLine_NamesProgramVersionRevisionAndGo(t *testing.T) {
	i := Info{Version: "v1.2.3", Revision: "abc123-dirty", Time: "2026-12-03T00:00:00Z", GoVersion: "go1.26.8"}
	got := i.Line("kvd")
	want := "kvd v1.2.3 revision abc123-dirty (2026-12-03T00:00:00Z) go1.26.8"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRead_KnowsTheGoVersion(t *testing.T) {
	if got := Read().GoVersion; got != runtime.Version() {
		t.Fatalf("got Go version %q, want %q", got, runtime.Version())
	}
	if got := Read().Line("x"); !strings.HasPrefix(got, "x ") {
		t.Fatalf("got %q, want it to start with the program name", got)
	}
}
