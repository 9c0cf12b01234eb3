package client_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/kvd/kvd/client"
)

func TestArrays_PushPopRemove(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	for i, el := range []any{map[string]int{"job": 1}, "two", json.RawMessage(`3`), "two"} {
		res, err := c.Push(ctx, "queue/a/pop", el)
		if err != nil || res.Length != i+1 {
			t.Fatalf("push %d: got %+v, %v", i, res, err)
		}
	}
	res, err := c.Remove(ctx, "queue/a/pop", "two")
	if err != nil || res.Removed != 2 || res.Length != 2 {
		t.Fatalf("remove two: got %+v, %v; want 2 removed, 2 left", res, err)
	}
	res, err = c.Pop(ctx, "queue/a/pop")
	if err != nil || string(res.Value) != "3" || res.Length != 1 {
		t.Fatalf("pop: got %+v, %v; want 3", res, err)
	}
	res, err = c.RemoveAt(ctx, "queue/a/pop", 0)
	if err != nil || res.Length != 0 {
		t.Fatalf("remove at 0: got %+v, %v", res, err)
	}
	res, err = c.Pop(ctx, "queue/a/pop")
	if err != nil || string(res.Value) != "null" || res.Length != 0 {
		t.Errorf("pop of an empty array: got %+v, %v; want null", res, err)
	}
	if _, err := c.PutJSON(ctx, "doc", map[string]any{"tags": []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Push(ctx, "doc", "b", client.Path("tags")); err != nil || res.Length != 2 {
		t.Errorf("push under a path: got %+v, %v", res, err)
	}
	if _, err := c.Push(ctx, "doc", "x"); !errors.Is(err, client.ErrInvalidParameters) {
		t.Errorf("push onto an object: got %v, want INVALID_PARAMETERS", err)
	}
}
