package main

import (
	"context"
	"flag"
	"io"

	"github.com/kvd/kvd/client"
)

// command is one kvctl command. bind registers its flags and returns the
// function that runs it with the operands left after flag parsing.
type command struct {
	synopsis         string
	summary          string
	minArgs, maxArgs int
	bind             func(fs *flag.FlagSet) runner
}

type runner func(ctx context.Context, e *env, args []string) error

// env is what a command works with.
type env struct {
	client *client.Client
	out    *output
	stdin  io.Reader
	stderr io.Writer // for warnings beside a successful answer
}

var commands = map[string]*command{
	"get": {"get KEY [--path P] [--at TIME]", "Print a key's value, byte for byte (with --json: value and metadata).",
		1, 1, bindGet},
	"put": {"put KEY [VALUE|-] [--file F] [--content-type T] [--ttl D] [--if-match V | --if-version N | --if-absent] [--path P] [--ref] [--no-history] [--create]",
		"Store a value from the argument, a file, or stdin.", 1, 2, bindPut},
	"del":    {"del KEY [--if-version N] [--no-history]", "Delete a key.", 1, 1, bindDel},
	"exists": {"exists KEY", "Print true or false; exit 0 if the key exists, 1 if not.", 1, 1, bindExists},
	"incr": {"incr KEY [DELTA] [--path P] [--no-history] [--create]", "Add DELTA (default 1) and print the new value.",
		1, 2, bindCount((*client.Client).Incr)},
	"decr": {"decr KEY [DELTA] [--path P] [--no-history] [--create]", "Subtract DELTA (default 1) and print the new value.",
		1, 2, bindCount((*client.Client).Decr)},
	"list": {"list [PREFIX] [--limit N] [--offset N] [--all] [--at TIME [--after KEY]]",
		"Print keys in byte order, one per line; with --at, as they were then, paged by key (--after or --all).",
		0, 1, bindList},
	"batch get": {"batch get [FILE|-]", "Print the values of the keys in FILE (default stdin): KEY, a tab, the value quoted, or (nil).",
		0, 1, bindBatchGet},
	"batch set": {"batch set [FILE|-] [--no-history] [--create]", "Write the items in FILE (default stdin) in one transaction.",
		0, 1, bindBatchSet},
	"batch del": {"batch del [FILE|-] [--no-history]", "Delete the keys in FILE (default stdin) in one transaction.",
		0, 1, bindBatchDel},
	"history": {"history KEY [--limit N]", "Print a key's recorded writes, newest first.", 1, 1, bindHistory},
	"watch": {"watch KEY|PREFIX/ [--from-op N] [--count N]", "Print each write of a key, or of the keys under PREFIX/ (/ for the table), as it commits; reconnects by itself.",
		1, 1, bindWatch},
	"backup": {"backup FILE [--force]", "Write a consistent copy of the database to FILE, a SQLite file, put in place only once whole.",
		1, 1, bindBackup},
	"snapshot": {"snapshot KEY --op N | snapshot --at TIME [PREFIX] [--limit N] [--after KEY] [--all]",
		"Print a key's value right after its write N, or the table as it was at TIME: KEY, a tab, the value quoted.",
		0, 1, bindSnapshot},
	"diff": {"diff --from TIME --to TIME [PREFIX | --keys K1,K2] [--limit N] [--after KEY] [--all]",
		"Print what changed between two times: created KEY NEW, modified KEY OLD NEW, deleted KEY OLD (values as JSON, a binary value's bytes quoted).",
		0, 1, bindDiff},
	"rollback": {"rollback KEY [--steps N] | rollback --to TIME [--keys K1,K2 | --exclude K1,K2] [--yes]",
		"Undo a key's last N writes, or bring the table back to TIME (only shown, a dry run, until --yes).",
		0, 1, bindRollback},
}
