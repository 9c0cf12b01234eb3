package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/unixtime"
)

// refContentType is the content type kvd gives a reference; kvd shows one
// as text.
const refContentType = "application/vnd.kvd.reference"

// valueAnswer is kvd's answer with one value (a key's snapshot or
// rollback): the value as apiValue shows it.
type valueAnswer struct {
	Success     bool   `json:"success"`
	Key         string `json:"key"`
	OpNumber    int64  `json:"op_number,omitempty"`
	Value       any    `json:"value"`
	ContentType string `json:"content_type,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
}

func newValueAnswer(key string, v *client.Value) valueAnswer {
	res := valueAnswer{Success: true, Key: key}
	if v != nil {
		res.ContentType = v.ContentType
		var binary bool
		if res.Value, binary = apiValue(*v); binary {
			res.Encoding = "base64"
		}
	}
	return res
}

// apiValue shows a value as kvd's API does: inline when it is JSON, a
// string when it is text (a text/*, JSON or reference type), base64
// otherwise (then binary is true).
func apiValue(v client.Value) (shown any, binary bool) {
	switch {
	case v.IsJSON() && json.Valid(v.Data):
		return json.RawMessage(v.Data), false
	case (strings.HasPrefix(v.ContentType, "text/") || v.IsJSON() || isRef(v.ContentType)) && utf8.Valid(v.Data):
		return string(v.Data), false
	}
	return base64.StdEncoding.EncodeToString(v.Data), true
}

func isRef(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == refContentType
}

// snapshotAnswer is snapshot --at --json: kvd's GET /kv/snapshot answer,
// with the entries of every page read in one map.
type snapshotAnswer struct {
	Timestamp          unixtime.Millis            `json:"timestamp"`
	Entries            map[string]json.RawMessage `json:"entries"`
	BinaryKeys         []string                   `json:"binary_keys,omitempty"`
	HasGaps            bool                       `json:"has_gaps"`
	GapKeys            []string                   `json:"gap_keys"`
	CandidateTruncated bool                       `json:"candidate_truncated"`
	Truncated          bool                       `json:"truncated"`
	NextAfter          string                     `json:"next_after,omitempty"`
}

func bindSnapshot(fs *flag.FlagSet) runner {
	op := fs.Int64("op", 0, "print KEY's value right after its write numbered N (an op number of kvctl history)")
	var at timeFlag
	fs.Var(&at, "at", "print the table (or the keys under PREFIX) as it was at this time: Unix seconds or RFC 3339")
	pages := bindPageFlags(fs)
	return func(ctx context.Context, e *env, args []string) error {
		switch {
		case *op != 0 && at.set:
			return usagef("give --op (one key) or --at (the table), not both")
		case *op != 0:
			if len(args) != 1 {
				return usagef("usage: kvctl snapshot KEY --op N")
			}
			if pages.given() {
				return usagef("--limit, --after and --all go with --at")
			}
			return keySnapshot(ctx, e, args[0], *op)
		case at.set:
			prefix := ""
			if len(args) > 0 {
				prefix = args[0]
			}
			return tableSnapshot(ctx, e, at, prefix, pages)
		}
		return usagef("give KEY --op N, or --at TIME [PREFIX]")
	}
}

func keySnapshot(ctx context.Context, e *env, key string, op int64) error {
	v, err := e.client.KeySnapshot(ctx, key, op)
	if err != nil {
		return err
	}
	return e.out.print(func() any {
		res := newValueAnswer(key, v)
		res.OpNumber = op
		return res
	}, func(w io.Writer) { printValue(e, w, v.Data) })
}

// printValue writes a value byte for byte, as get does.
func printValue(e *env, w io.Writer, data []byte) {
	w.Write(data)
	if e.out.terminal && !bytes.HasSuffix(data, []byte("\n")) {
		fmt.Fprintln(w)
	}
}

func tableSnapshot(ctx context.Context, e *env, at timeFlag, prefix string, pages *pageFlags) error {
	res := snapshotAnswer{Entries: map[string]json.RawMessage{}}
	binary := map[string]bool{}
	after := pages.after
	for {
		page, err := e.client.TableSnapshot(ctx, at.t, pages.options(prefix, after)...)
		if err != nil {
			return err
		}
		for k, v := range page.Entries {
			res.Entries[k] = v
		}
		for _, k := range page.BinaryKeys {
			binary[k] = true
		}
		res.Timestamp, res.GapKeys = unixtime.Of(page.Time), append(res.GapKeys, page.GapKeys...)
		res.CandidateTruncated, res.Truncated, res.NextAfter = page.Truncated, page.Cut, page.NextAfter
		if err := pages.next(&after, page.NextAfter); err != nil || after == "" {
			if err != nil {
				return err
			}
			break
		}
	}
	keys := sortedKeys(res.Entries)
	for _, k := range keys {
		if binary[k] {
			res.BinaryKeys = append(res.BinaryKeys, k)
		}
	}
	res.HasGaps = len(res.GapKeys) > 0
	if res.GapKeys == nil {
		res.GapKeys = []string{} // kvd's answer has the list, empty or not
	}
	snap := &client.TableSnapshot{Entries: res.Entries, BinaryKeys: res.BinaryKeys}
	// Plain: KEY, a tab, the value quoted, as batch get prints values.
	return e.out.print(func() any { return res }, func(w io.Writer) {
		for _, k := range keys {
			data, _ := snap.Bytes(k)
			fmt.Fprintf(w, "%s\t%s\n", k, quote(data))
		}
		warnPage(e, res.GapKeys, res.NextAfter)
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// warnPage tells on stderr what a look at a past time left open: keys
// history cannot tell, and the keys left on later pages.
func warnPage(e *env, gaps []string, next string) {
	if len(gaps) > 0 {
		fmt.Fprintf(e.stderr, "kvctl: history cannot tell these keys' state then: %s\n", strings.Join(gaps, ", "))
	}
	if next != "" {
		fmt.Fprintf(e.stderr, "kvctl: more keys have history: continue with --after %s, or read them all with --all\n", quoteArg(next))
	}
}

// pageFlags page a look at a past time by key, as list --at does.
type pageFlags struct {
	limit *int
	after string
	all   *bool
	fs    *flag.FlagSet
}

func bindPageFlags(fs *flag.FlagSet) *pageFlags {
	p := &pageFlags{fs: fs}
	p.limit = fs.Int("limit", 0, "keys with history looked at per page (kvd's default 100, at most 1000)")
	fs.Func("after", "start after this key, the next_after of the previous page", func(s string) error { p.after = s; return nil })
	p.all = fs.Bool("all", false, "read every page, --limit keys at a time")
	return p
}

// given tells whether any paging flag was on the command line.
func (p *pageFlags) given() bool {
	given := false
	p.fs.Visit(func(f *flag.Flag) { given = given || f.Name == "limit" || f.Name == "after" || f.Name == "all" })
	return given
}

func (p *pageFlags) options(prefix, after string) []client.Option {
	var opts []client.Option
	if prefix != "" {
		opts = append(opts, client.Prefix(prefix))
	}
	if *p.limit != 0 {
		opts = append(opts, client.Limit(*p.limit))
	}
	if after != "" {
		opts = append(opts, client.After(after))
	}
	return opts
}

// next moves after on to the next page's start, or to "" when there is no
// next page to read.
func (p *pageFlags) next(after *string, next string) error {
	if next != "" && next <= *after {
		// Keys come in byte order; a page that does not move on would loop.
		return fmt.Errorf("kvd: next_after %q does not follow %q", next, *after)
	}
	*after = next
	if !*p.all {
		*after = ""
	}
	return nil
}
