package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completionScript runs kvctl completion shell, without a kvd.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"completion", shell}, envOf(nil), strings.NewReader(""), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("completion %s: exit %d, %s", shell, code, stderr.String())
	}
	return stdout.String()
}

// Every script names every command of the table and every flag, global or
// the command's own: the scripts are built from the table, so a command
// added to it completes with no other change (zz-test shows it).
func TestCompletion_NamesEveryCommandAndFlag(t *testing.T) {
	commands["zz-test"] = &command{"zz-test", "a command added for this test", 0, 0, func(fs *flag.FlagSet) runner {
		fs.String("zz-flag", "", "a flag added for this test")
		return func(context.Context, *env, []string) error { return nil }
	}}
	t.Cleanup(func() { delete(commands, "zz-test") })
	globals := flag.NewFlagSet("", flag.ContinueOnError)
	newGlobals(envOf(nil)).register(globals)
	for shell := range shells {
		script := completionScript(t, shell)
		var missing []string
		for name, cmd := range commands {
			for _, word := range strings.Fields(name) {
				if !strings.Contains(script, word) {
					missing = append(missing, word)
				}
			}
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			cmd.bind(fs)
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(script, "--"+f.Name) && !strings.Contains(script, "-l "+f.Name) {
					missing = append(missing, "--"+f.Name)
				}
			})
		}
		globals.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(script, "--"+f.Name) && !strings.Contains(script, "-l "+f.Name) {
				missing = append(missing, "--"+f.Name)
			}
		})
		if len(missing) > 0 {
			t.Errorf("%s script lacks %q", shell, missing)
		}
	}
}

// Each script is valid in its shell: bash always, zsh and fish when the
// machine has them.
func TestCompletion_ScriptsParse(t *testing.T) {
	checks := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}
	for shell, check := range checks {
		if _, err := exec.LookPath(check[0]); err != nil {
			if shell == "bash" {
				t.Fatal("bash is needed to check the bash script")
			}
			t.Logf("%s not installed: its script is not parsed", shell)
			continue
		}
		file := filepath.Join(t.TempDir(), "kvctl."+shell)
		if err := os.WriteFile(file, []byte(completionScript(t, shell)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(check[0], append(check[1:], file)...).CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", strings.Join(check, " "), shell, err, out)
		}
	}
}

// The bash script, loaded in bash, offers what the words typed so far
// allow: commands first, then the command's flags and the global ones,
// batch's verbs, completion's shells, and nothing (files) for a flag's
// value.
func TestCompletion_BashOffersWhatFits(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	file := filepath.Join(t.TempDir(), "kvctl.bash")
	if err := os.WriteFile(file, []byte(completionScript(t, "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		line string // the words typed; the last one is being completed
		want string
	}{
		{"kvctl ''", "backup batch completion decr del diff exists get history incr list put rollback snapshot watch"},
		{"kvctl --db app sn", "snapshot"},
		{"kvctl rollback --y", "--yes"},
		{"kvctl --db app rollback k --st", "--steps"},
		{"kvctl diff --from 1 --to 2 --k", "--keys"},
		{"kvctl backup --f", "--force"},
		{"kvctl snapshot --at 1 --t", "--table --timeout --token"},
		{"kvctl batch ''", "del get set"},
		{"kvctl batch set --n", "--no-history"},
		{"kvctl completion ''", "bash fish zsh"},
		{"kvctl --db ''", ""},
		{"kvctl get k --at ''", ""},
	}
	for _, tc := range cases {
		script := ". " + file + "; COMP_WORDS=(" + tc.line + "); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _kvctl; echo ${COMPREPLY[*]}"
		out, err := exec.Command("bash", "--norc", "--noprofile", "-c", script).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("%s<TAB>: got %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
}
