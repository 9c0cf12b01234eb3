package client_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
)

// encoding/json sends a string that is not UTF-8 as U+FFFD: the client
// would write, delete or read the key "inv\ufffdkey" when asked for
// "inv\xffkey". Every JSON body refuses such a string instead, naming it.
func TestJSONBodies_RefuseStringsThatAreNotUTF8(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	const replaced = "inv\ufffdkey" // what "inv\xffkey" became on the wire
	if _, err := c.BatchSet(ctx, []client.Item{{Key: replaced, Value: client.Text("kept")}, {Key: "rt\ufffdk", Value: client.Text("kept")}}); err != nil {
		t.Fatal(err)
	}
	type profile struct {
		Name string `json:"name"`
	}
	calls := map[string]func() error{
		"BatchSet": func() error {
			_, err := c.BatchSet(ctx, []client.Item{{Key: "inv\xffkey", Value: client.Text("new")}})
			return err
		},
		"BatchDelete": func() error { _, err := c.BatchDelete(ctx, []string{"inv\xffkey"}); return err },
		"BatchGet":    func() error { _, err := c.BatchGet(ctx, []string{"inv\xffkey"}); return err },
		"RollbackTable": func() error {
			_, err := c.RollbackTable(ctx, time.Now().Add(-time.Hour), client.Keys("rt\xffk"), client.Confirm())
			return err
		},
		"Push":             func() error { _, err := c.Push(ctx, "arr", "x\xff"); return err },
		"PutJSON":          func() error { _, err := c.PutJSON(ctx, "doc", profile{Name: "x\xff"}); return err },
		"PutJSON, map key": func() error { _, err := c.PutJSON(ctx, "doc", map[string][]any{"tags\xfe": {1}}); return err },
	}
	for name, call := range calls {
		err := call()
		method, _, _ := strings.Cut(name, ",")
		var arg *client.ArgumentError
		if !errors.As(err, &arg) || arg.Method != method || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s: got %v, want an *ArgumentError of %s saying the string is not UTF-8", name, err, method)
		}
	}
	values, err := c.BatchGet(ctx, []string{replaced, "rt\ufffdk", "arr", "doc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{replaced, "rt\ufffdk"} {
		if v := values[k]; v == nil || v.String() != "kept" {
			t.Errorf("%q: got %v, want it kept as it was", k, v)
		}
	}
	for _, k := range []string{"arr", "doc"} {
		if v := values[k]; v != nil {
			t.Errorf("%q: got %q, want nothing written", k, v.Data)
		}
	}
}

// Only strings encoding/json would change are refused: a real U+FFFD,
// and what it does not encode as a string of the caller's (a field it
// skips, []byte, a json.RawMessage spelling the escape) go out as they are.
func TestJSONBodies_SendWhatEncodesExactly(t *testing.T) {
	c, ctx := newClient(t), testContext(t)
	doc := struct {
		Name    string          `json:"name"`
		Skipped string          `json:"-"`
		hidden  string          // unexported: encoding/json skips it
		Bytes   []byte          `json:"bytes"`
		Raw     json.RawMessage `json:"raw"`
	}{Name: "real \ufffd", Skipped: "\xff", hidden: "\xff", Bytes: []byte{0xff}, Raw: json.RawMessage(`"\ufffd"`)}
	if _, err := c.PutJSON(ctx, "doc", doc); err != nil {
		t.Fatalf("PutJSON: %v", err)
	}
	e, err := c.Get(ctx, "doc")
	if want := `{"name":"real ` + "\ufffd" + `","bytes":"/w==","raw":"\ufffd"}`; err != nil || string(e.Data) != want {
		t.Errorf("stored %q, %v; want %q", e.Data, err, want)
	}
	if res, err := c.Push(ctx, "arr", json.RawMessage(`"x\ufffd"`)); err != nil || res.Length != 1 {
		t.Errorf("Push of a RawMessage holding the escape: got %+v, %v", res, err)
	}
	values, err := c.BatchGet(ctx, []string{"real\ufffd"})
	if v, ok := values["real\ufffd"]; err != nil || !ok || v != nil {
		t.Errorf("BatchGet of a key holding U+FFFD: got %v, %v; want it asked and missing", values, err)
	}
}
