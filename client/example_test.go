package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kvd/kvd/client"
)

// The examples run against the kvd that TestMain starts; kvdURL is its
// address, such as http://127.0.0.1:8080.

func Example() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	type user struct {
		Name  string `json:"name"`
		Theme string `json:"theme"`
	}
	// The first write creates the database file.
	if _, err := c.PutJSON(ctx, "users/alice", user{"Alice", "dark"}, client.CreateIfMissing()); err != nil {
		log.Fatal(err)
	}
	var u user
	if _, err := c.GetJSON(ctx, "users/alice", &u); err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Name, u.Theme)

	_, err = c.Get(ctx, "users/bob")
	fmt.Println(errors.Is(err, client.ErrKeyNotFound))
	// Output:
	// Alice dark
	// true
}

func ExampleClient_Put() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_put"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	res, err := c.Put(ctx, "sessions/abc", client.Text("token-1"), client.TTL(time.Hour), client.CreateIfMissing())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", res.Created)

	// Compare-and-swap on the stored bytes.
	_, err = c.Put(ctx, "sessions/abc", client.Text("token-2"), client.IfMatch([]byte("token-0")))
	fmt.Println("stale swap:", errors.Is(err, client.ErrCASMismatch))
	_, err = c.Put(ctx, "sessions/abc", client.Text("token-2"), client.IfMatch([]byte("token-1")))
	fmt.Println("swap:", err)
	// Output:
	// created: true
	// stale swap: true
	// swap: <nil>
}

func ExampleClient_Get() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_get"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	doc := client.RawJSON([]byte(`{"prefs":{"theme":"dark","langs":["en","fr"]}}`))
	if _, err := c.Put(ctx, "users/alice", doc, client.CreateIfMissing()); err != nil {
		log.Fatal(err)
	}
	e, err := c.Get(ctx, "users/alice", client.Path("prefs.langs[1]"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.String(), e.ContentType, e.Version > 0)
	// Output: "fr" application/json true
}

func ExampleClient_Incr() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_incr"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A key may end in an operation word: it travels as counters%2Fincr.
	for _, delta := range []int64{1, 10} {
		n, err := c.Incr(ctx, "counters/incr", delta, client.CreateIfMissing())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n.Previous, "->", n.Value)
	}
	n, err := c.Decr(ctx, "counters/incr", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n.Value)
	// Output:
	// 0 -> 1
	// 1 -> 11
	// 10
}

func ExampleClient_BatchSet() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_batch"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	res, err := c.BatchSet(ctx, []client.Item{
		{Key: "flag", Value: client.Text("on"), TTL: time.Minute},
		{Key: "user:1", Value: client.RawJSON([]byte(`{"name":"Alice"}`))},
		{Key: "blob", Value: client.Binary([]byte{0xff, 0x00})},
	}, client.CreateIfMissing())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("written:", res.Count)

	values, err := c.BatchGet(ctx, []string{"user:1", "blob", "nope"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %q %v\n", values["user:1"].Data, values["blob"].Data, values["nope"])
	// Output:
	// written: 3
	// {"name":"Alice"} "\xff\x00" <nil>
}

func ExampleClient_List() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_list"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, k := range []string{"users/carol", "users/alice", "orders/1", "users/bob"} {
		if _, err := c.Put(ctx, k, client.Text("x"), client.CreateIfMissing()); err != nil {
			log.Fatal(err)
		}
	}
	page, err := c.List(ctx, client.Prefix("users/"), client.Limit(2))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(page.Keys)
	// Output: [users/alice users/bob]
}

func ExampleClient_History() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_history"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, v := range []string{"v1", "v2"} {
		if _, err := c.Put(ctx, "config", client.Text(v), client.CreateIfMissing()); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := c.Incr(ctx, "config", 1); err == nil {
		log.Fatal("incr of text succeeded")
	}
	ops, err := c.History(ctx, "config")
	if err != nil {
		log.Fatal(err)
	}
	for _, op := range ops {
		fmt.Printf("%s %q -> %q\n", op.Op, op.OldValue, op.NewValue)
	}
	// Undo the last write.
	v, err := c.RollbackKey(ctx, "config", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("now:", v.String())
	// Output:
	// set "v1" -> "v2"
	// set "" -> "v1"
	// now: v1
}

func ExampleError() {
	ctx := context.Background()
	c, err := client.New(client.Config{URL: kvdURL, DB: "example_missing_db"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Get(ctx, "anything")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Code)
	}
	fmt.Println(errors.Is(err, client.ErrDatabaseNotFound), client.IsNotFound(err))
	// Output:
	// 404 DATABASE_NOT_FOUND
	// true true
}
