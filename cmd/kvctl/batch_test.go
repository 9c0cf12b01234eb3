package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvd/kvd/client/clienttest"
)

func TestBatch_JSONAndJSONLFiles(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	doc := write("items.json", `{"items":[
		{"key":"text","value":"hello\tworld"},
		{"key":"json","value":{"a":[1, 2]}},
		{"key":"bin","value":"/wAB","encoding":"base64"},
		{"key":"html","value":"<b>","content_type":"text/html","ttl":60}]}`)
	if got := k.must("", "batch", "set", doc, "--create"); got != "4 written, 4 created\n" {
		t.Errorf("batch set: got %q", got)
	}
	jsonl := "{\"key\":\"a/incr\",\"value\":\"1\"}\n{\"key\":\"text\",\"value\":\"replaced\"}\n{\"key\":\"nul\",\"value\":null}\n"
	if got := k.must(jsonl, "batch", "set"); got != "3 written, 2 created\n" {
		t.Errorf("batch set from JSONL on stdin: got %q", got)
	}
	if got := k.must("", "--json", "get", "nul"); !strings.Contains(got, `"value":null`) || !strings.Contains(got, `"content_type":"application/json"`) {
		t.Errorf("a null item: got %s, want the JSON null", got)
	}
	keys := write("keys.jsonl", "\"text\"\n\"json\"\n{\"key\":\"bin\"}\n\"html\"\n\"a/incr\"\n\"missing\"\n")
	want := "text\t\"replaced\"\njson\t\"{\\\"a\\\":[1,2]}\"\nbin\t\"\\xff\\x00\\x01\"\nhtml\t\"<b>\"\na/incr\t\"1\"\nmissing\t(nil)\n"
	if got := k.must("", "batch", "get", keys); got != want {
		t.Errorf("batch get:\ngot  %q\nwant %q", got, want)
	}
	var res struct {
		Values map[string]*struct {
			Value       json.RawMessage `json:"value"`
			ContentType string          `json:"content_type"`
			Encoding    string          `json:"encoding"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(k.must(`["json","bin","missing"]`, "--json", "batch", "get", "-")), &res); err != nil {
		t.Fatal(err)
	}
	if v := res.Values["json"]; v == nil || string(v.Value) != `{"a":[1,2]}` || v.ContentType != "application/json" {
		t.Errorf("json: got %+v", v)
	}
	if v := res.Values["bin"]; v == nil || string(v.Value) != `"/wAB"` || v.Encoding != "base64" {
		t.Errorf("bin: got %+v", v)
	}
	if v, ok := res.Values["missing"]; !ok || v != nil {
		t.Errorf("missing: got %+v, %v", v, ok)
	}
	if got := k.must(`{"keys":["text","missing","json"]}`, "batch", "del"); got != "2 deleted\n" {
		t.Errorf("batch del: got %q", got)
	}
}

func TestBatch_BadFilesAreUsageErrors(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	cases := map[string][]string{
		`{"items":[{"key":"k"}]}`:                       {"batch", "set"},
		`{"items":[{"key":"k","value":"v","tll":5}]}`:   {"batch", "set"},
		`{"key":"k","value":"x","encoding":"hex"}`:      {"batch", "set"},
		`{"key":"k","value":"***","encoding":"base64"}`: {"batch", "set"},
		`{"keys":["a",`: {"batch", "get"},
		`[1, 2]`:        {"batch", "del"},
		`{"keys":"a"}`:  {"batch", "get"},
	}
	for input, args := range cases {
		if r := k.run(input, args...); r.code != exitUsage || !strings.Contains(r.stderr, "batch file") {
			t.Errorf("%s with %s: got %+v, want exit 2 naming the batch file", strings.Join(args, " "), input, r)
		}
	}
	if r := k.run("", "batch", "get", "/nonexistent.json"); r.code != exitUsage {
		t.Errorf("missing file: got %+v, want exit 2", r)
	}
}

// An empty batch is the input's mistake: kvctl says so itself and exits 2
// (usage), sending nothing. It used to reach kvd, whose 400 made it exit
// 3, the code for a refusal by the server.
func TestBatch_EmptyInputIsAUsageError(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		input string
		args  []string
	}{
		{"", []string{"batch", "get"}},
		{"", []string{"batch", "set", "-"}},
		{"\n  \n", []string{"batch", "del"}},
		{`{"keys":[]}`, []string{"batch", "get"}},
		{`{"items":[]}`, []string{"batch", "set"}},
		{`[]`, []string{"batch", "del"}},
		{"", []string{"batch", "set", empty}},
	} {
		r := k.run(c.input, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "batch file holds no entries") || strings.Contains(r.stderr, "INVALID_PARAMETERS") {
			t.Errorf("%s with %q: got %+v, want exit 2 saying the batch file holds no entries", strings.Join(c.args, " "), c.input, r)
		}
	}
}

// encoding/json reads a lone surrogate escape or bytes that are not UTF-8
// as U+FFFD: kvctl would write, read or delete another key than the
// file's, where kvd refuses the same body sent to it. kvctl refuses the
// file, naming the entry, and sends nothing.
func TestBatch_StringsJSONWouldChangeAreUsageErrors(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	k.must("", "put", "--create", "k\ufffd", "kept")
	cases := []struct {
		input string
		args  []string
		want  string
	}{
		{`{"key":"k7","value":"\ud800"}`, []string{"batch", "set"}, `entry 1: value: an unpaired surrogate escape \ud800`},
		{"{\"key\":\"k7\",\"value\":\"ok\"}\n{\"key\":\"k\xff\",\"value\":\"new\"}\n", []string{"batch", "set"}, "entry 2: key: invalid UTF-8"},
		{`{"items":[{"key":"k7","value":{"a":["x\udc00"]}}]}`, []string{"batch", "set"}, `entry 1: value.a[0]: an unpaired surrogate escape \udc00`},
		{`{"key":"k7","value":"v","content_type":"text/plain` + "\xfe" + `"}`, []string{"batch", "set"}, "entry 1: content_type: invalid UTF-8"},
		{`["k7","k\udfff"]`, []string{"batch", "del"}, `entry 2: an unpaired surrogate escape \udfff`},
		{`{"keys":[{"key":"k` + "\xff" + `"}]}`, []string{"batch", "get"}, "entry 1: key: invalid UTF-8"},
		{`[{"k` + "\xff" + `ey":"k"}]`, []string{"batch", "get"}, "entry 1: a member name holds invalid UTF-8"},
	}
	for _, tc := range cases {
		if r := k.run(tc.input, tc.args...); r.code != exitUsage || !strings.Contains(r.stderr, "batch file, "+tc.want) {
			t.Errorf("%s with %q: got %+v, want exit 2 saying %q", strings.Join(tc.args, " "), tc.input, r, tc.want)
		}
	}
	if r := k.run("", "get", "k7"); r.code != exitNotFound {
		t.Errorf("k7: got %+v, want nothing written", r)
	}
	if got := k.must("", "get", "k\ufffd"); got != "kept" {
		t.Errorf("k\ufffd: got %q, want it kept", got)
	}
}

func TestReadBatchFile_FileOrStdinAndClosed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, []byte(`["from file"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin := `["from stdin"]`
	var seen io.Reader
	read := func(r io.Reader) ([]string, error) { seen = r; return readKeys(r) }
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "from stdin"}, {[]string{"-"}, "from stdin"}, {[]string{file}, "from file"}} {
		keys, err := readBatchFile(tc.args, strings.NewReader(stdin), read)
		if err != nil || len(keys) != 1 || keys[0] != tc.want {
			t.Errorf("args %q: got %q, %v; want %q", tc.args, keys, err, tc.want)
		}
	}
	if f, ok := seen.(*os.File); !ok {
		t.Errorf("the file was read as %T, want *os.File", seen)
	} else if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("reading the file after readBatchFile: got %v, want it closed", err)
	}
	if _, err := readBatchFile([]string{file + ".missing"}, nil, readKeys); exitCode(err) != exitUsage {
		t.Errorf("missing file: got %v, want a usage error", err)
	}
}
