// Package buildinfo says which build of kvd is running: the module version
// and the VCS revision the Go toolchain stamped into the binary. kvd,
// kvctl and kvbench print it for --version, and kvd exports it as the
// kvd_build_info metric, so an operator can tell which code answered.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info is what the binary knows of its own build; a field the build did
// not record (go run, a test binary, a build outside a checkout) is
// "unknown".
type Info struct {
	Version   string // module version, "(devel)" for a build from a checkout
	Revision  string // VCS revision, with "-dirty" when the tree had changes
	Time      string // commit time of that revision, RFC 3339
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	info := Info{Version: "unknown", Revision: "unknown", Time: "unknown", GoVersion: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.GoVersion = bi.GoVersion
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "unknown" {
		info.Revision += "-dirty"
	}
	return info
}

// Line is the one line --version prints, e.g.
// "kvd (devel) revision 6b4956f… (2026-12-03T23:19:00Z) go1.26.8".
func (i Info) Line(program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s revision %s", program, i.Version, i.Revision)
	if i.Time != "unknown" {
		fmt.Fprintf(&b, " (%s)", i.Time)
	}
	fmt.Fprintf(&b, " %s", i.GoVersion)
	return b.String()
}
