package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kvd/kvd/client"
)

func bindList(fs *flag.FlagSet) runner {
	limit := fs.Int("limit", 100, "keys per page, at most 1000")
	offset := fs.Int("offset", 0, "skip this many keys")
	all := fs.Bool("all", false, "page through every key, --limit at a time")
	var at timeFlag
	fs.Var(&at, "at", "the keys as they were at this time: Unix seconds or RFC 3339")
	return func(ctx context.Context, e *env, args []string) error {
		prefix := ""
		if len(args) > 0 {
			prefix = args[0]
		}
		if at.set {
			if *all || *offset != 0 {
				return usagef("--at takes neither --all nor --offset")
			}
			return listAt(ctx, e, at, prefix, *limit)
		}
		page, err := e.client.List(ctx, client.Prefix(prefix), client.Limit(*limit), client.Offset(*offset))
		if err != nil {
			return err
		}
		keys := page.Keys
		for *all && page.Count == *limit {
			if page, err = e.client.List(ctx, client.Prefix(prefix), client.Limit(*limit), client.Offset(*offset+len(keys))); err != nil {
				return err
			}
			keys = append(keys, page.Keys...)
		}
		var out any = page
		if *all {
			out = map[string]any{"keys": keys, "count": len(keys), "prefix": prefix}
		}
		return e.out.print(out, func(w io.Writer) { printLines(w, keys) })
	}
}

func listAt(ctx context.Context, e *env, at timeFlag, prefix string, limit int) error {
	res, err := e.client.ListAt(ctx, at.t, client.Prefix(prefix), client.Limit(limit))
	if err != nil {
		return err
	}
	out := map[string]any{"keys": res.Keys, "gap_keys": res.GapKeys, "truncated": res.Truncated, "at": float64(res.At.UnixMilli()) / 1000}
	return e.out.print(out, func(w io.Writer) {
		printLines(w, res.Keys)
		if len(res.GapKeys) > 0 {
			fmt.Fprintf(e.stderr, "kvctl: history cannot tell whether these keys existed then: %s\n", strings.Join(res.GapKeys, ", "))
		}
		if res.Truncated {
			fmt.Fprintf(e.stderr, "kvctl: more keys have history than --limit %d let kvd look at\n", limit)
		}
	})
}

func printLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
