package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// CreatedDB is kvd's answer to CreateDB.
type CreatedDB struct {
	Path  string `json:"path"` // the file on kvd's host
	Table string `json:"table"`
}

// CreateDB creates an empty database with its KV table; path is named as
// the DB option names databases. An existing database is left as it is.
// Options: Table.
func (c *Client) CreateDB(ctx context.Context, path string, opts ...Option) (*CreatedDB, error) {
	cl, err := c.newCall("CreateDB", opts, "Table")
	if err != nil {
		return nil, err
	}
	cl.query.Set("path", path)
	var res CreatedDB
	if _, err := c.sendJSON(ctx, request{method: http.MethodPost, path: APIPrefix + "/db/create", call: cl}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Backup streams a consistent copy of the database, a SQLite file, while
// writes go on. The caller reads it to the end and closes it. Options: DB.
func (c *Client) Backup(ctx context.Context, opts ...Option) (io.ReadCloser, error) {
	cl, err := c.newCall("Backup", opts, "DB")
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: APIPrefix + "/db/backup", call: cl})
	if err != nil {
		return nil, err
	}
	// net/http reports a stream cut short of its Content-Length as
	// io.ErrUnexpectedEOF, so a truncated copy cannot pass for a whole one.
	return resp.Body, nil
}

// BackupTo writes a consistent copy of the database to w and returns its
// size. Options: DB.
func (c *Client) BackupTo(ctx context.Context, w io.Writer, opts ...Option) (int64, error) {
	body, err := c.Backup(ctx, opts...)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.Copy(w, body)
	if err != nil {
		return n, fmt.Errorf("kvd: backup: %w", err)
	}
	return n, nil
}
