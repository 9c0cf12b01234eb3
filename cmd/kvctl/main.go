// Command kvctl reads and writes a kvd key-value store from the shell.
//
// Exit status: 0 success, 1 not found (a missing key, expired key, JSON
// path or database; exists on a missing key), 2 usage (bad flags,
// arguments or input file), 3 any other failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/buildinfo"
)

const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitFailure  = 3
)

const usage = `kvctl reads and writes a kvd key-value store.

Usage:
  kvctl [flags] <command> [command flags] [arguments]

Commands:
  get KEY               print a key's value, byte for byte
  put KEY [VALUE|-]     store VALUE, or --file F, or stdin (when absent or -)
  del KEY               delete a key
  exists KEY            print true or false; exit 0 if the key exists, 1 if not
  incr KEY [DELTA]      add DELTA (default 1), print the new value
  decr KEY [DELTA]      subtract DELTA (default 1), print the new value
  list [PREFIX]         print keys in byte order, one per line
  batch get [FILE|-]    print the values of the keys in FILE (default stdin)
  batch set [FILE|-]    write the items in FILE in one transaction
  batch del [FILE|-]    delete the keys in FILE in one transaction
  history KEY           print a key's recorded writes, newest first
  watch KEY|PREFIX/     print each write of a key, or under PREFIX/ (/: the
                        table), as it commits (--from-op N, --count N)
  snapshot KEY --op N   print a key's value right after its write N
  snapshot --at TIME [PREFIX]
                        print the table as it was at TIME
  diff --from T --to T [PREFIX]
                        print what changed between two times (--keys K1,K2)
  rollback KEY          undo a key's last write (--steps N for more)
  rollback --to TIME    bring the table back to TIME; shows the plan only,
                        a dry run, unless --yes (--keys or --exclude K1,K2)
  backup FILE           write a consistent copy of the database to FILE
                        (--force replaces an existing FILE)
  completion SHELL      print a completion script for bash, zsh or fish

Flags, before or after the command:
  --url URL       kvd's address (env KVCTL_URL, default http://127.0.0.1:8080)
  --db NAME       database (env KVCTL_DB)
  --table NAME    table (default kv_store)
  --token TOKEN   bearer token (env KVCTL_TOKEN)
  --ca-file FILE  trust this CA's PEM certificate for an https URL (env KVCTL_CA_FILE)
  --json          print JSON for machines (errors too, on stderr)
  --timeout D     give up after D (default 30s; watch follows until --count
                  or an interrupt unless it is given)
  --version       print kvctl's version and exit

Run "kvctl help <command>" (or "kvctl <command> -h") for the flags of a command.

Batch files are JSON ({"keys":[...]}, {"items":[...]} or an array) or JSONL,
one key or item per line. An item is {"key":K,"value":V} with optional
"content_type", "ttl" (seconds) and "encoding":"base64"; a string V is
stored as its text, any other JSON value as JSON.

Exit status: 0 ok, 1 not found, 2 usage, 3 any other error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake on the command line or in an input file:
// nothing was sent to kvd. The client's *client.ArgumentError (an option
// value it refuses) is one too; see isUsage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errNotFound is a negative answer that is not an error (exists on a missing
// key): exit status 1, no message.
var errNotFound = errors.New("not found")

// run is kvctl without the process: tests call it directly, with an
// environment of their own (getenv) so the developer's KVCTL_* stay out.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := newGlobals(getenv)
	top := flag.NewFlagSet("kvctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	version := top.Bool("version", false, "")
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return fail(stderr, g, usageError{err.Error()})
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.Read().Line("kvctl"))
		return exitOK
	}
	words := top.Args()
	if len(words) > 0 && words[0] == "help" { // kvctl help [command]: that command's -h
		words = append(words[1:], "-h")
	}
	if slices.Equal(words, []string{"-h"}) || len(words) == 2 && words[0] == "batch" && isHelpFlag(words[1]) {
		fmt.Fprint(stdout, usage) // kvctl help, kvctl batch -h: every command
		return exitOK
	}
	name, rest, cmd, err := lookup(words)
	if err != nil {
		return fail(stderr, g, err)
	}
	fs := flag.NewFlagSet("kvctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	exec := cmd.bind(fs)
	operands, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, name, cmd, fs, top)
		return exitOK
	}
	if err == nil {
		err = checkArgs(cmd, operands)
	}
	if err != nil {
		return fail(stderr, g, usageError{err.Error()})
	}
	c, err := g.client()
	if err != nil {
		return fail(stderr, g, usageError{err.Error()})
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	if !follows[name] || given(top, "timeout") || given(fs, "timeout") {
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
	}
	defer cancel()
	err = exec(ctx, &env{client: c, out: newOutput(stdout, g.json), stdin: stdin, stderr: stderr}, operands)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("gave up after %s (--timeout)", g.timeout)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		err = errors.New("interrupted")
	}
	return fail(stderr, g, err)
}

func isHelpFlag(word string) bool { return word == "-h" || word == "-help" || word == "--help" }

// follows are the commands that run until stopped (--count, an
// interrupt): --timeout bounds them only when it is given.
var follows = map[string]bool{"watch": true}

// given reports whether the flag name was set on fs.
func given(fs *flag.FlagSet, name string) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// lookup finds the command named by the first one or two arguments.
func lookup(args []string) (string, []string, *command, error) {
	if len(args) == 0 {
		return "", nil, nil, usagef("no command given; run kvctl -h for usage")
	}
	name, rest := args[0], args[1:]
	if name == "batch" {
		if len(rest) == 0 {
			return "", nil, nil, usagef("batch needs get, set or del")
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		return "", nil, nil, usagef("unknown command %q; run kvctl -h for usage", name)
	}
	return name, rest, cmd, nil
}

func checkArgs(cmd *command, operands []string) error {
	if len(operands) < cmd.minArgs || len(operands) > cmd.maxArgs {
		return fmt.Errorf("usage: kvctl %s", cmd.synopsis)
	}
	return nil
}

func printCommandHelp(w io.Writer, name string, cmd *command, fs, globals *flag.FlagSet) {
	fmt.Fprintf(w, "usage: kvctl %s\n\n%s\n\nFlags of %s:\n", cmd.synopsis, cmd.summary, name)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if globals.Lookup(f.Name) == nil {
			fmt.Fprintf(tw, "  --%s\t%s\n", f.Name, f.Usage)
		}
	})
	tw.Flush()
	fmt.Fprintln(w, "\nand the global flags: --url, --db, --table, --token, --ca-file, --json, --timeout")
}

// fail reports err on stderr (as JSON with --json) and returns the exit
// status it stands for.
func fail(stderr io.Writer, g *globals, err error) int {
	code := exitCode(err)
	if err == nil || errors.Is(err, errNotFound) {
		return code
	}
	if g.json {
		writeJSONError(stderr, err)
	} else {
		fmt.Fprintln(stderr, "kvctl:", strings.TrimPrefix(err.Error(), "kvd: "))
	}
	return code
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case isUsage(err):
		return exitUsage
	case errors.Is(err, errNotFound), client.IsNotFound(err):
		return exitNotFound
	}
	return exitFailure
}

// isUsage reports whether err is a mistake caught before sending: kvctl's
// own checks, or the client's checks of the options kvctl passed on.
func isUsage(err error) bool {
	var u usageError
	var arg *client.ArgumentError
	return errors.As(err, &u) || errors.As(err, &arg)
}
