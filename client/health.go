package client

import (
	"context"
	"net/http"
)

// Health reports whether kvd is alive (GET /healthz).
func (c *Client) Health(ctx context.Context) error { return c.probe(ctx, "/healthz") }

// Ready reports whether kvd serves requests (GET /readyz); a draining kvd
// answers 503.
func (c *Client) Ready(ctx context.Context) error { return c.probe(ctx, "/readyz") }

func (c *Client) probe(ctx context.Context, path string) error {
	cl, err := c.newCall(path, nil)
	if err != nil {
		return err
	}
	_, err = c.sendJSON(ctx, request{method: http.MethodGet, path: path, call: cl}, nil)
	return err
}
