package main

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"
)

// The completion command is added in init: it reads the command table,
// which cannot name it in its own initializer.
func init() {
	commands["completion"] = &command{"completion bash|zsh|fish",
		"Print a shell completion script; see the README for where to put it.", 1, 1, bindCompletion}
}

// shells are the scripts kvctl completion writes.
var shells = map[string]func(w io.Writer, spec completionSpec){
	"bash": writeBashCompletion,
	"zsh":  writeZshCompletion,
	"fish": writeFishCompletion,
}

func bindCompletion(*flag.FlagSet) runner {
	return func(_ context.Context, e *env, args []string) error {
		write, ok := shells[args[0]]
		if !ok {
			return usagef("completion: unknown shell %q; want bash, zsh or fish", args[0])
		}
		// A script, with --json too: there is no JSON form of it.
		plain := &output{w: e.out.w}
		return plain.print(nil, func(w io.Writer) { write(w, newCompletionSpec()) })
	}
}

// completionSpec is what the scripts complete, read from the command
// table and the flag sets, so that a new command or flag completes too.
type completionSpec struct {
	globals  []flagSpec
	commands []commandSpec // sorted by name; "batch get" and the like are in
	valued   []string      // every flag that takes a value, as --name
}

type commandSpec struct {
	name, summary string
	flags         []flagSpec // its own, not the global ones
	operands      []string   // fixed words it takes (the shells of completion)
}

type flagSpec struct {
	name, usage string
	valued      bool
}

func newCompletionSpec() completionSpec {
	var spec completionSpec
	top := flag.NewFlagSet("kvctl", flag.ContinueOnError)
	newGlobals(func(string) string { return "" }).register(top)
	top.Bool("version", false, "print kvctl's version and exit")
	spec.globals = flagSpecs(top, nil)
	valued := map[string]bool{}
	addValued := func(flags []flagSpec) {
		for _, f := range flags {
			if f.valued {
				valued["--"+f.name] = true
			}
		}
	}
	addValued(spec.globals)
	for _, name := range sortedKeys(commands) {
		cmd := commands[name]
		fs := flag.NewFlagSet("kvctl "+name, flag.ContinueOnError)
		cmd.bind(fs)
		c := commandSpec{name: name, summary: cmd.summary, flags: flagSpecs(fs, top)}
		if name == "completion" {
			c.operands = sortedKeys(shells)
		}
		addValued(c.flags)
		spec.commands = append(spec.commands, c)
	}
	spec.valued = sortedKeys(valued)
	return spec
}

// flagSpecs lists the flags of fs that are not in globals.
func flagSpecs(fs, globals *flag.FlagSet) []flagSpec {
	var out []flagSpec
	fs.VisitAll(func(f *flag.Flag) {
		if globals == nil || globals.Lookup(f.Name) == nil {
			out = append(out, flagSpec{name: f.Name, usage: f.Usage, valued: !isBoolFlag(f)})
		}
	})
	return out
}

// topWords are the words that may come first: the commands, with "batch"
// once for its subcommands.
func (s completionSpec) topWords() []commandSpec {
	var out []commandSpec
	for _, c := range s.commands {
		if group, _, ok := strings.Cut(c.name, " "); ok {
			if !slices.ContainsFunc(out, func(o commandSpec) bool { return o.name == group }) {
				out = append(out, commandSpec{name: group, summary: group + " " + strings.Join(s.subcommands(group), "|")})
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

// subcommands are the words after a group's name ("get", "set", "del").
func (s completionSpec) subcommands(group string) []string {
	var out []string
	for _, c := range s.commands {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			out = append(out, sub)
		}
	}
	return out
}

func (s completionSpec) groups() []string {
	var out []string
	for _, c := range s.topWords() {
		if len(s.subcommands(c.name)) > 0 {
			out = append(out, c.name)
		}
	}
	return out
}

func flagNames(flags []flagSpec) string {
	names := make([]string, len(flags))
	for i, f := range flags {
		names[i] = "--" + f.name
	}
	return strings.Join(names, " ")
}

func names(cmds []commandSpec) string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.name
	}
	return strings.Join(out, " ")
}
