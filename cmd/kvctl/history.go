package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/kvd/kvd/client"
)

// historyJSON is one operation for --json. Values are text when they are
// UTF-8, else base64 in the *_base64 field.
type historyJSON struct {
	OpNumber       int64   `json:"op_number"`
	Timestamp      float64 `json:"timestamp"`
	Op             string  `json:"op"`
	OldValue       *string `json:"old_value,omitempty"`
	OldValueBase64 string  `json:"old_value_base64,omitempty"`
	NewValue       *string `json:"new_value,omitempty"`
	NewValueBase64 string  `json:"new_value_base64,omitempty"`
	ContentType    string  `json:"content_type,omitempty"`
	Unrecorded     bool    `json:"unrecorded,omitempty"`
}

func textOrBase64(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

func bindHistory(fs *flag.FlagSet) runner {
	limit := fs.Int("limit", 0, "at most this many writes (kvd's default 50, at most 1000)")
	return func(ctx context.Context, e *env, args []string) error {
		var opts []client.Option
		if *limit != 0 {
			opts = append(opts, client.Limit(*limit))
		}
		ops, err := e.client.History(ctx, args[0], opts...)
		if err != nil {
			return err
		}
		jsonForm := func() any {
			out := make([]historyJSON, len(ops))
			for i, op := range ops {
				out[i] = historyJSON{OpNumber: op.OpNumber, Timestamp: float64(op.Time.UnixMilli()) / 1000, Op: op.Op,
					ContentType: op.ContentType, Unrecorded: op.Unrecorded}
				out[i].OldValue, out[i].OldValueBase64 = textOrBase64(op.OldValue)
				out[i].NewValue, out[i].NewValueBase64 = textOrBase64(op.NewValue)
			}
			return map[string]any{"key": args[0], "operations": out}
		}
		// Plain: op number, UTC time, operation, and the value it left.
		return e.out.print(jsonForm, func(w io.Writer) {
			for _, op := range ops {
				value := "-"
				switch {
				case op.Unrecorded:
					value = "(unrecorded)"
				case op.NewValue != nil:
					value = quote(op.NewValue)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", op.OpNumber, op.Time.UTC().Format(time.RFC3339Nano), op.Op, value)
			}
		})
	}
}
