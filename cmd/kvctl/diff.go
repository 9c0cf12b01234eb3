package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/unixtime"
)

// diffAnswer is diff --json: kvd's GET /kv/diff answer, with the changes of
// every page read in one list.
type diffAnswer struct {
	From               unixtime.Millis `json:"from"`
	To                 unixtime.Millis `json:"to"`
	Stats              map[string]int  `json:"stats"`
	Changes            []client.Change `json:"changes"`
	HasGaps            bool            `json:"has_gaps"`
	GapKeys            []string        `json:"gap_keys"`
	CandidateTruncated bool            `json:"candidate_truncated"`
	Truncated          bool            `json:"truncated"`
	NextAfter          string          `json:"next_after,omitempty"`
}

// keysFlag is a list of keys, comma-separated, the flag given once or more.
type keysFlag struct{ keys []string }

func (f *keysFlag) String() string { return strings.Join(f.keys, ",") }

func (f *keysFlag) Set(s string) error {
	f.keys = append(f.keys, strings.Split(s, ",")...)
	return nil
}

func bindDiff(fs *flag.FlagSet) runner {
	var from, to timeFlag
	fs.Var(&from, "from", "the earlier time: Unix seconds or RFC 3339")
	fs.Var(&to, "to", "the later time: Unix seconds or RFC 3339")
	var keys keysFlag
	fs.Var(&keys, "keys", "compare only these keys (k1,k2; not with PREFIX)")
	pages := bindPageFlags(fs)
	return func(ctx context.Context, e *env, args []string) error {
		if !from.set || !to.set {
			return usagef("diff needs --from and --to")
		}
		var opts []client.Option
		if keys.keys != nil {
			if len(args) > 0 {
				return usagef("give --keys or PREFIX, not both")
			}
			opts = append(opts, client.Keys(keys.keys...))
		}
		prefix := ""
		if len(args) > 0 {
			prefix = args[0]
		}
		res := diffAnswer{Stats: map[string]int{"created": 0, "modified": 0, "deleted": 0}, Changes: []client.Change{}}
		after := pages.after
		for {
			d, err := e.client.Diff(ctx, from.t, to.t, append(pages.options(prefix, after), opts...)...)
			if err != nil {
				return err
			}
			res.From, res.To = unixtime.Of(d.From), unixtime.Of(d.To)
			res.Stats["created"] += d.Created
			res.Stats["modified"] += d.Modified
			res.Stats["deleted"] += d.Deleted
			res.Changes, res.GapKeys = append(res.Changes, d.Changes...), append(res.GapKeys, d.GapKeys...)
			res.CandidateTruncated, res.Truncated, res.NextAfter = d.Truncated, d.Cut, d.NextAfter
			if err := pages.next(&after, d.NextAfter); err != nil {
				return err
			}
			if after == "" {
				break
			}
		}
		res.HasGaps = len(res.GapKeys) > 0
		if res.GapKeys == nil {
			res.GapKeys = []string{} // kvd's answer has the list, empty or not
		}
		// Plain: the change, KEY, and the values (plainValue).
		return e.out.print(func() any { return res }, func(w io.Writer) {
			for _, c := range res.Changes {
				switch c.Change {
				case "created":
					fmt.Fprintf(w, "%s\t%s\t%s\n", c.Change, c.Key, plainValue(c.NewValue, c.NewEncoding, c.NewBytes))
				case "deleted":
					fmt.Fprintf(w, "%s\t%s\t%s\n", c.Change, c.Key, plainValue(c.OldValue, c.OldEncoding, c.OldBytes))
				default:
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Change, c.Key,
						plainValue(c.OldValue, c.OldEncoding, c.OldBytes), plainValue(c.NewValue, c.NewEncoding, c.NewBytes))
				}
			}
			warnPage(e, res.GapKeys, res.NextAfter)
		})
	}
}

// plainValue is a value of a change as kvd shows it (JSON), but a binary
// value as its bytes quoted, as snapshot prints values: its base64 text
// would read as a text value holding those characters.
func plainValue(shown json.RawMessage, encoding string, bytesOf func() ([]byte, bool)) string {
	if encoding == "" {
		return string(shown)
	}
	data, _ := bytesOf()
	return quote(data)
}
