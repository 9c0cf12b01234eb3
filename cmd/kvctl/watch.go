package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/unixtime"
)

// watchLine is watch --json: one line per event, as kvd's data line.
type watchLine struct {
	Event       string          `json:"event"`
	Key         string          `json:"key,omitempty"`
	Op          string          `json:"op,omitempty"`
	OpNumber    int64           `json:"op_number,omitempty"`
	Timestamp   unixtime.Millis `json:"timestamp,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	RawValue    *string         `json:"raw_value,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	ResumeOp    int64           `json:"resume_op,omitempty"`
}

func bindWatch(fs *flag.FlagSet) runner {
	fromOp := fs.Int64("from-op", 0, "start after this op number (0: from the first write kept); default: from now")
	count := fs.Int("count", 0, "stop after this many events (0: never)")
	return func(ctx context.Context, e *env, args []string) error {
		// No number stands for "from now" or "never": a negative one is a
		// mistake, not a wish for the default.
		if *fromOp < 0 || *count < 0 {
			return usagef("--from-op and --count must not be negative")
		}
		key, opts := args[0], []client.Option{}
		if prefix, ok := strings.CutSuffix(key, "/"); ok || key == "" {
			key, opts = "", append(opts, client.Prefix(prefix+"/"))
			if prefix == "" {
				opts = opts[:0] // "/": the whole table
			}
		}
		if given(fs, "from-op") {
			opts = append(opts, client.FromOp(*fromOp))
		}
		n := 0
		for ev, err := range e.client.Watch(ctx, key, opts...) {
			if err != nil {
				return err
			}
			if err := printWatchEvent(e.out, ev); err != nil {
				return err
			}
			if n++; *count > 0 && n >= *count {
				return nil
			}
		}
		return ctx.Err()
	}
}

// printWatchEvent writes one event as it comes (plain: op number, UTC
// time, op, key, and the value quoted; a gap says where history resumes).
func printWatchEvent(o *output, ev client.WatchEvent) error {
	if o.json {
		l := watchLine{Event: ev.Op, Key: ev.Key, Op: ev.Op, OpNumber: ev.OpNumber, ContentType: ev.ContentType, ResumeOp: ev.ResumeOp}
		if ev.Gap {
			l.Event = "gap"
		}
		if !ev.Time.IsZero() {
			l.Timestamp = unixtime.Of(ev.Time)
		}
		if ev.Value != nil && ev.JSON {
			l.Value = json.RawMessage(ev.Value)
		} else if ev.Value != nil {
			raw := base64.StdEncoding.EncodeToString(ev.Value)
			l.RawValue = &raw
		}
		return writeJSON(o.w, l)
	}
	var err error
	switch {
	case ev.Gap && ev.Key == "":
		_, err = fmt.Fprintf(o.w, "-\t-\tgap\t-\t(history pruned; whole again from op %d)\n", ev.ResumeOp)
	case ev.Gap:
		_, err = fmt.Fprintf(o.w, "%d\t%s\t%s\t%s\t(unrecorded)\n", ev.OpNumber, ev.Time.UTC().Format(time.RFC3339Nano), ev.Op, quoteArg(ev.Key))
	default:
		value := "-"
		if ev.Value != nil {
			value = quote(ev.Value)
		}
		_, err = fmt.Fprintf(o.w, "%d\t%s\t%s\t%s\t%s\n", ev.OpNumber, ev.Time.UTC().Format(time.RFC3339Nano), ev.Op, quoteArg(ev.Key), value)
	}
	return err
}
