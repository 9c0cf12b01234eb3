package client_test

import (
	"testing"

	"github.com/kvd/kvd/client"
)

func TestEscapeKey_LikeEncodeURIComponent(t *testing.T) {
	for key, want := range map[string]string{
		"users/alice": "users%2Falice",
		"a b+c":       "a%20b%2Bc",
		"x?y#z&w=1":   "x%3Fy%23z%26w%3D1",
		"-_.!~*'()":   "-_.!~*'()",
		"ü":           "%C3%BC",
		"100%":        "100%25",
		"snapshot":    "snapshot", // the methods, not EscapeKey, keep it off the table endpoint
	} {
		if got := client.EscapeKey(key); got != want {
			t.Errorf("EscapeKey(%q) = %q, want %q", key, got, want)
		}
	}
}
