package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readmeExample is one "$ command" of the README with the answer printed
// under it.
type readmeExample struct {
	line    int    // in README.md, for the failure message
	command string // continuation lines included
	want    string // "..." stands for anything
}

// readmeExamples reads every "    $ " command of the README's indented code
// blocks and the lines under it up to the next command or comment.
func readmeExamples(t *testing.T, readme string) []readmeExample {
	t.Helper()
	var examples []readmeExample
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		cmd, ok := strings.CutPrefix(lines[i], "    $ ")
		if !ok {
			continue
		}
		ex := readmeExample{line: i + 1, command: cmd}
		for strings.HasSuffix(ex.command, `\`) && i+1 < len(lines) {
			i++
			ex.command += "\n" + strings.TrimPrefix(lines[i], "    ")
		}
		var want []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.HasPrefix(next, "    $ ") || strings.HasPrefix(next, "    # ") || (next != "" && !strings.HasPrefix(next, "    ")) {
				break
			}
			i++
			want = append(want, strings.TrimPrefix(next, "    "))
		}
		ex.want = strings.TrimRight(strings.Join(want, "\n"), "\n ")
		examples = append(examples, ex)
	}
	return examples
}

// TestREADME_ExamplesRunVerbatim runs the README's examples, in order, in
// one shell against a fresh kvd, as a newcomer pasting them would, and
// compares each answer with the one the README prints.
func TestREADME_ExamplesRunVerbatim(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl on this machine (.ci/run installs it)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(t, string(readme))
	if len(examples) < 30 {
		t.Fatalf("found %d examples in README.md; the walk-through has more", len(examples))
	}
	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "kvctl"), "../kvctl").CombinedOutput(); err != nil {
		t.Fatalf("build kvctl: %v\n%s", err, out)
	}
	d := startDaemon(t, filepath.Join(work, "data"))
	host := strings.TrimPrefix(d.url, "http://")

	// One shell, so that variables set by one example ($T) reach the next;
	// a marker line before each example splits the output.
	var script strings.Builder
	for i, ex := range examples {
		script.WriteString("echo; echo '@@example " + strconv.Itoa(i) + "'\n") // answers may lack a final newline
		command := strings.NewReplacer("localhost:8080", host, "127.0.0.1:8080", host).Replace(ex.command)
		script.WriteString(command + "\n")
	}
	sh := exec.Command("bash", "-c", "exec 2>&1\n"+script.String()) // messages on stderr are part of an answer
	sh.Dir = work
	sh.Env = append(environWithout("KVCTL_"), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the examples' shell: %v\n%s", err, out)
	}
	got := regexp.MustCompile(`(?m)^@@example \d+\n`).Split(strings.ReplaceAll(string(out), "\r\n", "\n"), -1)[1:]
	if len(got) != len(examples) {
		t.Fatalf("got %d answers for %d examples:\n%s", len(got), len(examples), out)
	}
	for i, ex := range examples {
		answer := strings.TrimRight(got[i], "\n ")
		if !matchesWithEllipses(ex.want, answer) {
			t.Errorf("README.md:%d: %s\ngot:\n%s\nwant (... is anything):\n%s", ex.line, ex.command, answer, ex.want)
		}
	}
	if t.Failed() {
		t.Logf("kvd's log:\n%s", d.logs)
	}
	d.stop(t)
}

// environWithout is the test's environment less variables starting with
// prefix (a developer's own KVCTL_* must not steer the examples).
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// matchesWithEllipses reports whether got is want with each "..." standing
// for any text.
func matchesWithEllipses(want, got string) bool {
	parts := strings.Split(want, "...")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`).MatchString(got)
}
