package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/unixtime"
)

// historyAnswer is history --json: the shape of kvd's GET /kv/{key}/history
// answer, with every page kvctl read in one list.
type historyAnswer struct {
	Key        string         `json:"key"`
	Operations []historyEntry `json:"operations"`
	Truncated  bool           `json:"truncated"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

type historyEntry struct {
	OpNumber  int64           `json:"op_number"`
	Timestamp unixtime.Millis `json:"timestamp"`
	Operation historyOp       `json:"operation"`
}

// historyOp shows values as kvd does: JSON inline, anything else as base64
// in raw_old_value and raw_new_value.
type historyOp struct {
	Op          string          `json:"op"`
	OldValue    json.RawMessage `json:"old_value,omitempty"`
	NewValue    json.RawMessage `json:"new_value,omitempty"`
	RawOldValue *string         `json:"raw_old_value,omitempty"` // a pointer: "" is an empty value
	RawNewValue *string         `json:"raw_new_value,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Unrecorded  bool            `json:"unrecorded,omitempty"`
}

func newHistoryEntry(op client.Operation) historyEntry {
	e := historyEntry{OpNumber: op.OpNumber, Timestamp: unixtime.Of(op.Time),
		Operation: historyOp{Op: op.Op, ContentType: op.ContentType, Unrecorded: op.Unrecorded}}
	e.Operation.OldValue, e.Operation.RawOldValue = historyValue(op.OldValue, op.OldJSON)
	e.Operation.NewValue, e.Operation.RawNewValue = historyValue(op.NewValue, op.NewJSON)
	return e
}

func historyValue(b []byte, isJSON bool) (json.RawMessage, *string) {
	switch {
	case b == nil:
		return nil, nil
	case isJSON:
		return json.RawMessage(b), nil
	}
	raw := base64.StdEncoding.EncodeToString(b)
	return nil, &raw
}

func bindHistory(fs *flag.FlagSet) runner {
	limit := fs.Int("limit", 0, "at most this many writes (kvd's default 50, at most 1000)")
	return func(ctx context.Context, e *env, args []string) error {
		ops, next, err := readHistory(ctx, e.client, args[0], *limit)
		if err != nil {
			return err
		}
		jsonForm := func() any {
			out := historyAnswer{Key: args[0], Operations: make([]historyEntry, len(ops)), NextCursor: next}
			for i, op := range ops {
				out.Operations[i] = newHistoryEntry(op)
			}
			return out
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

// readHistory reads up to limit writes (kvd's default when 0), following
// kvd's cursors when it cuts an answer by bytes, and returns the cursor
// to the older writes left unread, as kvd's answer would.
func readHistory(ctx context.Context, c *client.Client, key string, limit int) ([]client.Operation, string, error) {
	want := limit
	if want == 0 {
		want = 50 // kvd's default; a bad limit is kvd's to refuse
	}
	var ops []client.Operation
	opts := []client.Option{}
	if limit != 0 {
		opts = append(opts, client.Limit(limit))
	}
	for {
		page, err := c.HistoryPage(ctx, key, opts...)
		if err != nil {
			return nil, "", err
		}
		ops = append(ops, page.Operations...)
		if page.NextCursor == "" || len(ops) >= want || len(page.Operations) == 0 {
			return ops, page.NextCursor, nil
		}
		opts = []client.Option{client.Cursor(page.NextCursor), client.Limit(want - len(ops))}
	}
}
