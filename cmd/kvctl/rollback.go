package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/unixtime"
)

// rollbackAnswer is rollback --to --json: kvd's POST /kv/rollback answer.
type rollbackAnswer struct {
	Success     bool                    `json:"success"`
	DryRun      bool                    `json:"dry_run"`
	ToTimestamp unixtime.Millis         `json:"to_timestamp"`
	Count       int                     `json:"count"`
	Changes     []client.RollbackChange `json:"changes"`
	Truncated   bool                    `json:"changes_truncated,omitempty"`
	Message     string                  `json:"message,omitempty"`
}

func bindRollback(fs *flag.FlagSet) runner {
	steps := fs.Int("steps", 1, "with KEY: undo this many of its last writes")
	var to timeFlag
	fs.Var(&to, "to", "bring the table back to how it was at this time: Unix seconds or RFC 3339")
	var keys, exclude keysFlag
	fs.Var(&keys, "keys", "with --to: only these keys (k1,k2)")
	fs.Var(&exclude, "exclude", "with --to: every key but these (k1,k2)")
	yes := fs.Bool("yes", false, "with --to: write; without it kvctl only shows what it would do")
	write := bindWriteFlags(fs, false)
	return func(ctx context.Context, e *env, args []string) error {
		if !to.set {
			if len(args) != 1 {
				return usagef("usage: kvctl rollback KEY [--steps N], or kvctl rollback --to TIME")
			}
			if keys.keys != nil || exclude.keys != nil || *yes {
				return usagef("--keys, --exclude and --yes go with --to")
			}
			return rollbackKey(ctx, e, args[0], *steps, write.options())
		}
		if len(args) != 0 {
			return usagef("rollback --to takes no KEY; name keys with --keys")
		}
		if stepsGiven(fs) {
			return usagef("--steps goes with KEY, not --to")
		}
		opts := write.options()
		switch {
		case keys.keys != nil && exclude.keys != nil:
			return usagef("give --keys or --exclude, not both")
		case keys.keys != nil:
			opts = append(opts, client.Keys(keys.keys...))
		case exclude.keys != nil:
			opts = append(opts, client.ExcludeKeys(exclude.keys...))
		}
		if *yes {
			opts = append(opts, client.Confirm())
		}
		return rollbackTable(ctx, e, to, opts)
	}
}

func stepsGiven(fs *flag.FlagSet) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "steps" })
	return given
}

func rollbackKey(ctx context.Context, e *env, key string, steps int, opts []client.Option) error {
	v, err := e.client.RollbackKey(ctx, key, steps, opts...)
	if err != nil {
		return err
	}
	return e.out.print(func() any { return newValueAnswer(key, v) }, func(w io.Writer) {
		if v == nil {
			fmt.Fprintf(w, "rolled back %s: it no longer exists\n", key)
			return
		}
		fmt.Fprintf(w, "rolled back %s to %s\n", key, quote(v.Data))
	})
}

func rollbackTable(ctx context.Context, e *env, to timeFlag, opts []client.Option) error {
	plan, err := e.client.RollbackTable(ctx, to.t, opts...)
	if err != nil {
		return err
	}
	res := rollbackAnswer{Success: true, DryRun: plan.DryRun, ToTimestamp: unixtime.Of(plan.To), Count: plan.Count,
		Changes: plan.Changes, Truncated: plan.Truncated, Message: plan.Message}
	if res.Changes == nil {
		res.Changes = []client.RollbackChange{}
	}
	// Plain: the action (restore or delete) and KEY, one a line.
	return e.out.print(func() any { return res }, func(w io.Writer) {
		for _, c := range res.Changes {
			fmt.Fprintf(w, "%s\t%s\n", c.Action, c.Key)
		}
		if res.Truncated {
			fmt.Fprintf(e.stderr, "kvctl: kvd listed %d of the %d changes\n", len(res.Changes), res.Count)
		}
		if res.DryRun {
			fmt.Fprintf(e.stderr, "kvctl: dry run, nothing written: %d change(s) to apply with --yes\n", res.Count)
		} else {
			fmt.Fprintf(e.stderr, "kvctl: rolled back %d key(s)\n", res.Count)
		}
	})
}
