package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/unixtime"
)

func bindList(fs *flag.FlagSet) runner {
	limit := fs.Int("limit", 100, "keys per page, at most 1000 (with --at: keys with history looked at per page)")
	offset := fs.Int("offset", 0, "skip this many keys (not with --at)")
	all := fs.Bool("all", false, "page through every key, --limit at a time")
	var at timeFlag
	fs.Var(&at, "at", "the keys as they were at this time: Unix seconds or RFC 3339")
	after := fs.String("after", "", "start after this key, the next_after of the previous page")
	return func(ctx context.Context, e *env, args []string) error {
		prefix := ""
		if len(args) > 0 {
			prefix = args[0]
		}
		if at.set {
			if *offset != 0 {
				return usagef("--at takes no --offset: kvd pages a past time by key; use --after or --all")
			}
			return listAt(ctx, e, at, prefix, *limit, *after, *all)
		}
		var page *client.KeyList
		keys := []string{}
		for {
			opts := []client.Option{client.Prefix(prefix), client.Limit(*limit), client.Offset(*offset)}
			if *after != "" {
				opts = append(opts, client.After(*after))
			}
			p, err := e.client.List(ctx, opts...)
			if err != nil {
				return err
			}
			page, keys = p, append(keys, p.Keys...)
			// By key, not by offset: keys that expire meanwhile shift no page.
			if *offset, *after = 0, p.NextAfter; !*all || *after == "" {
				break
			}
		}
		var out any = page
		if *all {
			out = map[string]any{"keys": keys, "count": len(keys), "prefix": prefix}
		} else if page.NextAfter != "" {
			// As snapshot and list --at say: 100 lines and exit 0 read as all.
			fmt.Fprintf(e.stderr, "kvctl: the page is full, more keys may follow: continue with --after %s, or list them all with --all\n", quoteArg(page.NextAfter))
		}
		return e.out.print(func() any { return out }, func(w io.Writer) { printLines(w, keys) })
	}
}

// listAt lists the keys as they were at a time: one page of the keys with
// history, starting after the key after, or with all every page. A page
// may hold fewer keys than limit (keys deleted by then) and still not be
// the last; next_after says where the next one starts.
func listAt(ctx context.Context, e *env, at timeFlag, prefix string, limit int, after string, all bool) error {
	keys, gaps := []string{}, []string{}
	var when time.Time
	for {
		opts := []client.Option{client.Prefix(prefix), client.Limit(limit)}
		if after != "" {
			opts = append(opts, client.After(after))
		}
		res, err := e.client.ListAt(ctx, at.t, opts...)
		if err != nil {
			return err
		}
		keys, gaps, when = append(keys, res.Keys...), append(gaps, res.GapKeys...), res.At
		if res.NextAfter != "" && res.NextAfter <= after {
			// Keys come in byte order; a page that does not move on would loop.
			return fmt.Errorf("kvd: next_after %q does not follow %q", res.NextAfter, after)
		}
		after = res.NextAfter
		if !all || after == "" {
			break
		}
	}
	out := map[string]any{"keys": keys, "gap_keys": gaps, "truncated": after != "", "at": unixtime.Of(when)}
	if after != "" {
		out["next_after"] = after
	}
	return e.out.print(func() any { return out }, func(w io.Writer) {
		printLines(w, keys)
		if len(gaps) > 0 {
			fmt.Fprintf(e.stderr, "kvctl: history cannot tell whether these keys existed then: %s\n", strings.Join(gaps, ", "))
		}
		if after != "" {
			fmt.Fprintf(e.stderr, "kvctl: more keys have history: continue with --after %s, or list them all with --all\n", quoteArg(after))
		}
	})
}

// quoteArg shows s as a shell word: as is when it is plain, else in single
// quotes.
func quoteArg(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func printLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
