package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

func bindBatchGet(fs *flag.FlagSet) runner {
	return func(ctx context.Context, e *env, args []string) error {
		keys, err := readBatchFile(args, e.stdin, readKeys)
		if err != nil {
			return err
		}
		values, err := e.client.BatchGet(ctx, keys)
		if err != nil {
			return err
		}
		jsonForm := func() any {
			out := make(map[string]*jsonValue, len(values))
			for k, v := range values {
				if v != nil {
					jv := newJSONValue(*v)
					out[k] = &jv
				} else {
					out[k] = nil
				}
			}
			return map[string]any{"values": out}
		}
		// Plain: in the order asked, a value quoted so that any bytes fit
		// on one line, and (nil) for a missing key, as redis-cli shows it.
		return e.out.print(jsonForm, func(w io.Writer) {
			for _, k := range keys {
				if v := values[k]; v != nil {
					fmt.Fprintf(w, "%s\t%s\n", k, quote(v.Data))
				} else {
					fmt.Fprintf(w, "%s\t(nil)\n", k)
				}
			}
		})
	}
}

func bindBatchSet(fs *flag.FlagSet) runner {
	wf := bindWriteFlags(fs, true)
	return func(ctx context.Context, e *env, args []string) error {
		items, err := readBatchFile(args, e.stdin, readItems)
		if err != nil {
			return err
		}
		res, err := e.client.BatchSet(ctx, items, wf.options()...)
		if err != nil {
			return err
		}
		return e.out.print(func() any { return res }, func(w io.Writer) {
			fmt.Fprintf(w, "%d written, %d created\n", res.Count, len(res.Created))
		})
	}
}

func bindBatchDel(fs *flag.FlagSet) runner {
	wf := bindWriteFlags(fs, false)
	return func(ctx context.Context, e *env, args []string) error {
		keys, err := readBatchFile(args, e.stdin, readKeys)
		if err != nil {
			return err
		}
		n, err := e.client.BatchDelete(ctx, keys, wf.options()...)
		if err != nil {
			return err
		}
		return e.out.print(func() any { return map[string]int{"deleted": n} }, func(w io.Writer) { fmt.Fprintf(w, "%d deleted\n", n) })
	}
}
