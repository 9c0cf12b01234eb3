package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kvd/kvd/client"
)

// globals are the flags every command takes, before or after its name.
type globals struct {
	url, db, table, token string
	caFile                string
	json                  bool
	timeout               time.Duration
}

// newGlobals starts from the environment, so a flag given on the command
// line wins over it.
func newGlobals(getenv func(string) string) *globals {
	return &globals{url: getenv("KVCTL_URL"), db: getenv("KVCTL_DB"), token: getenv("KVCTL_TOKEN"), caFile: getenv("KVCTL_CA_FILE"), timeout: 30 * time.Second}
}

// register binds the global flags on fs. Both the top-level flag set and
// the command's take them, bound to the same fields, with the values parsed
// so far as defaults.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", g.url, "kvd's address (env KVCTL_URL)")
	fs.StringVar(&g.db, "db", g.db, "database (env KVCTL_DB)")
	fs.StringVar(&g.table, "table", g.table, "table (default kv_store)")
	fs.StringVar(&g.token, "token", g.token, "bearer token (env KVCTL_TOKEN)")
	fs.StringVar(&g.caFile, "ca-file", g.caFile, "PEM file of the CA to trust for an https URL (env KVCTL_CA_FILE)")
	fs.BoolVar(&g.json, "json", g.json, "print JSON")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up after this long")
}

func (g *globals) client() (*client.Client, error) {
	if g.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive")
	}
	return client.New(client.Config{URL: g.url, DB: g.db, Table: g.table, Token: g.token, CAFile: g.caFile})
}

// parseInterspersed parses flags wherever they appear among the operands,
// as users type them ("kvctl get k --db app"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endsFlags(fs, args[:len(args)-len(rest)]) {
			return append(operands, rest...), nil
		}
		if len(rest) == 0 {
			return operands, nil
		}
		operands, args = append(operands, rest[0]), rest[1:]
	}
}

// endsFlags tells whether fs.Parse stopped at the parsed args' "--" that
// ends the flags, rather than at an operand: a "--" that is a flag's value
// (--if-match --) ends nothing.
func endsFlags(fs *flag.FlagSet, parsed []string) bool {
	for i := 0; i < len(parsed); i++ {
		arg := parsed[i]
		if arg == "--" {
			return true
		}
		name := strings.TrimLeft(arg, "-")
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) {
			i++ // its value, whatever it looks like
		}
	}
	return false
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// timeFlag reads a time as Unix seconds (decimals allowed) or RFC 3339.
type timeFlag struct {
	t   time.Time
	set bool
}

func (f *timeFlag) String() string {
	if !f.set {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(s string) error {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		whole, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || secs < 0 {
			return fmt.Errorf("want Unix seconds or RFC 3339")
		}
		ms, _ := strconv.Atoi((frac + "000")[:3])
		f.t, f.set = time.Unix(sec, int64(ms)*int64(time.Millisecond)), true
		if frac != "" && ms == 0 {
			// "1700000000.0" names the instant, not the end of the second.
			f.t = f.t.Add(time.Nanosecond)
		}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("want Unix seconds or RFC 3339")
	}
	f.t, f.set = t, true
	if t.Nanosecond() == 0 && strings.Contains(s, ".") {
		// "…T23:23:55.000Z" names the instant too, as "….000" does.
		f.t = f.t.Add(time.Nanosecond)
	}
	return nil
}

// ttlFlag reads a TTL as whole seconds ("3600") or a duration ("1h").
type ttlFlag struct{ d time.Duration }

func (f *ttlFlag) String() string { return "" }

func (f *ttlFlag) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if f.d, err = seconds(n); err != nil {
			return err
		}
	} else if f.d, err = time.ParseDuration(s); err != nil {
		return fmt.Errorf("want seconds or a duration such as 1h")
	}
	if f.d <= 0 || f.d%time.Second != 0 {
		return fmt.Errorf("want a positive whole number of seconds")
	}
	return nil
}

// pathFlag is --path. Once given, even empty, it goes to kvd, which
// refuses an empty one: dropped, the command would act on the whole value
// (a script whose path variable was unset replaced a whole document).
type pathFlag struct{ stringFlag }

func bindPath(fs *flag.FlagSet, usage string) *pathFlag {
	var path pathFlag
	fs.Var(&path, "path", usage)
	return &path
}

func (f *pathFlag) options() []client.Option {
	if !f.set {
		return nil
	}
	return []client.Option{client.Path(f.s)}
}

// seconds is n seconds, refused where a Duration would wrap around (a
// TTL of 36028797018964028 s went to kvd as 60 s).
func seconds(n int64) (time.Duration, error) {
	if n > int64(math.MaxInt64/time.Second) || n < 0 {
		return 0, fmt.Errorf("want a positive whole number of seconds, at most %d", int64(math.MaxInt64/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// stringFlag is a string flag that knows whether it was given, so that an
// empty value (--if-match "") still counts.
type stringFlag struct {
	s   string
	set bool
}

func (f *stringFlag) String() string     { return f.s }
func (f *stringFlag) Set(s string) error { f.s, f.set = s, true; return nil }

// versionFlag is --if-version. Once given, even as 0, it is passed on, so
// that the client refuses a version no key can have instead of kvctl
// dropping the condition and writing unconditionally.
type versionFlag struct {
	v   int64
	set bool
}

func (f *versionFlag) String() string { return strconv.FormatInt(f.v, 10) }

func (f *versionFlag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	f.v, f.set = v, true
	return err
}

func (f *versionFlag) options() []client.Option {
	if !f.set {
		return nil
	}
	return []client.Option{client.IfVersion(f.v)}
}
