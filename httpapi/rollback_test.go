package httpapi_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvd/kvd/httpapi"
)

// A dry run writes nothing, not even the database create_db_if_missing
// asks for: it answers what the confirmed run would, an empty plan.
func TestTableRollback_DryRunCreatesNoDatabase(t *testing.T) {
	ts := newTestServer(t)
	rollback := "/api/v1/sqlite/kv/rollback?db=fresh&create_db_if_missing=true&to_timestamp=1690000000"
	for _, dry := range []string{"", "&dry_run=true&confirm=yes"} {
		r := ts.do(t, "POST", rollback+dry, `{}`)
		if m := r.JSON(t); r.Status != 200 || m["dry_run"] != true || m["count"] != 0.0 {
			t.Fatalf("dry run on a new database: %d %s", r.Status, r.Body)
		}
		if _, err := os.Stat(filepath.Join(ts.DataDir, "fresh.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after a dry run, fresh.db: %v, want none", err)
		}
	}
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=fresh&to_timestamp=1690000000", `{}`), 404, "DATABASE_NOT_FOUND")
	r := ts.do(t, "POST", rollback+"&confirm=yes", `{}`)
	if m := r.JSON(t); r.Status != 200 || m["dry_run"] != false || m["count"] != 0.0 {
		t.Fatalf("confirmed on a new database: %d %s", r.Status, r.Body)
	}
	if _, err := os.Stat(filepath.Join(ts.DataDir, "fresh.db")); err != nil {
		t.Fatalf("a confirmed run creates the database as asked: %v", err)
	}
}

func TestTableRollback_DryRunThenConfirm(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("keep", q), "k1")
	ts.do(t, "PUT", kv("changed", q), "c1")
	ts.do(t, "PUT", kv("gone", q), "g1")
	ts.Clock.Advance(10 * time.Second)
	ts.do(t, "PUT", kv("changed", q), "c2")
	ts.do(t, "DELETE", kv("gone", q), "")
	ts.do(t, "PUT", kv("new", q), "n1")
	ts.do(t, "PUT", kv("excluded", q), "x")
	rollback := "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=" + strconv.FormatInt(t0, 10)

	dry := ts.do(t, "POST", rollback, `{"exclude_keys":["excluded"]}`)
	wantStatus(t, dry, 200)
	m := dry.JSON(t)
	if m["dry_run"] != true || m["count"] != 3.0 || fmt.Sprint(m["changes"]) != "[map[action:restore key:changed] map[action:restore key:gone] map[action:delete key:new]]" {
		t.Fatalf("dry run: got %s", dry.Body)
	}
	if got := string(ts.do(t, "GET", kv("changed", "db=app"), "").Body); got != "c2" {
		t.Fatalf("after dry run: changed is %q, want c2 (nothing written)", got)
	}
	// dry_run=true wins over confirm=yes.
	if m := ts.do(t, "POST", rollback+"&confirm=yes&dry_run=true", `{}`).JSON(t); m["dry_run"] != true {
		t.Fatalf("dry_run with confirm: got %v", m)
	}
	done := ts.do(t, "POST", rollback+"&confirm=yes", `{"exclude_keys":["excluded"]}`)
	if m := done.JSON(t); m["dry_run"] != false || m["count"] != 3.0 {
		t.Fatalf("confirmed rollback: got %s", done.Body)
	}
	for key, want := range map[string]string{"keep": "k1", "changed": "c1", "gone": "g1", "excluded": "x"} {
		if got := string(ts.do(t, "GET", kv(key, "db=app"), "").Body); got != want {
			t.Errorf("%s after rollback: got %q, want %q", key, got, want)
		}
	}
	wantError(t, ts.do(t, "GET", kv("new", "db=app"), ""), 404, "KEY_NOT_FOUND")
	// The rollback is itself history: a key rollback of "changed" undoes it.
	if r := ts.do(t, "POST", kv("changed/rollback", q), ""); r.JSON(t)["value"] != "c2" {
		t.Fatalf("undo of the table rollback on one key: got %s", r.Body)
	}
	// Only chosen keys.
	ts.do(t, "POST", rollback+"&confirm=yes", `{"keys":["new"]}`)
	if m := ts.do(t, "POST", rollback, `{"keys":["changed"]}`).JSON(t); m["count"] != 1.0 {
		t.Fatalf("dry run on chosen keys: got %v", m)
	}
	// A key named twice counts once, in a rollback and in a diff.
	if m := ts.do(t, "POST", rollback, `{"keys":["changed","changed"]}`).JSON(t); m["count"] != 1.0 {
		t.Fatalf("dry run on a key named twice: got %v", m)
	}
	diff := fmt.Sprintf("/api/v1/sqlite/kv/diff?db=app&keys=changed,changed&from=%d&to=%d", t0, ts.Clock.Now().Unix())
	if m := ts.do(t, "GET", diff, "").JSON(t); len(m["changes"].([]any)) != 1 || fmt.Sprint(m["stats"]) != "map[created:0 deleted:0 modified:1]" {
		t.Fatalf("diff of a key named twice: got %v", m)
	}
}

// A table rollback's answer lists at most --max-answer-bytes of keys: it
// counts every change, says the list is cut, and does them all.
func TestTableRollback_ListsItsChangesWithinTheAnswerBudget(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(2000))
	t0 := ts.Clock.Now().Unix()
	ts.Clock.Advance(time.Second)
	q := "db=app&create_db_if_missing=true"
	const keys = 40
	for i := range keys {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("%0100d", i), q), "v"), 200)
	}
	rollback := "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=" + strconv.FormatInt(t0, 10)
	for _, confirm := range []string{"", "&confirm=yes"} {
		r := ts.do(t, "POST", rollback+confirm, `{}`)
		wantStatus(t, r, 200)
		m := r.JSON(t)
		if listed := len(m["changes"].([]any)); m["count"] != float64(keys) || m["changes_truncated"] != true || listed == 0 || listed >= 10 {
			t.Fatalf("rollback%s: count %v, %d listed, changes_truncated %v; want %d, a few, true", confirm, m["count"], listed, m["changes_truncated"], keys)
		}
		if len(r.Body) > 4000 {
			t.Fatalf("rollback%s: a %d-byte answer, want at most about 2,000", confirm, len(r.Body))
		}
	}
	for i := range keys {
		wantError(t, ts.do(t, "GET", kv(fmt.Sprintf("%0100d", i), "db=app"), ""), 404, "KEY_NOT_FOUND")
	}
}

// A table rollback refused for keys history cannot tell lists at most
// --max-answer-bytes of them, and says how many there are. Before, it
// listed them all: 300 keys of 1,000 bytes made an error of 302 KB.
func TestTableRollback_ListsItsGapKeysWithinTheAnswerBudget(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(2000))
	t0 := ts.Clock.Now().Unix()
	ts.Clock.Advance(time.Second)
	const keys = 40
	for i := range keys {
		wantStatus(t, ts.do(t, "PUT", kv(fmt.Sprintf("%0100d", i), "db=app&create_db_if_missing=true&history=false"), "v"), 200)
	}
	rollback := "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=" + strconv.FormatInt(t0+10, 10)
	for _, confirm := range []string{"", "&confirm=yes"} {
		r := ts.do(t, "POST", rollback+confirm, `{}`)
		wantError(t, r, 409, "TIME_TRAVEL_GAP")
		m := r.JSON(t)
		if listed := len(m["keys"].([]any)); listed == 0 || listed >= 10 || !strings.Contains(m["message"].(string), "40 keys") {
			t.Fatalf("rollback%s: %d keys listed, message %q; want a few, and all 40 counted", confirm, listed, m["message"])
		}
		if len(r.Body) > 4000 {
			t.Fatalf("rollback%s: a %d-byte answer, want at most about 2,000", confirm, len(r.Body))
		}
	}
}

// What a table rollback lists, of its changes or of the keys history
// cannot tell, is the first of them in order: a key that does not fit
// ends the list, and no shorter key after it is listed in its place (a
// list of [a c] left out b).
func TestTableRollback_ListsTheFirstKeysInOrder(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(2000))
	t0 := ts.Clock.Now().Unix()
	ts.Clock.Advance(time.Second)
	keys := []string{"a" + strings.Repeat("x", 799), "b" + strings.Repeat("y", 599), "c"}
	for table, history := range map[string]string{"changes": "true", "gaps": "false"} {
		for _, k := range keys {
			wantStatus(t, ts.do(t, "PUT", kv(k, "db=app&create_db_if_missing=true&table="+table+"&history="+history), "v"), 200)
		}
	}
	rollback := "/api/v1/sqlite/kv/rollback?db=app&to_timestamp="
	var changed []string // back to before the keys: each deleted
	for _, c := range ts.do(t, "POST", rollback+strconv.FormatInt(t0, 10)+"&table=changes", `{}`).JSON(t)["changes"].([]any) {
		changed = append(changed, c.(map[string]any)["key"].(string))
	}
	r := ts.do(t, "POST", rollback+strconv.FormatInt(t0+10, 10)+"&table=gaps", `{}`) // to a time history=false left unknown
	wantError(t, r, 409, "TIME_TRAVEL_GAP")
	var gaps []string
	for _, k := range r.JSON(t)["keys"].([]any) {
		gaps = append(gaps, k.(string))
	}
	for what, listed := range map[string][]string{"changes": changed, "gap keys": gaps} {
		if len(listed) == 0 || len(listed) == len(keys) || !slices.Equal(listed, keys[:len(listed)]) {
			t.Errorf("%s listed: got %d keys starting %.3q, want the first one or two of the three", what, len(listed), listed)
		}
	}
}

// A rollback to a time still to come changes nothing: a key whose TTL
// runs out before then is alive now and stays.
func TestTableRollback_ToATimeStillToComeKeepsLiveKeys(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("session", q+"&ttl=3600"), "live")
	ts.do(t, "PUT", kv("plain", q), "1")
	later := strconv.FormatInt(ts.Clock.Now().Unix()+7200, 10)
	r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&confirm=yes&to_timestamp="+later, "")
	if m := r.JSON(t); m["count"] != 0.0 {
		t.Fatalf("rollback to a time still to come: got %s, want no change", r.Body)
	}
	if got := string(ts.do(t, "GET", kv("session", "db=app"), "").Body); got != "live" {
		t.Fatalf("session after the rollback: got %q, want live", got)
	}
}

func TestTableRollback_RefusesAcrossGapsAndListsThem(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("fine", q), "1")
	ts.do(t, "PUT", kv("blind", q+"&history=false"), "secret")
	ts.Clock.Advance(10 * time.Second)
	ts.do(t, "PUT", kv("fine", q), "2")
	r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&confirm=yes&to_timestamp="+strconv.FormatInt(t0, 10), "")
	wantError(t, r, 409, "TIME_TRAVEL_GAP")
	if fmt.Sprint(r.JSON(t)["keys"]) != "[blind]" {
		t.Fatalf("gap keys: got %s, want [blind]", r.Body)
	}
	r = ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&confirm=yes&to_timestamp="+strconv.FormatInt(t0, 10), `{"keys":["blind","fine","blind"]}`)
	if fmt.Sprint(r.JSON(t)["keys"]) != "[blind]" {
		t.Fatalf("gap keys of a key named twice: got %s, want [blind]", r.Body)
	}
	if got := string(ts.do(t, "GET", kv("fine", "db=app"), "").Body); got != "2" {
		t.Fatalf("fine after refused rollback: got %q, want 2", got)
	}
	for _, bad := range []string{"", "&to_timestamp=soon"} {
		wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app"+bad, ""), 400, "INVALID_PARAMETERS")
	}
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=1", `{"keys":["a"],"exclude_keys":["b"]}`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=1", `[`), 400, "INVALID_PARAMETERS")
}

func TestArrays_PushPopRemove(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	op := func(key, name, query, body string) map[string]any {
		t.Helper()
		r := ts.do(t, "POST", kv(key+"/"+name, q+query), body)
		wantStatus(t, r, 200)
		return r.JSON(t)
	}
	if m := op("list", "push", "", `"a"`); m["newLength"] != 1.0 || m["success"] != true {
		t.Fatalf("push on a missing key: got %v", m)
	}
	op("list", "push", "", `{"b": 2}`)
	op("list", "push", "", `3`)
	op("list", "push", "", `"a"`)
	if m := op("list", "remove", "", `{"b":2}`); m["removed"] != 1.0 || m["newLength"] != 3.0 {
		t.Fatalf("remove by value: got %v", m)
	}
	if m := op("list", "remove", "&index=0", ""); m["newLength"] != 2.0 {
		t.Fatalf("remove by index: got %v", m)
	}
	if m := op("list", "pop", "", ""); m["value"] != "a" || m["newLength"] != 1.0 {
		t.Fatalf("pop: got %v", m)
	}
	if got := string(ts.do(t, "GET", kv("list", "db=app"), "").Body); got != `[3]` {
		t.Fatalf("array: got %s, want [3]", got)
	}
	// The other elements keep their bytes through a push.
	ts.do(t, "PUT", kv("html", q), `["<b>&amp;", {"k": 1}]`)
	op("html", "push", "", `"x"`)
	if got := string(ts.do(t, "GET", kv("html", "db=app"), "").Body); got != `["<b>&amp;",{"k": 1},"x"]` {
		t.Fatalf("array after a push: got %s", got)
	}
	op("list", "pop", "", "")
	if m := op("list", "pop", "", ""); m["value"] != nil || m["newLength"] != 0.0 {
		t.Fatalf("pop of an empty array: got %v", m)
	}
	// Under a path, the rest of the document stays.
	ts.do(t, "PUT", kv("doc", q), `{"name":"x","tags":["a"]}`)
	op("doc", "push", "&path=tags", `"b"`)
	op("doc", "push", "&path=more.items", `1`)
	if got := string(ts.do(t, "GET", kv("doc", "db=app"), "").Body); got != `{"name":"x","tags":["a","b"],"more":{"items":[1]}}` {
		t.Fatalf("document: got %s", got)
	}
	ts.do(t, "PUT", kv("scalar", q), `5`)
	wantError(t, ts.do(t, "POST", kv("scalar/push", q), `1`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", kv("list/push", q), `not json`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", kv("list/remove", q+"&index=9"), ``), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", kv("list/remove", q+"&index=0"), `3`), 400, "INVALID_PARAMETERS") // which one?
	wantError(t, ts.do(t, "POST", kv("missing/pop", q), ``), 404, "KEY_NOT_FOUND")
	wantError(t, ts.do(t, "POST", kv("doc/pop", q+"&path=nothere"), ``), 404, "PATH_NOT_FOUND")
	// Array writes are history like any other.
	hist := ts.do(t, "GET", kv("list/history", "db=app"), "").JSON(t)["operations"].([]any)
	if first := hist[0].(map[string]any)["operation"].(map[string]any); first["op"] != "pop" {
		t.Fatalf("newest history op: got %v, want pop", first["op"])
	}
}

// remove takes every element equal to the body as JSON: members in any
// order, strings however escaped, numbers however written.
func TestArrays_RemoveComparesByContent(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("set", q), `[{"a":1,"b":2},{"b":2,"a":1},"x","\u0078",1,1.0,10e-1,2,{"a":1},9007199254740993,null,true,1E+2000000000000000]`), 200)
	for _, c := range []struct {
		body    string
		removed float64
	}{{`{"a":1,"b":2}`, 2}, {`"x"`, 2}, {`1`, 3}, {`9007199254740992`, 0}, {`9007199254740993`, 1}, {`1e1000000`, 0}, {` null `, 1}, {`false`, 0}, {`1e2000000000000000`, 1}} {
		r := ts.do(t, "POST", kv("set/remove", q), c.body)
		wantStatus(t, r, 200)
		if got := r.JSON(t)["removed"]; got != c.removed {
			t.Errorf("remove %s: removed %v, want %v", c.body, got, c.removed)
		}
	}
	if got := string(ts.do(t, "GET", kv("set", "db=app"), "").Body); got != `[2,{"a":1},true]` {
		t.Fatalf("array after the removes: got %s, want [2,{\"a\":1}]", got)
	}
}

// A lone surrogate escape, which only a plain PUT can store, decodes as
// U+FFFD, yet says something else: remove of "\ufffd" leaves it, and no
// body can name it (kvd refuses the escape in a body, naming it).
func TestArrays_RemoveTellsALoneSurrogateFromU_FFFD(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("a", q), `["\ud800","x","\ufffd","�",{"k":"\udfff"},"\ud83d\ude00"]`, "Content-Type", "application/json"), 200)
	for _, c := range []struct {
		body    string
		removed float64
	}{{`"\ufffd"`, 2}, {`{"k":"\ufffd"}`, 0}, {`"😀"`, 1}} {
		r := ts.do(t, "POST", kv("a/remove", q), c.body)
		wantStatus(t, r, 200)
		if got := r.JSON(t)["removed"]; got != c.removed {
			t.Errorf("remove %s: removed %v, want %v", c.body, got, c.removed)
		}
	}
	r := ts.do(t, "POST", kv("a/remove", q), `"\ud800"`)
	wantError(t, r, 400, "INVALID_PARAMETERS")
	if m := r.JSON(t); !contains(m["message"], `an unpaired surrogate escape \ud800`) {
		t.Errorf("remove \\ud800: message %q, want it to name the escape", m["message"])
	}
	if got := string(ts.do(t, "GET", kv("a", "db=app"), "").Body); got != `["\ud800","x",{"k":"\udfff"}]` {
		t.Fatalf("array after the removes: got %s", got)
	}
}

// Bytes of JSON's shape with others in a string are no JSON: the array
// operations refuse them, as a write under a path does, rather than
// label them JSON and answer bytes no JSON client can read.
func TestArrays_RefuseAValueThatIsNotUTF8(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	wantStatus(t, ts.do(t, "PUT", kv("bin", q), "[\"x\xff\", 1]", "Content-Type", "application/octet-stream"), 200)
	for _, c := range []struct{ op, body string }{{"pop", ""}, {"push", "2"}, {"remove", "1"}} {
		wantError(t, ts.do(t, "POST", kv("bin/"+c.op, q), c.body), 400, "INVALID_PARAMETERS")
	}
	r := ts.do(t, "GET", kv("bin", "db=app"), "")
	if string(r.Body) != "[\"x\xff\", 1]" || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("after refused array writes: got %q as %s", r.Body, r.Header.Get("Content-Type"))
	}
}

func TestArrays_ConcurrentPushesLoseNoElement(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("arr", "db=app&create_db_if_missing=true"), `[]`)
	const clients, each = 32, 20
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if r := ts.do(t, "POST", kv("arr/push", "db=app"), strconv.Itoa(c*1000+i)); r.Status != 200 {
					t.Errorf("push: %d %s", r.Status, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	var got []int
	if err := jsonUnmarshal(ts.do(t, "GET", kv("arr", "db=app"), "").Body, &got); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, n := range got {
		seen[n] = true
	}
	if len(got) != clients*each || len(seen) != clients*each {
		t.Fatalf("array after %d concurrent pushes: %d elements, %d distinct", clients*each, len(got), len(seen))
	}
	// Concurrent pops hand out each element exactly once.
	var mu sync.Mutex
	popped := map[string]int{}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				m := ts.do(t, "POST", kv("arr/pop", "db=app"), "").JSON(t)
				mu.Lock()
				popped[fmt.Sprint(m["value"])]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for v, n := range popped {
		if n != 1 {
			t.Fatalf("element %s popped %d times", v, n)
		}
	}
	if len(popped) != clients*each {
		t.Fatalf("popped %d distinct elements, want %d", len(popped), clients*each)
	}
}

// Concurrent removes by value each find their element exactly once.
func TestArrays_ConcurrentRemovesLoseNothingAndRemoveNothingTwice(t *testing.T) {
	ts := newTestServer(t)
	const clients, each = 32, 20
	values := make([]string, clients*each)
	for i := range values {
		values[i] = strconv.Itoa(i)
	}
	ts.do(t, "PUT", kv("arr", "db=app&create_db_if_missing=true"), "["+strings.Join(values, ",")+"]")
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := ts.do(t, "POST", kv("arr/remove", "db=app"), strconv.Itoa(c*each+i)).JSON(t)
				if m["removed"] != 1.0 {
					t.Errorf("remove %d: got %v, want removed 1", c*each+i, m)
				}
			}
		}()
	}
	wg.Wait()
	if got := string(ts.do(t, "GET", kv("arr", "db=app"), "").Body); got != "[]" {
		t.Fatalf("array after removing every element: got %s, want []", got)
	}
}

func TestReferences_ChainsCyclesAndDangling(t *testing.T) {
	ts := newTestServer(t)
	q := "db=app&create_db_if_missing=true"
	ts.do(t, "PUT", kv("target", q), `{"v":1}`)
	wantStatus(t, ts.do(t, "PUT", kv("ref1", q+"&ref=true"), "target"), 200)
	wantStatus(t, ts.do(t, "PUT", kv("ref2", q+"&ref=true"), "ref1"), 200)
	r := ts.do(t, "GET", kv("ref2", "db=app"), "")
	if string(r.Body) != `{"v":1}` || r.Header.Get("X-KV-Reference") != "true" || r.Header.Get("X-KV-Reference-Target") != "target" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET through a chain: got %q %v", r.Body, r.Header)
	}
	if h := ts.do(t, "HEAD", kv("ref1", "db=app"), "").Header; h.Get("X-KV-Reference") != "true" {
		t.Fatalf("HEAD of a reference: headers %v", h)
	}
	// The target's version would be no use to If-Match on the reference.
	if tag := r.Header.Get("ETag"); tag != "" {
		t.Fatalf("GET through a reference: ETag %s, want none", tag)
	}
	if got := string(ts.do(t, "GET", kv("ref2", "db=app&path=v"), "").Body); got != "1" {
		t.Fatalf("path through a reference: got %s", got)
	}
	// A chain of 8 hops is followed; 9 is too long.
	prev := "target"
	for i := 1; i <= 9; i++ {
		name := fmt.Sprintf("hop%d", i)
		ts.do(t, "PUT", kv(name, q+"&ref=true"), prev)
		prev = name
	}
	wantStatus(t, ts.do(t, "GET", kv("hop8", "db=app"), ""), 200)
	wantError(t, ts.do(t, "GET", kv("hop9", "db=app"), ""), 404, "KEY_NOT_FOUND")
	ts.do(t, "PUT", kv("x", q+"&ref=true"), "y")
	ts.do(t, "PUT", kv("y", q+"&ref=true"), "x")
	if m := ts.do(t, "GET", kv("x", "db=app"), "").JSON(t); m["code"] != "KEY_NOT_FOUND" || !contains(m["message"], "cycle") {
		t.Fatalf("cycle: got %v", m)
	}
	ts.do(t, "PUT", kv("dangling", q+"&ref=true"), "nobody")
	if m := ts.do(t, "GET", kv("dangling", "db=app"), "").JSON(t); m["code"] != "KEY_NOT_FOUND" || !contains(m["message"], "Dangling") {
		t.Fatalf("dangling: got %v", m)
	}
	// A write that reads the stored value as a number or JSON does not
	// act on a reference's bytes (its target's key) nor follow it.
	ts.do(t, "PUT", kv("99", q), "ninety-nine")
	ts.do(t, "PUT", kv("latest", q+"&ref=true"), "99")
	for _, c := range []struct{ method, path, body string }{
		{"POST", kv("latest/incr", q), ""},
		{"POST", kv("latest/decr", q), ""},
		{"POST", kv("ref1/incr", q+"&path=v"), ""},
		{"PUT", kv("ref1", q+"&path=v"), "2"},
		{"POST", kv("ref1/push", q), "1"},
		{"POST", kv("ref1/pop", q), ""},
		{"POST", kv("ref1/remove", q), "1"},
	} {
		r := ts.do(t, c.method, c.path, c.body)
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"]; !contains(msg, "reference") {
			t.Errorf("%s %s: message %q, want one that names the reference", c.method, c.path, msg)
		}
	}
	if r := ts.do(t, "GET", kv("latest", "db=app"), ""); string(r.Body) != "ninety-nine" || r.Header.Get("X-KV-Reference-Target") != "99" {
		t.Fatalf("reference after refused writes: got %q to %q", r.Body, r.Header.Get("X-KV-Reference-Target"))
	}
	if got := string(ts.do(t, "GET", kv("target", "db=app"), "").Body); got != `{"v":1}` {
		t.Fatalf("target after refused writes through a reference: got %s", got)
	}
	// DELETE removes the reference, not its target.
	wantStatus(t, ts.do(t, "DELETE", kv("ref1", q), ""), 200)
	wantStatus(t, ts.do(t, "GET", kv("target", "db=app"), ""), 200)
	wantError(t, ts.do(t, "PUT", kv("bad", q+"&ref=true"), ""), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "PUT", kv("bad", q+"&ref=true&path=a"), `"x"`), 400, "INVALID_PARAMETERS")
	// A reference sent as its content type is held to the same rule.
	wantError(t, ts.do(t, "PUT", kv("bad", q), "", "Content-Type", "application/vnd.kvd.reference"), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "POST", batchPath+"set?"+q, `{"items":[{"key":"bad","value":"a\u0001b","content_type":"application/vnd.kvd.reference"}]}`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "GET", kv("bad", "db=app"), ""), 404, "KEY_NOT_FOUND")
	// However the header spells the type, the value is a reference.
	for _, spelling := range []string{"Application/Vnd.Kvd.Reference", "application/vnd.kvd.reference; charset=utf-8"} {
		wantStatus(t, ts.do(t, "PUT", kv("spelled", q), "target", "Content-Type", spelling), 200)
		if r := ts.do(t, "GET", kv("spelled", "db=app"), ""); string(r.Body) != `{"v":1}` || r.Header.Get("X-KV-Reference") != "true" {
			t.Fatalf("a reference sent as %q: got %q, X-KV-Reference %q; want its target's value", spelling, r.Body, r.Header.Get("X-KV-Reference"))
		}
	}
}

// In directory mode a reference to a key that can be no file there
// dangles: 404, as any missing target.
func TestReferences_DirectoryModeTargetThatCanBeNoFileDangles(t *testing.T) {
	ts, _, q := dirServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("ref", q+"&ref=true"), "../../etc/passwd"), 200)
	if m := ts.do(t, "GET", kv("ref", q), "").JSON(t); m["code"] != "KEY_NOT_FOUND" || !contains(m["message"], "Dangling") {
		t.Fatalf("a target that can be no file: got %v", m)
	}
}

func TestCreateDB_MakesAnEmptyDatabaseWithItsTable(t *testing.T) {
	ts := newTestServer(t)
	r := ts.do(t, "POST", "/api/v1/sqlite/db/create?path=fresh", "")
	wantStatus(t, r, 200)
	if n := countRows(t, ts, "fresh.db", "kv_store"); n != 0 {
		t.Fatalf("rows in a new database: got %d", n)
	}
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path=fresh&table=other", ""), 200)
	if n := countRows(t, ts, "fresh.db", "other"); n != 0 {
		t.Fatalf("rows in a new table: got %d", n)
	}
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/db/create?path=..%2Fx", ""), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "POST", "/api/v1/sqlite/db/create", ""), 400, "INVALID_DB_PATH")
}

// A table rollback's body lists at most httpapi.MaxListedKeys keys, and
// one that lists more is refused before it is decoded: 40 MiB of
// one-letter keys took 735 MB decoded. So is such a list under a name in
// another case, which encoding/json would decode (as an unknown member, as
// after the decoding; it was said to be too long), and a body that is no
// JSON (as such; it too was said to be too long).
func TestTableRollback_ALongKeyListIsRefusedBeforeDecoding(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), "1"), 200)
	const listed = 10 * httpapi.MaxListedKeys
	keys := `[` + strings.Repeat(`"a",`, listed-1) + `"a"]`
	tooLong := fmt.Sprintf("at most %d keys, got %d", httpapi.MaxListedKeys, listed)
	for body, want := range map[string]string{
		`{"keys":` + keys + `}`:                tooLong,
		`{"exclude_keys":` + keys + `}`:        tooLong,
		`{"EXCLUDE_KEYS":` + keys + `}`:        `unknown member "EXCLUDE_KEYS"`,
		`{"keys":` + keys + `,"exclude_keys"}`: "expected a JSON object",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=1", body)
		runtime.ReadMemStats(&after)
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"]; !contains(msg, want) {
			t.Errorf("%.20s…%s: message %q, want %q", body, body[len(body)-16:], msg, want)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 10*uint64(len(body)) {
			t.Errorf("%.20s… (%d bytes): %d MB allocated", body, len(body), allocated>>20)
		}
	}
	wantStatus(t, ts.do(t, "POST", "/api/v1/sqlite/kv/rollback?db=app&to_timestamp=1", `{"keys":[`+strings.Repeat(`"a",`, httpapi.MaxListedKeys-1)+`"a"]}`), 200)
}
