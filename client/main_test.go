package client_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

// kvdURL is a kvd shared by the tests and examples of this package, each
// in a database of its own. Tests that need a clock or tokens start their
// own server.
var kvdURL string

func TestMain(m *testing.M) {
	srv, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kvdURL = srv.URL
	code := m.Run()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

var (
	unsafeDBChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)
	dbSerial      atomic.Int64 // keeps databases apart across -count runs
)

// newClient returns a client of the shared kvd whose database, named after
// the test, exists and is empty.
func newClient(tb testing.TB) *client.Client {
	tb.Helper()
	return newClientOf(tb, kvdURL, "")
}

// newClientOf is newClient for a server of the test's own, with a token.
func newClientOf(tb testing.TB, url, token string) *client.Client {
	tb.Helper()
	db := fmt.Sprintf("%s_%d", unsafeDBChars.ReplaceAllString(tb.Name(), "_"), dbSerial.Add(1))
	c, err := client.New(client.Config{URL: url, DB: db, Token: token})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	if _, err := c.CreateDB(testContext(tb), db); err != nil {
		tb.Fatalf("create database %s: %v", db, err)
	}
	return c
}

// testContext bounds every call of a test, so a hung server fails the test
// instead of the whole run.
func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// clockServer starts a kvd of the test's own whose clock moves only when
// the test says.
func clockServer(tb testing.TB) (*client.Client, *clienttest.Clock) {
	tb.Helper()
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	srv := clienttest.New(tb, clienttest.Options{Now: clock.Now})
	return newClientOf(tb, srv.URL, ""), clock
}
