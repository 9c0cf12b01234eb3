package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// Tokens is the set of bearer tokens the API accepts, read from a file with
// one token per line (blank lines and # comments skipped). Reload swaps the
// set atomically, so SIGHUP can rotate tokens without a restart.
type Tokens struct {
	path   string
	hashes atomic.Pointer[[][sha256.Size]byte]
}

// LoadTokens reads the token file. A file without tokens is an error: it
// would lock every client out.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	return t, t.Reload()
}

// Reload rereads the file; on error the previous tokens stay in force.
func (t *Tokens) Reload() error {
	tokens, err := ReadTokenFile(t.path)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		return fmt.Errorf("token file %s holds no token", t.path)
	}
	hashes := make([][sha256.Size]byte, len(tokens))
	for i, token := range tokens {
		hashes[i] = sha256.Sum256([]byte(token))
	}
	t.hashes.Store(&hashes)
	return nil
}

// ReadTokenFile reads the tokens of a token file, one per line, blank
// lines and # comments skipped: the file --auth-token-file names, and the
// one a cluster node takes its token for peers from.
func ReadTokenFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	var tokens []string
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte-order mark some editors write would join the first token
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, line)
	}
	return tokens, nil
}

// allows checks an Authorization header. Comparing fixed-size hashes of
// every token, without stopping at a match, leaks neither a token's length
// nor which token matched.
func (t *Tokens) allows(authorization string) bool {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") { // schemes are case-insensitive (RFC 9110)
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, h := range *t.hashes.Load() {
		match |= subtle.ConstantTimeCompare(sum[:], h[:])
	}
	return match == 1
}

// soleAuthorization is the request's Authorization header, or "" (no
// token) when it has several: which of them a proxy in front checked, or
// logged, is anyone's guess, so none counts.
func soleAuthorization(r *http.Request) string {
	if values := r.Header.Values("Authorization"); len(values) == 1 {
		return values[0]
	}
	return ""
}

// needsToken reports whether a path is part of the API. Health, readiness,
// metrics and the API description stay open for probes and scrapers.
func needsToken(path string) bool {
	return strings.HasPrefix(path, "/api/") && path != "/api/v1/openapi.json"
}

// stillAllows returns a check that authorization, which a request was
// allowed with, is still in force: a watch stream runs on for as long as
// its client stays, and a token rotated out (SIGHUP) must end it too. It
// compares hashes again only after a reload. Without tokens (nil) every
// check passes.
func (t *Tokens) stillAllows(authorization string) func() bool {
	if t == nil {
		return func() bool { return true }
	}
	checked := t.hashes.Load()
	return func() bool {
		if now := t.hashes.Load(); now != checked {
			if !t.allows(authorization) {
				return false
			}
			checked = now
		}
		return true
	}
}
