package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// ArrayResult is a JSON array value after push, pop or remove.
type ArrayResult struct {
	Key    string `json:"key"`
	Length int    `json:"newLength"`
	// Value is the element Pop took: null when the array was empty.
	Value json.RawMessage `json:"value"`
	// Removed counts the elements Remove took out.
	Removed int `json:"removed"`
}

// Push appends element (marshalled with encoding/json; pass a
// json.RawMessage for JSON text) to the array at key, which starts empty
// when missing. Options: DB, Table, Path, NoHistory, CreateIfMissing.
func (c *Client) Push(ctx context.Context, key string, element any, opts ...Option) (*ArrayResult, error) {
	return c.arrayOp(ctx, "Push", "push", key, element, opts, nil)
}

// Pop takes the last element of the array at key. Options as Push.
func (c *Client) Pop(ctx context.Context, key string, opts ...Option) (*ArrayResult, error) {
	return c.arrayOp(ctx, "Pop", "pop", key, nil, opts, nil)
}

// Remove takes every element equal to element out of the array at key.
// Options as Push.
func (c *Client) Remove(ctx context.Context, key string, element any, opts ...Option) (*ArrayResult, error) {
	return c.arrayOp(ctx, "Remove", "remove", key, element, opts, nil)
}

// RemoveAt takes the element at index out of the array at key. Options as
// Push.
func (c *Client) RemoveAt(ctx context.Context, key string, index int, opts ...Option) (*ArrayResult, error) {
	return c.arrayOp(ctx, "RemoveAt", "remove", key, nil, opts, &index)
}

func (c *Client) arrayOp(ctx context.Context, endpoint, op, key string, element any, opts []Option, index *int) (*ArrayResult, error) {
	cl, path, err := c.newKeyCall(endpoint, key, op, opts, "DB", "Table", "Path", "NoHistory", "CreateIfMissing")
	if err != nil {
		return nil, err
	}
	req := request{method: http.MethodPost, path: path, call: cl}
	switch {
	case index != nil:
		cl.query.Set("index", strconv.Itoa(*index))
	case op != "pop":
		if req, err = jsonRequest(http.MethodPost, path, cl, element); err != nil {
			return nil, err
		}
	}
	var res ArrayResult
	if _, err := c.sendJSON(ctx, req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
