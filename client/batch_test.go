package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

func TestBatch_SetGetDeleteEveryKindOfValue(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	if _, err := c.Put(ctx, "existing", client.Text("old")); err != nil {
		t.Fatal(err)
	}
	items := []client.Item{
		{Key: "text", Value: client.Text("hello\nworld")},
		{Key: "json", Value: client.RawJSON([]byte(`{"a": 1}`))},
		{Key: "binary", Value: client.Binary(allBytes())},
		{Key: "raw bytes", Value: client.Value{Data: []byte{0xff, 0xfe}}},
		{Key: "dir/a/incr", Value: client.Text("slashes"), TTL: time.Hour},
		{Key: "existing", Value: client.Text("new")},
	}
	res, err := c.BatchSet(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != len(items) || len(res.Created) != len(items)-1 {
		t.Errorf("batch set: got %+v, want %d items, all but one created", res, len(items))
	}
	values, err := c.BatchGet(ctx, []string{"text", "json", "binary", "raw bytes", "dir/a/incr", "existing", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]client.Value{
		"text":       {Data: []byte("hello\nworld"), ContentType: "text/plain"},
		"json":       {Data: []byte(`{"a":1}`), ContentType: "application/json"}, // compacted by kvd
		"binary":     {Data: allBytes(), ContentType: "application/octet-stream"},
		"raw bytes":  {Data: []byte{0xff, 0xfe}, ContentType: "application/octet-stream"},
		"dir/a/incr": {Data: []byte("slashes"), ContentType: "text/plain"},
		"existing":   {Data: []byte("new"), ContentType: "text/plain"},
	}
	for k, w := range want {
		got := values[k]
		if got == nil || !bytes.Equal(got.Data, w.Data) || got.ContentType != w.ContentType {
			t.Errorf("%s: got %+v, want %+v", k, got, w)
		}
	}
	if v, ok := values["missing"]; !ok || v != nil {
		t.Errorf("missing: got %v, %v; want present and nil", v, ok)
	}
	if e, err := c.Get(ctx, "dir/a/incr"); err != nil || e.ExpiresAt.IsZero() {
		t.Errorf("item TTL: got %+v, %v; want an expiry", e, err)
	}
	n, err := c.BatchDelete(ctx, []string{"text", "json", "missing"})
	if err != nil || n != 2 {
		t.Errorf("batch delete: got %d, %v; want 2", n, err)
	}
}

func TestBatch_SizeLimitsAndAllOrNothing(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	if _, err := c.BatchGet(ctx, nil); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("empty batch: got %v, want INVALID_PARAMETERS", err)
	}
	var items []client.Item
	for i := range client.MaxBatch + 1 {
		items = append(items, client.Item{Key: fmt.Sprint("k", i), Value: client.Text("v")})
	}
	if _, err := c.BatchSet(ctx, items); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("101 items: got %v, want INVALID_PARAMETERS", err)
	}
	items = []client.Item{{Key: "good", Value: client.Text("v")}, {Key: strings.Repeat("k", 1025), Value: client.Text("v")}}
	if _, err := c.BatchSet(ctx, items); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("a key over 1024 bytes: got %v, want INVALID_PARAMETERS", err)
	}
	if ok, _ := c.Exists(ctx, "good"); ok {
		t.Error("a failed batch wrote its good item")
	}
	if _, err := c.BatchSet(ctx, []client.Item{{Key: "k", TTL: time.Millisecond}}); err == nil {
		t.Error("a TTL under a second: want a client-side error")
	}
}
