package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/kvd/kvd/client"
)

// writeFlags are the flags every write takes.
type writeFlags struct{ noHistory, create *bool }

func bindWriteFlags(fs *flag.FlagSet, create bool) writeFlags {
	w := writeFlags{noHistory: fs.Bool("no-history", false, "do not keep this write's value in history")}
	if create {
		w.create = fs.Bool("create", false, "create the database if it does not exist")
	}
	return w
}

func (w writeFlags) options() []client.Option {
	var opts []client.Option
	if *w.noHistory {
		opts = append(opts, client.NoHistory())
	}
	if w.create != nil && *w.create {
		opts = append(opts, client.CreateIfMissing())
	}
	return opts
}

// entryJSON is get --json: the value as kvd's batch get shows it, and the
// metadata with times in Unix seconds.
type entryJSON struct {
	Key string `json:"key"`
	jsonValue
	Version         int64  `json:"version,omitempty"`
	CreatedAt       int64  `json:"created_at,omitempty"`
	UpdatedAt       int64  `json:"updated_at,omitempty"`
	ExpiresAt       int64  `json:"expires_at,omitempty"`
	Reference       bool   `json:"reference,omitempty"`
	ReferenceTarget string `json:"reference_target,omitempty"`
}

// unixOf is t in Unix seconds, 0 (omitted) for the zero time.
func unixOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func bindGet(fs *flag.FlagSet) runner {
	path := bindPath(fs, "print only the JSON fragment at this path (prefs.theme, items[0])")
	var at timeFlag
	fs.Var(&at, "at", "the value as it was at this time: Unix seconds or RFC 3339")
	return func(ctx context.Context, e *env, args []string) error {
		opts := path.options()
		if at.set {
			opts = append(opts, client.At(at.t))
		}
		entry, err := e.client.Get(ctx, args[0], opts...)
		if err != nil {
			return err
		}
		jsonForm := func() any {
			return entryJSON{Key: entry.Key, jsonValue: newJSONValue(entry.Value), Version: entry.Version,
				CreatedAt: unixOf(entry.CreatedAt), UpdatedAt: unixOf(entry.UpdatedAt), ExpiresAt: unixOf(entry.ExpiresAt),
				Reference: entry.Reference, ReferenceTarget: entry.ReferenceTarget}
		}
		return e.out.print(jsonForm, func(w io.Writer) {
			w.Write(entry.Data)
			if e.out.terminal && !bytes.HasSuffix(entry.Data, []byte("\n")) {
				io.WriteString(w, "\n")
			}
		})
	}
}

func bindPut(fs *flag.FlagSet) runner {
	file := fs.String("file", "", "read the value from this file (- for stdin)")
	contentType := fs.String("content-type", "", "the value's content type (default: kvd infers JSON, text or binary)")
	var ttl ttlFlag
	fs.Var(&ttl, "ttl", "expire after this long: seconds or a duration such as 1h")
	var ifMatch stringFlag
	fs.Var(&ifMatch, "if-match", "write only if the stored value is exactly this")
	var ifVersion versionFlag
	fs.Var(&ifVersion, "if-version", "write only if the key's version (ETag) is still this")
	ifAbsent := fs.Bool("if-absent", false, "write only if the key does not exist")
	path := bindPath(fs, "replace only the JSON leaf at this path (the value must be JSON)")
	ref := fs.Bool("ref", false, "store a reference to the key the value names")
	wf := bindWriteFlags(fs, true)
	return func(ctx context.Context, e *env, args []string) error {
		if *ifAbsent && (ifVersion.set || ifMatch.set) {
			// A key both absent and holding something: no write could pass.
			return usagef("--if-absent asks for a missing key; it goes with neither --if-version nor --if-match")
		}
		data, err := readValue(args[1:], *file, e.stdin)
		if err != nil {
			return err
		}
		opts := wf.options()
		if ttl.d > 0 {
			opts = append(opts, client.TTL(ttl.d))
		}
		if ifMatch.set {
			opts = append(opts, client.IfMatch([]byte(ifMatch.s)))
		}
		opts = append(opts, ifVersion.options()...)
		if *ifAbsent {
			opts = append(opts, client.IfAbsent())
		}
		opts = append(opts, path.options()...)
		if *ref {
			opts = append(opts, client.Ref())
		}
		res, err := e.client.Put(ctx, args[0], client.Value{Data: data, ContentType: *contentType}, opts...)
		if err != nil {
			return err
		}
		return e.out.print(func() any { return map[string]any{"key": res.Key, "created": res.Created, "version": res.Version} }, func(w io.Writer) {
			if res.Created {
				fmt.Fprintln(w, "created")
			} else {
				fmt.Fprintln(w, "updated")
			}
		})
	}
}

// readValue takes the value from the operand, the --file, or stdin; "-"
// means stdin either way.
func readValue(operand []string, file string, stdin io.Reader) ([]byte, error) {
	switch {
	case len(operand) > 0 && file != "":
		return nil, usagef("put takes a VALUE or --file, not both")
	case len(operand) > 0 && operand[0] != "-":
		return []byte(operand[0]), nil
	case file != "" && file != "-":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("read value: %v", err)
		}
		return data, nil
	}
	data, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("read value from stdin: %w", err)
	}
	return data, nil
}

func bindDel(fs *flag.FlagSet) runner {
	var ifVersion versionFlag
	fs.Var(&ifVersion, "if-version", "delete only if the key's version (ETag) is still this")
	wf := bindWriteFlags(fs, false)
	return func(ctx context.Context, e *env, args []string) error {
		opts := append(wf.options(), ifVersion.options()...)
		if err := e.client.Delete(ctx, args[0], opts...); err != nil {
			return err
		}
		return e.out.print(func() any { return map[string]any{"key": args[0], "deleted": true} }, func(w io.Writer) { fmt.Fprintln(w, "deleted") })
	}
}

func bindExists(fs *flag.FlagSet) runner {
	return func(ctx context.Context, e *env, args []string) error {
		ok, err := e.client.Exists(ctx, args[0])
		if err != nil {
			return err
		}
		if err := e.out.print(func() any { return map[string]any{"key": args[0], "exists": ok} }, func(w io.Writer) { fmt.Fprintln(w, ok) }); err != nil {
			return err
		}
		if !ok {
			return errNotFound
		}
		return nil
	}
}

type countFunc func(*client.Client, context.Context, string, int64, ...client.Option) (*client.Counter, error)

// bindCount makes incr and decr, which differ only in the method called.
func bindCount(count countFunc) func(fs *flag.FlagSet) runner {
	return func(fs *flag.FlagSet) runner {
		path := bindPath(fs, "count the number at this JSON path inside the value")
		wf := bindWriteFlags(fs, true)
		return func(ctx context.Context, e *env, args []string) error {
			delta := int64(1)
			if len(args) > 1 {
				n, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil || n <= 0 {
					return usagef("DELTA must be a positive whole number, got %q", args[1])
				}
				delta = n
			}
			opts := wf.options()
			opts = append(opts, path.options()...)
			n, err := count(e.client, ctx, args[0], delta, opts...)
			if err != nil {
				return err
			}
			return e.out.print(func() any { return n }, func(w io.Writer) { fmt.Fprintln(w, n.Value) })
		}
	}
}
