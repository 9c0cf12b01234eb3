package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// RollbackKey undoes the last steps recorded writes of a key, as a new
// write (itself in history, so undoable). It returns the value the key
// holds now, nil when the rollback removed it. Options: DB, Table,
// NoHistory, CreateIfMissing.
func (c *Client) RollbackKey(ctx context.Context, key string, steps int, opts ...Option) (*Value, error) {
	cl, path, err := c.newKeyCall("RollbackKey", key, "rollback", opts, "DB", "Table", "NoHistory", "CreateIfMissing")
	if err != nil {
		return nil, err
	}
	cl.query.Set("steps", strconv.Itoa(steps))
	var res wireValue
	if _, err := c.sendJSON(ctx, request{method: http.MethodPost, path: path, call: cl}, &res); err != nil {
		return nil, err
	}
	v, err := res.value()
	if err != nil {
		return nil, fmt.Errorf("kvd: rollback of %q: %w", key, err)
	}
	if v.Data == nil && v.ContentType == "" {
		return nil, nil
	}
	return v, nil
}

// RollbackPlan is what a table rollback did, or with DryRun (or without
// Confirm) would do.
type RollbackPlan struct {
	DryRun bool `json:"dry_run"`
	// Count changes, the first of them in Changes: all of them unless
	// Truncated (kvd lists as many keys as its --max-answer-bytes allows).
	Count     int              `json:"count"`
	Changes   []RollbackChange `json:"changes"`
	Truncated bool             `json:"changes_truncated"`
	Message   string           `json:"message"`
	// To is the time kvd rolled back to, as it read t: a whole second
	// stands for its end.
	To time.Time `json:"-"`
}

// RollbackChange is the action on one key: "restore" or "delete".
type RollbackChange struct {
	Key    string `json:"key"`
	Action string `json:"action"`
}

// RollbackTable brings the table back to how it was at t, in one
// transaction. It writes only with Confirm and without DryRun; otherwise it
// reports the plan. When history cannot tell some key's state at t, nothing
// is written and the error is ErrTimeTravelGap with those keys in
// Error.Keys. Options: DB, Table, Keys (at least one) or ExcludeKeys,
// Confirm, DryRun, NoHistory, CreateIfMissing.
func (c *Client) RollbackTable(ctx context.Context, t time.Time, opts ...Option) (*RollbackPlan, error) {
	cl, err := c.newCall("RollbackTable", opts, "DB", "Table", "Keys", "ExcludeKeys", "Confirm", "DryRun", "NoHistory", "CreateIfMissing")
	if err != nil {
		return nil, err
	}
	cl.query.Set("to_timestamp", unixParam(t))
	body := map[string][]string{}
	if cl.keys != nil {
		body["keys"] = cl.keys
	}
	if cl.excludeKeys != nil {
		body["exclude_keys"] = cl.excludeKeys
	}
	req, err := jsonRequest(http.MethodPost, APIPrefix+"/kv/rollback", cl, body)
	if err != nil {
		return nil, err
	}
	var res struct {
		RollbackPlan
		ToTimestamp float64 `json:"to_timestamp"`
	}
	if _, err := c.sendJSON(ctx, req, &res); err != nil {
		return nil, err
	}
	res.To = unixTime(res.ToTimestamp)
	return &res.RollbackPlan, nil
}
