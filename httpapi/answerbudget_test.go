package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

// answerBudget is the byte budget of these tests' servers, and valueBytes
// the size of their values: a few values fill a page.
const (
	answerBudget = 64 << 10
	valueBytes   = 10 << 10
	// envelope is room for what an answer holds besides its items.
	envelope = 1 << 10
)

func withMaxAnswerBytes(n int64) serverOption {
	return func(_ *actors.Config, c *httpapi.Config) { c.MaxAnswerBytes = n }
}

// bigValue is value i of a test: valueBytes long, different for each i.
func bigValue(i int) string {
	return fmt.Sprintf("%04d", i) + strings.Repeat(string(rune('a'+i%26)), valueBytes-4)
}

// checkBounded fails when an answer of more than one item is larger than
// the budget allows.
func checkBounded(t *testing.T, what string, r response, items int) {
	t.Helper()
	wantStatus(t, r, 200)
	if items > 1 && len(r.Body) > answerBudget+envelope {
		t.Fatalf("%s: answer of %d items is %d bytes, want at most %d (the budget, %d, and %d for the envelope)",
			what, items, len(r.Body), answerBudget+envelope, answerBudget, envelope)
	}
	if items == 0 {
		t.Fatalf("%s: an answer with no item cannot move on: %.300s", what, r.Body)
	}
}

// checkOnce fails unless seen holds each of want exactly once.
func checkOnce(t *testing.T, what string, seen, want []string) {
	t.Helper()
	got := slices.Clone(seen)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %d items %q, want each of %d exactly once: %q", what, len(got), got, len(want), want)
	}
}

func TestHistory_LargeValuesComeInPagesWithinTheBudget(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(answerBudget))
	const versions = 20
	for i := range versions {
		// Binary values: history shows them as base64, a third larger.
		wantStatus(t, ts.do(t, "PUT", kv("doc", "db=app&create_db_if_missing=true"), bigValue(i),
			"Content-Type", "application/octet-stream"), 200)
	}
	var ops []string
	var newest []string // each write's value, newest first
	var oldest []string // each write's old value
	cut := false
	cursor := ""
	for page := 0; ; page++ {
		if page > versions {
			t.Fatalf("still paging after %d pages", page)
		}
		q := "db=app&limit=1000"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := ts.do(t, "GET", kv("doc/history", q), "")
		var res struct {
			Operations []struct {
				OpNumber  int64 `json:"op_number"`
				Operation struct {
					RawNewValue *string `json:"raw_new_value"`
					RawOldValue *string `json:"raw_old_value"`
				} `json:"operation"`
			} `json:"operations"`
			Truncated  bool   `json:"truncated"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatalf("page %d: %v: %.300s", page, err, r.Body)
		}
		checkBounded(t, fmt.Sprintf("history page %d", page), r, len(res.Operations))
		cut = cut || res.Truncated
		for _, op := range res.Operations {
			ops = append(ops, fmt.Sprint(op.OpNumber))
			newest = append(newest, decode64(t, op.Operation.RawNewValue))
			oldest = append(oldest, decode64(t, op.Operation.RawOldValue))
		}
		if cursor = res.NextCursor; cursor == "" {
			break
		}
	}
	if !cut {
		t.Fatalf("no page was cut by the budget: the test's values are too small to test it")
	}
	checkOnce(t, "history", ops, slices.Compact(slices.Clone(ops)))
	if len(newest) != versions {
		t.Fatalf("got %d writes over all pages, want %d", len(newest), versions)
	}
	for i, v := range newest {
		if want := bigValue(versions - 1 - i); v != want {
			t.Fatalf("write %d (newest first): got value %.8q..., want %.8q...", i, v, want)
		}
		if want := ""; i+1 < versions {
			want = bigValue(versions - 2 - i)
			if oldest[i] != want {
				t.Fatalf("write %d (newest first): old value %.8q..., want %.8q... (the write before it, across pages too)", i, oldest[i], want)
			}
		}
	}
}

func decode64(t *testing.T, s *string) string {
	t.Helper()
	if s == nil {
		return ""
	}
	data, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestHistory_CursorContinuesACountLimitedPageAndBadCursorsAre400(t *testing.T) {
	ts := newTestServer(t)
	for i := range 5 {
		wantStatus(t, ts.do(t, "PUT", kv("k", "db=app&create_db_if_missing=true"), fmt.Sprint(i)), 200)
	}
	first := ts.do(t, "GET", kv("k/history", "db=app&limit=3"), "").JSON(t)
	cursor, _ := first["next_cursor"].(string)
	if first["truncated"] != false || cursor == "" || len(first["operations"].([]any)) != 3 {
		t.Fatalf("first page of 3 of 5 writes: got %v, want 3 writes, truncated false and a next_cursor", first)
	}
	rest := ts.do(t, "GET", kv("k/history", "db=app&limit=3&cursor="+url.QueryEscape(cursor)), "").JSON(t)
	ops := rest["operations"].([]any)
	if len(ops) != 2 || rest["next_cursor"] != nil {
		t.Fatalf("second page: got %v, want the 2 oldest writes and no next_cursor", rest)
	}
	if oldest := ops[1].(map[string]any)["operation"].(map[string]any); oldest["new_value"] != float64(0) || oldest["old_value"] != nil {
		t.Fatalf("oldest write: got %v, want new_value 0 and no old_value", oldest)
	}
	for _, bad := range []string{"", "x", "3", "3-", "-5", "0-1", "3-x", "9223372036854775808-1"} {
		wantError(t, ts.do(t, "GET", kv("k/history", "db=app&cursor="+url.QueryEscape(bad)), ""), 400, "INVALID_PARAMETERS")
	}
}

// putBigKeys writes n keys k00.. with bigValue values as text and returns
// the keys and the time after the writes.
func putBigKeys(t *testing.T, ts *testServer, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		key := fmt.Sprintf("k%02d", i)
		keys = append(keys, key)
		wantStatus(t, ts.do(t, "PUT", kv(key, "db=app&create_db_if_missing=true"), bigValue(i), "Content-Type", "text/plain"), 200)
	}
	return keys
}

// pageByAfter follows next_after from path until the last page, checking
// every answer's size, and returns the items each page listed (by items).
func pageByAfter(t *testing.T, ts *testServer, path string, items func(map[string]any) []string) (seen []string, cut bool) {
	t.Helper()
	after := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatalf("%s: still paging after %d pages", path, page)
		}
		p := path
		if after != "" {
			p += "&after=" + url.QueryEscape(after)
		}
		r := ts.do(t, "GET", p, "")
		m := r.JSON(t)
		got := items(m)
		checkBounded(t, p, r, len(got))
		seen = append(seen, got...)
		cut = cut || m["truncated"] == true
		if m["truncated"] == true && m["candidate_truncated"] != true {
			t.Fatalf("%s: a page cut by the budget must say candidate_truncated too (older clients page on it): %.300s", p, r.Body)
		}
		if after, _ = m["next_after"].(string); after == "" {
			return seen, cut
		}
	}
}

func TestTableSnapshot_LargeValuesComeInPagesWithinTheBudget(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(answerBudget))
	keys := putBigKeys(t, ts, 30)
	when := fmt.Sprint(ts.Clock.Now().Unix())
	seen, cut := pageByAfter(t, ts, "/api/v1/sqlite/kv/snapshot?db=app&limit=1000&timestamp="+when, func(m map[string]any) []string {
		var got []string
		for k, v := range m["entries"].(map[string]any) {
			if i := slices.Index(keys, k); v != bigValue(i) {
				t.Fatalf("snapshot of %s: got %.8q..., want %.8q...", k, v, bigValue(i))
			}
			got = append(got, k)
		}
		return got
	})
	if !cut {
		t.Fatalf("no page was cut by the budget")
	}
	checkOnce(t, "snapshot", seen, keys)
}

func TestDiff_LargeChangesComeInPagesWithinTheBudget(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(answerBudget))
	from := fmt.Sprint(ts.Clock.Now().Unix() - 1)
	keys := putBigKeys(t, ts, 30)
	to := fmt.Sprint(ts.Clock.Now().Unix())
	changes := func(m map[string]any) []string {
		var got []string
		for _, c := range m["changes"].([]any) {
			c := c.(map[string]any)
			if i := slices.Index(keys, c["key"].(string)); c["change"] != "created" || c["new_value"] != bigValue(i) {
				t.Fatalf("change of %v: got %v %.8q..., want created %.8q...", c["key"], c["change"], c["new_value"], bigValue(i))
			}
			got = append(got, c["key"].(string))
		}
		return got
	}
	base := "/api/v1/sqlite/kv/diff?db=app&from=" + from + "&to=" + to
	t.Run("every key with history", func(t *testing.T) {
		seen, cut := pageByAfter(t, ts, base+"&limit=1000", changes)
		if !cut {
			t.Fatalf("no page was cut by the budget")
		}
		checkOnce(t, "diff", seen, keys)
	})
	t.Run("named keys", func(t *testing.T) {
		named := slices.Clone(keys)
		slices.Reverse(named) // pages go in byte order whatever the order named
		seen, cut := pageByAfter(t, ts, base+"&keys="+url.QueryEscape(strings.Join(append(named, "k00"), ",")), changes)
		if !cut {
			t.Fatalf("no page was cut by the budget")
		}
		checkOnce(t, "diff of named keys", seen, keys)
	})
}

func TestBatchGet_LargeValuesComeInPartsWithinTheBudget(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(answerBudget))
	keys := putBigKeys(t, ts, 30)
	ask := append(slices.Clone(keys), "missing", "k00")
	var seen []string
	cut := false
	for part := 0; len(ask) > 0; part++ {
		if part > 30 {
			t.Fatalf("still asking after %d parts", part)
		}
		body, _ := json.Marshal(map[string][]string{"keys": ask})
		r := ts.do(t, "POST", "/api/v1/sqlite/kv/batch/get?db=app", string(body))
		var res struct {
			Values    map[string]*struct{ Value any } `json:"values"`
			Truncated bool                            `json:"truncated"`
			NextKeys  []string                        `json:"next_keys"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatalf("part %d: %v: %.300s", part, err, r.Body)
		}
		checkBounded(t, fmt.Sprintf("batch get part %d", part), r, len(res.Values))
		for k, v := range res.Values {
			switch i := slices.Index(keys, k); {
			case k == "missing" && v != nil:
				t.Fatalf("missing key: got %v, want null", v.Value)
			case k != "missing" && (v == nil || v.Value != bigValue(i)):
				t.Fatalf("value of %s: got %v, want %.8q...", k, v, bigValue(i))
			}
			seen = append(seen, k)
		}
		if res.Truncated != (len(res.NextKeys) > 0) {
			t.Fatalf("part %d: truncated %v with next_keys %q", part, res.Truncated, res.NextKeys)
		}
		cut = cut || res.Truncated
		ask = res.NextKeys
	}
	if !cut {
		t.Fatalf("no answer was cut by the budget")
	}
	checkOnce(t, "batch get", seen, append(keys, "missing"))
}

func TestList_LongKeysComeInPagesWithinTheBudget(t *testing.T) {
	const budget = 16 << 10
	ts := newTestServer(t, withMaxAnswerBytes(budget))
	var keys []string
	for i := range 40 {
		key := fmt.Sprintf("%02d", i) + strings.Repeat("k", 1000)
		keys = append(keys, key)
		wantStatus(t, ts.do(t, "PUT", kv(key, "db=app&create_db_if_missing=true"), "v"), 200)
	}
	bounded := func(t *testing.T, what string, r response, items int) {
		t.Helper()
		if wantStatus(t, r, 200); items > 1 && len(r.Body) > budget+envelope || items == 0 {
			t.Fatalf("%s: %d keys in %d bytes, want 1 or more within %d", what, items, len(r.Body), budget+envelope)
		}
	}
	t.Run("now, by offset", func(t *testing.T) {
		var seen []string
		cut := false
		for offset, page := 0, 0; ; page++ {
			if page > 40 {
				t.Fatalf("still paging after %d pages", page)
			}
			r := ts.do(t, "GET", fmt.Sprintf("/api/v1/sqlite/kv?db=app&limit=1000&offset=%d", offset), "")
			m := r.JSON(t)
			got := strs(m["keys"])
			bounded(t, "list", r, len(got))
			seen = append(seen, got...)
			if m["count"] != float64(len(got)) {
				t.Fatalf("count %v for %d keys", m["count"], len(got))
			}
			if m["truncated"] != true {
				break
			}
			cut = true
			offset = int(m["next_offset"].(float64))
		}
		if !cut {
			t.Fatalf("no page was cut by the budget")
		}
		checkOnce(t, "list", seen, keys)
	})
	t.Run("at a time, by after", func(t *testing.T) {
		var seen []string
		cut := false
		for after, page := "", 0; ; page++ {
			if page > 40 {
				t.Fatalf("still paging after %d pages", page)
			}
			r := ts.do(t, "GET", fmt.Sprintf("/api/v1/sqlite/kv?db=app&limit=1000&at_timestamp=%d&after=%s", ts.Clock.Now().Unix(), url.QueryEscape(after)), "")
			m := r.JSON(t)
			got := strs(m["keys"])
			bounded(t, "list at", r, len(got))
			seen = append(seen, got...)
			cut = cut || m["truncated"] == true
			if after, _ = m["next_after"].(string); after == "" {
				break
			}
		}
		if !cut {
			t.Fatalf("no page was cut by the budget")
		}
		checkOnce(t, "list at", seen, keys)
	})
}

// TestAnswers_OneItemLargerThanTheBudgetStillComesBack: a page always
// holds an item, so paging moves on even when one item exceeds the budget.
func TestAnswers_OneItemLargerThanTheBudgetStillComesBack(t *testing.T) {
	ts := newTestServer(t, withMaxAnswerBytes(1024))
	big := bytes.Repeat([]byte("x"), 4096)
	for _, k := range []string{"a", "b"} {
		wantStatus(t, ts.do(t, "PUT", kv(k, "db=app&create_db_if_missing=true"), string(big)), 200)
	}
	h := ts.do(t, "GET", kv("a/history", "db=app"), "").JSON(t)
	if len(h["operations"].([]any)) != 1 || h["next_cursor"] != nil {
		t.Fatalf("history of one write larger than the budget: got %v, want that write and no cursor", h)
	}
	b := ts.do(t, "POST", "/api/v1/sqlite/kv/batch/get?db=app", `{"keys":["a","b"]}`).JSON(t)
	if len(b["values"].(map[string]any)) != 1 || len(strs(b["next_keys"])) != 1 {
		t.Fatalf("batch get of two values each larger than the budget: got %d values, next_keys %v; want 1 and 1", len(b["values"].(map[string]any)), b["next_keys"])
	}
}
