package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/client/clienttest"
)

// api asks kvd itself, over HTTP, what kvctl --json should print: the
// answer to method on path (under the API prefix) with query (db added),
// decoded.
func (k *kvd) api(method, path string, query url.Values, body string) any {
	k.t.Helper()
	if query == nil {
		query = url.Values{}
	}
	query.Set("db", k.db)
	req, err := http.NewRequestWithContext(k.t.Context(), method, k.url+client.APIPrefix+path+"?"+query.Encode(), strings.NewReader(body))
	if err != nil {
		k.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		k.t.Fatalf("%s %s: status %d, %s, %v", method, path, resp.StatusCode, raw, err)
	}
	return decodeJSON(k.t, string(raw))
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %q: %v", s, err)
	}
	return v
}

// sameAsAPI checks that kvctl --json args prints what kvd answers.
func (k *kvd) sameAsAPI(want any, args ...string) {
	k.t.Helper()
	got := decodeJSON(k.t, k.must("", append([]string{"--json"}, args...)...))
	if !reflect.DeepEqual(got, want) {
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want)
		k.t.Errorf("kvctl --json %q:\ngot  %s\nwant %s (kvd's answer)", args, gotJSON, wantJSON)
	}
}

// history writes one key in every form kvd shows differently: JSON,
// text, bytes that are not UTF-8, a write without history, a delete.
func writeHistory(k *kvd, clock *clienttest.Clock) {
	k.t.Helper()
	k.must("", "put", "--create", "k", `{"n":1}`)
	clock.Advance(time.Second)
	k.must("", "put", "k", "one", "--content-type", "text/plain")
	clock.Advance(time.Second)
	k.must("\xff\x00", "put", "k")
	clock.Advance(time.Second)
	k.must("", "put", "k", "secret", "--no-history")
	clock.Advance(time.Second)
	k.must("", "del", "k")
}

func TestHistoryJSON_ShowsValuesAsTheAPIDoes(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	writeHistory(k, clock)
	k.sameAsAPI(k.api("GET", "/kv/k/history", nil, ""), "history", "k")
	// A page short of the whole history carries the cursor to the rest.
	k.sameAsAPI(k.api("GET", "/kv/k/history", url.Values{"limit": {"3"}}, ""), "history", "k", "--limit", "3")
	out := k.must("", "--json", "history", "k")
	for _, want := range []string{`"new_value":{"n":1}`, `"raw_new_value":"b25l"`, `"raw_new_value":"/wA="`, `"unrecorded":true`} {
		if !strings.Contains(out, want) {
			t.Errorf("history --json lacks %s: %s", want, out)
		}
	}
}

// kvd cuts a history answer at --max-answer-bytes; kvctl follows the
// cursor and prints the whole history as one answer.
func TestHistoryJSON_FollowsKvdsCursor(t *testing.T) {
	k := newKVD(t, clienttest.Options{MaxAnswerBytes: 16 << 10})
	for i := range 12 {
		k.must(strings.Repeat(string(rune('a'+i)), 4<<10), "put", "--create", "doc", "--content-type", "application/octet-stream")
	}
	var res struct {
		Operations []struct {
			OpNumber int64 `json:"op_number"`
		} `json:"operations"`
		Truncated  bool   `json:"truncated"`
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(k.must("", "--json", "history", "doc", "--limit", "10")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Operations) != 10 || res.Operations[9].OpNumber != 3 || res.Truncated || res.NextCursor == "" {
		t.Errorf("got %d writes, truncated %v, cursor %q; want the 10 newest (down to op 3), whole, and a cursor to the rest",
			len(res.Operations), res.Truncated, res.NextCursor)
	}
}

func TestSnapshot_KeyAtOpAndTableAtTime(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	writeHistory(k, clock) // ops 1-5 at 1700000000-04
	k.must("", "put", "--create", "users/alice", "Alice")
	k.must("\xfe", "put", "users/bin")
	k.must("", "put", "users/doc", `[1,2]`)
	clock.Advance(10 * time.Second) // 1700000014
	k.must("", "put", "users/alice", "Alice B.")
	k.must("", "put", "users/bob", "Bob")

	for op, want := range map[string]string{"1": `{"n":1}`, "2": "one", "3": "\xff\x00"} {
		if got := k.must("", "snapshot", "k", "--op", op); got != want {
			t.Errorf("snapshot k --op %s: got %q, want %q", op, got, want)
		}
		k.sameAsAPI(k.api("GET", "/kv/k/snapshot", url.Values{"op_number": {op}}, ""), "snapshot", "k", "--op", op)
	}
	if r := k.run("", "snapshot", "nope", "--op", "1"); r.code != exitNotFound {
		t.Errorf("snapshot of a key never written: got %+v, want exit 1", r)
	}

	then := "1700000013"
	want := "users/alice\t\"Alice\"\nusers/bin\t\"\\xfe\"\nusers/doc\t\"[1,2]\"\n"
	if got := k.must("", "snapshot", "--at", then, "users/"); got != want {
		t.Errorf("snapshot --at:\ngot  %q\nwant %q", got, want)
	}
	if got := k.must("", "snapshot", "--at", "2023-11-14T22:13:33Z", "users/"); got != want {
		t.Errorf("snapshot --at RFC 3339:\ngot  %q\nwant %q", got, want)
	}
	k.sameAsAPI(k.api("GET", "/kv/snapshot", url.Values{"timestamp": {then}, "prefix": {"users/"}}, ""),
		"snapshot", "--at", then, "users/")
	k.sameAsAPI(k.api("GET", "/kv/snapshot", url.Values{"timestamp": {then}, "limit": {"2"}}, ""),
		"snapshot", "--at", then, "--limit", "2")
	r := k.run("", "snapshot", "--at", then, "users/", "--limit", "2")
	if r.code != exitOK || r.stdout != "users/alice\t\"Alice\"\nusers/bin\t\"\\xfe\"\n" || !strings.Contains(r.stderr, "--after users/bin") {
		t.Errorf("a page of 2: got %+v, want alice and bin and a hint to go on --after users/bin", r)
	}
	if got := k.must("", "snapshot", "--at", then, "users/", "--limit", "2", "--all"); got != want {
		t.Errorf("--all:\ngot  %q\nwant %q", got, want)
	}
}

func TestDiff_ChangesBetweenTwoTimes(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "a", "one")
	k.must("", "put", "b", `{"x":1}`)
	clock.Advance(10 * time.Second)
	k.must("", "put", "a", "two")
	k.must("", "del", "b")
	k.must("", "put", "c", "new")
	from, to := "1700000005", "2023-11-14T22:13:45Z"

	want := "modified\ta\t\"one\"\t\"two\"\ndeleted\tb\t{\"x\":1}\ncreated\tc\t\"new\"\n"
	if got := k.must("", "diff", "--from", from, "--to", to); got != want {
		t.Errorf("diff:\ngot  %q\nwant %q", got, want)
	}
	if got := k.must("", "diff", "--from", from, "--to", to, "--keys", "a,c"); got != "modified\ta\t\"one\"\t\"two\"\ncreated\tc\t\"new\"\n" {
		t.Errorf("diff --keys a,c: got %q", got)
	}
	if got := k.must("", "diff", "--from", from, "--to", to, "--limit", "1", "--all"); got != want {
		t.Errorf("diff --all a key at a time:\ngot  %q\nwant %q", got, want)
	}
	k.sameAsAPI(k.api("GET", "/kv/diff", url.Values{"from": {from}, "to": {"1700000025"}}, ""), "diff", "--from", from, "--to", to)
	k.sameAsAPI(k.api("GET", "/kv/diff", url.Values{"from": {from}, "to": {"1700000025"}, "keys": {"b"}}, ""),
		"diff", "--from", from, "--to", to, "--keys", "b")
	k.sameAsAPI(k.api("GET", "/kv/diff", url.Values{"from": {from}, "to": {"1700000025"}, "limit": {"1"}}, ""),
		"diff", "--from", from, "--to", to, "--limit", "1")
}

// kvd marks a binary value of a diff "base64": --json keeps the marks,
// and plain diff prints the bytes, as snapshot does, so that the binary
// \x00\xff and the text AP8= (its base64) do not print the same.
func TestDiff_BinaryValuesKeepTheirMark(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "gone", "\x01", "--content-type", "application/octet-stream")
	k.must("", "put", "changed", "\x02", "--content-type", "application/octet-stream")
	clock.Advance(10 * time.Second)
	k.must("\x00\xff", "put", "bin2", "--content-type", "application/octet-stream")
	k.must("", "put", "txt2", "AP8=")
	k.must("", "put", "changed", "text now")
	k.must("", "del", "gone")
	from, to := "1700000005", "1700000015"

	want := "created\tbin2\t\"\\x00\\xff\"\nmodified\tchanged\t\"\\x02\"\t\"text now\"\ndeleted\tgone\t\"\\x01\"\ncreated\ttxt2\t\"AP8=\"\n"
	if got := k.must("", "diff", "--from", from, "--to", to); got != want {
		t.Errorf("diff:\ngot  %q\nwant %q", got, want)
	}
	k.sameAsAPI(k.api("GET", "/kv/diff", url.Values{"from": {from}, "to": {to}}, ""), "diff", "--from", from, "--to", to)
	out := k.must("", "--json", "diff", "--from", from, "--to", to)
	if strings.Count(out, `"new_encoding":"base64"`) != 1 || strings.Count(out, `"old_encoding":"base64"`) != 2 {
		t.Errorf("diff --json: got %s, want bin2's new value and the old values of changed and gone marked base64", out)
	}
}

func TestRollback_KeyStepsAndTableDryRunThenYes(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now})
	k.must("", "put", "--create", "a", "one")
	k.must("", "put", "b", "bee")
	clock.Advance(10 * time.Second)
	k.must("", "put", "a", "two")
	k.must("", "put", "a", "three")
	k.must("", "put", "c", "sea")

	if got := k.must("", "rollback", "a", "--steps", "2"); got != "rolled back a to \"one\"\n" {
		t.Errorf("rollback a --steps 2: got %q", got)
	}
	if got := k.must("", "rollback", "a"); got != "rolled back a to \"three\"\n" {
		t.Errorf("rollback a (undoing the rollback, itself a write): got %q", got)
	}
	var restored valueAnswer
	if err := json.Unmarshal([]byte(k.must("", "--json", "rollback", "c")), &restored); err != nil || restored.Value != nil || !restored.Success {
		t.Errorf("rollback --json of a key's only write: got %+v, %v; want success and a null value", restored, err)
	}
	if r := k.run("", "rollback", "nope"); r.code != exitNotFound {
		t.Errorf("rollback of a key never written: got %+v, want exit 1", r)
	}
	k.must("", "put", "a", "four")
	k.must("", "put", "c", "sea again")

	// Without --yes: the plan, a dry run, and nothing written.
	r := k.run("", "rollback", "--to", "1700000005")
	if r.code != exitOK || r.stdout != "restore\ta\ndelete\tc\n" || !strings.Contains(r.stderr, "dry run") {
		t.Errorf("dry run: got %+v, want restore a, delete c, and a word that it was a dry run", r)
	}
	if got := k.must("", "get", "a"); got != "four" {
		t.Fatalf("the dry run wrote: a is %q", got)
	}
	k.sameAsAPI(k.api("POST", "/kv/rollback", url.Values{"to_timestamp": {"1700000005"}}, ""), "rollback", "--to", "1700000005")
	k.sameAsAPI(k.api("POST", "/kv/rollback", url.Values{"to_timestamp": {"1700000005"}}, `{"exclude_keys":["c"]}`),
		"rollback", "--to", "1700000005", "--exclude", "c")

	want := k.api("POST", "/kv/rollback", url.Values{"to_timestamp": {"1700000005"}, "confirm": {"yes"}}, `{"keys":["c"]}`)
	k.must("", "put", "c", "sea again") // back to before, so that kvctl's rollback does the same
	k.sameAsAPI(want, "rollback", "--to", "1700000005", "--keys", "c", "--yes")
	if r := k.run("", "get", "c"); r.code != exitNotFound {
		t.Errorf("c after rollback --yes: got %+v, want gone", r)
	}
	if got := k.must("", "rollback", "--to", "2023-11-14T22:13:25Z", "--yes"); got != "restore\ta\n" {
		t.Errorf("rollback --yes: got %q, want restore a", got)
	}
	if got := k.must("", "get", "a"); got != "one" {
		t.Errorf("a after rollback --yes: got %q, want one", got)
	}
}

func TestBackup_WritesAWholeCopyAndKeepsAnExistingFile(t *testing.T) {
	k := newKVD(t, clienttest.Options{})
	k.must("", "put", "--create", "users/alice", "Alice")
	dir := t.TempDir()
	file := dir + "/app.db"
	r := k.run("", "backup", file)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "backed up ") {
		t.Fatalf("backup: got %+v", r)
	}
	data := readFile(t, file)
	if !bytes.HasPrefix(data, sqliteMagic) || !bytes.Contains(data, []byte("users/alice")) {
		t.Errorf("backup: %d bytes, not a SQLite file holding users/alice", len(data))
	}
	// An existing file stays as it is without --force, and nothing is left behind.
	writeFile(t, file, "precious")
	if r := k.run("", "backup", file); r.code != exitUsage || !strings.Contains(r.stderr, "--force") {
		t.Errorf("backup over a file: got %+v, want exit 2 naming --force", r)
	}
	if got := string(readFile(t, file)); got != "precious" {
		t.Errorf("the existing file became %d bytes", len(got))
	}
	var res struct {
		File  string `json:"file"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(k.must("", "--json", "backup", file, "--force")), &res); err != nil || res.File != file || res.Bytes != int64(len(data)) {
		t.Errorf("backup --force --json: got %+v, %v; want %s, %d bytes", res, err, file, len(data))
	}
	if !bytes.HasPrefix(readFile(t, file), sqliteMagic) {
		t.Errorf("--force did not replace the file")
	}
	if r := k.run("", "backup", dir+"/other.db", "--db", "missing"); r.code != exitNotFound {
		t.Errorf("backup of a missing database: got %+v, want exit 1", r)
	}
	if left := listDir(t, dir); strings.Join(left, " ") != "app.db" {
		t.Errorf("left in the folder: %q, want only app.db (no temp file, no copy of a failed backup)", left)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// kvd ends a snapshot or diff page early at --max-answer-bytes and says so
// in truncated; kvctl --json says it too, and --all reads on to the end.
func TestSnapshotDiffJSON_KeepKvdsByteCut(t *testing.T) {
	clock := clienttest.NewClock(time.Unix(1_700_000_000, 0))
	k := newKVD(t, clienttest.Options{Now: clock.Now, MaxAnswerBytes: 16 << 10})
	for i := range 8 {
		k.must(strings.Repeat("x", 4<<10), "put", "--create", "k"+string(rune('0'+i)))
	}
	clock.Advance(10 * time.Second)
	at := url.Values{"timestamp": {"1700000005"}}
	want := k.api("GET", "/kv/snapshot", at, "")
	if want.(map[string]any)["truncated"] != true {
		t.Fatalf("setup: kvd's snapshot was not cut by bytes: %v", want)
	}
	k.sameAsAPI(want, "snapshot", "--at", "1700000005")
	k.sameAsAPI(k.api("GET", "/kv/diff", url.Values{"from": {"1699999999"}, "to": {"1700000005"}}, ""), "diff", "--from", "1699999999", "--to", "1700000005")
	if got := strings.Count(k.must("", "snapshot", "--at", "1700000005", "--all"), "\n"); got != 8 {
		t.Errorf("snapshot --all: %d keys, want 8", got)
	}
	if got := strings.Count(k.must("", "diff", "--from", "1699999999", "--to", "1700000005", "--all"), "created"); got != 8 {
		t.Errorf("diff --all: %d created, want 8", got)
	}
}
