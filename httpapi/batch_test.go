package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/httpapi"
)

const batchPath = "/api/v1/sqlite/kv/batch/"

func batchItems(n int, value func(i int) string) string {
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"key": fmt.Sprintf("k%03d", i), "value": value(i)}
	}
	body, _ := json.Marshal(map[string]any{"items": items})
	return string(body)
}

func TestBatchSet_ThenBatchGetAndGetReturnEveryKindOfValue(t *testing.T) {
	ts := newTestServer(t)
	binary := string([]byte{0xff, 0x00, 0xfe, 0x01})
	items := []map[string]any{
		{"key": "json", "value": `{"name":"Alice","tags":["a"]}`},
		{"key": "text", "value": "plain words"},
		{"key": "bin", "value": base64.StdEncoding.EncodeToString([]byte(binary)), "encoding": "base64"},
		{"key": "html", "value": "<p>hi</p>", "content_type": "text/html"},
		{"key": "users/bob", "value": `42`, "ttl": 60},
	}
	body, _ := json.Marshal(map[string]any{"items": items})
	r := ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", string(body))
	wantStatus(t, r, 200)
	m := r.JSON(t)
	if m["status"] != "ok" || m["success"] != true || m["count"] != 5.0 || len(m["created"].([]any)) != 5 {
		t.Fatalf("batch/set: got %s", r.Body)
	}

	get := ts.do(t, "POST", batchPath+"get?db=app", `{"keys":["json","text","bin","html","users/bob","missing"]}`)
	wantStatus(t, get, 200)
	var out struct {
		Values map[string]*struct {
			Value       json.RawMessage `json:"value"`
			ContentType string          `json:"content_type"`
			Encoding    string          `json:"encoding"`
		} `json:"values"`
	}
	if err := json.Unmarshal(get.Body, &out); err != nil {
		t.Fatal(err)
	}
	if v := out.Values["json"]; v == nil || string(v.Value) != `{"name":"Alice","tags":["a"]}` || v.ContentType != "application/json" {
		t.Fatalf("json: got %+v", v)
	}
	if v := out.Values["text"]; v == nil || string(v.Value) != `"plain words"` || v.ContentType != "text/plain" {
		t.Fatalf("text: got %+v", v)
	}
	if v := out.Values["html"]; v == nil || string(v.Value) != `"<p>hi</p>"` || v.ContentType != "text/html" {
		t.Fatalf("html: got %+v", v)
	}
	var b64 string
	if v := out.Values["bin"]; v == nil || v.Encoding != "base64" || json.Unmarshal(v.Value, &b64) != nil {
		t.Fatalf("bin: got %+v", v)
	}
	if decoded, _ := base64.StdEncoding.DecodeString(b64); string(decoded) != binary {
		t.Fatalf("bin bytes: got %x, want %x", decoded, binary)
	}
	if v, ok := out.Values["missing"]; !ok || v != nil {
		t.Fatalf("missing: got %v present=%v, want null", v, ok)
	}
	// Plain GET sees the same bytes and metadata.
	if got := ts.do(t, "GET", kv("bin", "db=app"), ""); string(got.Body) != binary || got.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET bin: got %x (%s)", got.Body, got.Header.Get("Content-Type"))
	}
	if got := ts.do(t, "GET", kv("users%2Fbob", "db=app"), ""); string(got.Body) != "42" || got.Header.Get("X-Expire-At") == "" {
		t.Fatalf("GET users/bob: got %q, X-Expire-At %q", got.Body, got.Header.Get("X-Expire-At"))
	}
	ts.Clock.Advance(61 * time.Second)
	expired := ts.do(t, "POST", batchPath+"get?db=app", `{"keys":["users/bob"]}`)
	if !strings.Contains(string(expired.Body), `"users/bob":null`) {
		t.Fatalf("expired key in batch/get: got %s, want null", expired.Body)
	}
}

// A value labelled JSON that is no JSON (kvd keeps a "+json" type as
// declared) comes back from batch/get in base64, not as a string a client
// would read as JSON text: its bytes, without quotes around them.
func TestBatchGet_AValueLabelledJSONThatIsNotComesInBase64(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("t", "db=app&create_db_if_missing=true"), "not json", "Content-Type", "application/vnd.x+json")
	v := ts.do(t, "POST", batchPath+"get?db=app", `{"keys":["t"]}`).JSON(t)["values"].(map[string]any)["t"].(map[string]any)
	if v["encoding"] != "base64" || v["value"] != base64.StdEncoding.EncodeToString([]byte("not json")) {
		t.Fatalf("batch/get of a +json value that is not JSON: got %v", v)
	}
}

func TestBatchSet_DuplicatesLastWinsAndCreatedOnce(t *testing.T) {
	ts := newTestServer(t)
	r := ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true",
		`{"items":[{"key":"a","value":"1"},{"key":"a","value":"2"},{"key":"b","value":"x"}]}`)
	if m := r.JSON(t); m["count"] != 3.0 || fmt.Sprint(m["created"]) != "[a b]" {
		t.Fatalf("batch/set with duplicates: got %s", r.Body)
	}
	if got := string(ts.do(t, "GET", kv("a", "db=app"), "").Body); got != "2" {
		t.Fatalf("a: got %q, want 2 (last wins)", got)
	}
	r = ts.do(t, "POST", batchPath+"set?db=app", `{"items":[{"key":"a","value":"3"},{"key":"c","value":"y"}]}`)
	if fmt.Sprint(r.JSON(t)["created"]) != "[c]" {
		t.Fatalf("created on second batch: got %s, want [c]", r.Body)
	}
}

func TestBatchSet_OneBadItemWritesNothing(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "PUT", kv("seed", "db=app&create_db_if_missing=true"), "x")
	items := make([]map[string]any, 100)
	for i := range items {
		items[i] = map[string]any{"key": fmt.Sprintf("k%03d", i), "value": "v"}
	}
	cases := map[string]any{
		"value": 57, // not a string
		"key":   "", // empty key
		"ttl":   -1, // bad ttl
	}
	for field, bad := range cases {
		t.Run(field, func(t *testing.T) {
			items[56] = map[string]any{"key": "k056", "value": "v", field: bad}
			body, _ := json.Marshal(map[string]any{"items": items})
			r := ts.do(t, "POST", batchPath+"set?db=app", string(body))
			wantError(t, r, 400, "INVALID_PARAMETERS")
			if msg := r.JSON(t)["message"].(string); !strings.HasPrefix(msg, "Invalid JSON body") || !strings.Contains(msg, "items[56]") {
				t.Fatalf("message: got %q, want it to start with Invalid JSON body and name items[56]", msg)
			}
			if n := countRows(t, ts, "app.db", "kv_store"); n != 1 {
				t.Fatalf("rows after refused batch: got %d, want 1", n)
			}
		})
	}
}

func TestBatch_SizeAndBodyRules(t *testing.T) {
	ts := newTestServer(t)
	q := "?db=app&create_db_if_missing=true"
	tooMany := batchItems(101, func(int) string { return "v" })
	keys101, _ := json.Marshal(map[string]any{"keys": strings.Split(strings.Repeat("k,", 100)+"k", ",")})
	for name, c := range map[string]struct{ op, body string }{
		"101 items":         {"set", tooMany},
		"no items":          {"set", `{"items":[]}`},
		"items missing":     {"set", `{}`},
		"not an object":     {"set", `[1,2]`},
		"broken json":       {"set", `{"items":[`},
		"empty body":        {"get", ``},
		"101 keys":          {"get", string(keys101)},
		"key not a string":  {"delete", `{"keys":[1]}`},
		"keys not an array": {"get", `{"keys":"a"}`},
		"control char key":  {"get", `{"keys":["a\u0001"]}`},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, ts.do(t, "POST", batchPath+c.op+q, c.body), 400, "INVALID_PARAMETERS")
		})
	}
	wantStatus(t, ts.do(t, "POST", batchPath+"set"+q, batchItems(100, func(int) string { return "v" })), 200)
	wantError(t, ts.do(t, "POST", batchPath+"get?db=nope", `{"keys":["a"]}`), 404, "DATABASE_NOT_FOUND")
	wantError(t, ts.do(t, "POST", batchPath+"set?db=..%2Fx", `{"items":[{"key":"a","value":"b"}]}`), 400, "INVALID_DB_PATH")
	wantError(t, ts.do(t, "POST", batchPath+"set?db=app&table=bad-name", `{"items":[{"key":"a","value":"b"}]}`), 400, "INVALID_PARAMETERS")
	wantError(t, ts.do(t, "GET", batchPath+"get?db=app", ""), 405, "METHOD_NOT_ALLOWED")
}

// encoding/json takes "Items" for "items" and keeps the last of a member
// given twice: {"key":"a","value":"1","key":"b"} wrote b alone. Such
// bodies are refused, naming where, and nothing is written.
func TestBatch_MemberNamesAreExactAndEachGivenOnce(t *testing.T) {
	ts := newTestServer(t)
	q := "?db=app&create_db_if_missing=true"
	for body, want := range map[string]string{
		`{"items":[{"key":"a","value":"1"},{"key":"b","value":"1","key":"c"}]}`: `items[1] names member "key" twice`,
		`{"items":[],"items":[{"key":"d","value":"1"}]}`:                        `the body names member "items" twice`,
		`{"items":[{"Key":"e","value":"1"}]}`:                                   `unknown member "Key"`,
	} {
		r := ts.do(t, "POST", batchPath+"set"+q, body)
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"]; !contains(msg, want) {
			t.Errorf("%s: message %q, want it to say %s", body, msg, want)
		}
	}
	wantStatus(t, ts.do(t, "POST", batchPath+"set"+q, `{"items":[{"key":"z","value":"1"}]}`), 200)
	r := ts.do(t, "POST", batchPath+"get?db=app", `{"keys":["a","b","c","d","e"]}`)
	if got := string(r.Body); got != `{"values":{"a":null,"b":null,"c":null,"d":null,"e":null},"truncated":false}`+"\n" {
		t.Fatalf("after the refused batches: got %s", got)
	}
}

func TestBatch_PayloadTooLarge(t *testing.T) {
	ts := newTestServer(t, func(_ *actors.Config, h *httpapi.Config) { h.MaxValueBytes = 100 })
	big := strings.Repeat("x", 101)
	wantError(t, ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", `{"items":[{"key":"a","value":"`+big+`"}]}`), 413, "PAYLOAD_TOO_LARGE")
	wantError(t, ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", `{"items":[{"key":"a","value":"`+strings.Repeat("y", 500)+`"}]}`), 413, "PAYLOAD_TOO_LARGE")
}

func TestBatchDelete_CountsOnlyExistingKeys(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", `{"items":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"c","value":"3"}]}`)
	r := ts.do(t, "POST", batchPath+"delete?db=app", `{"keys":["a","b","zzz","a"]}`)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["deleted"] != 2.0 || m["success"] != true || m["status"] != "ok" {
		t.Fatalf("batch/delete: got %s, want deleted 2", r.Body)
	}
	wantError(t, ts.do(t, "GET", kv("a", "db=app"), ""), 404, "KEY_NOT_FOUND")
	wantStatus(t, ts.do(t, "GET", kv("c", "db=app"), ""), 200)
}

func TestBatch_HistoryRecordsEachItem(t *testing.T) {
	ts := newTestServer(t)
	t0 := ts.Clock.Now().Unix()
	ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", `{"items":[{"key":"a","value":"1"},{"key":"b","value":"2"}]}`)
	ts.Clock.Advance(10 * time.Second)
	ts.do(t, "POST", batchPath+"set?db=app&history=false", `{"items":[{"key":"a","value":"9"}]}`)
	ts.Clock.Advance(10 * time.Second)
	ts.do(t, "POST", batchPath+"delete?db=app", `{"keys":["b"]}`)
	if got := ts.do(t, "GET", at("b", t0, 1), ""); string(got.Body) != "2" {
		t.Fatalf("b at t0+1: got %q, want 2", got.Body)
	}
	wantError(t, ts.do(t, "GET", at("a", t0, 11), ""), 409, "TIME_TRAVEL_GAP")
	wantError(t, ts.do(t, "GET", at("b", t0, 21), ""), 404, "KEY_NOT_FOUND")
	if n := countRows(t, ts, "app.db", "kv_store:history"); n != 4 {
		t.Fatalf("history rows: got %d, want 4 (two sets, a gap marker, a delete)", n)
	}
}

func TestBatchGet_NeverSeesAMixOfTwoBatches(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "POST", batchPath+"set?db=app&create_db_if_missing=true", batchItems(100, func(int) string { return "0" }))
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	getBody, _ := json.Marshal(map[string]any{"keys": keys})
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 1; round <= 200 && !stop.Load(); round++ {
			r := ts.do(t, "POST", batchPath+"set?db=app", batchItems(100, func(int) string { return fmt.Sprint(round) }))
			if r.Status != 200 {
				t.Errorf("batch/set: %d %s", r.Status, r.Body)
				return
			}
		}
	}()
	mixes, reads := 0, 0
	for ; reads < 300; reads++ {
		r := ts.do(t, "POST", batchPath+"get?db=app", string(getBody))
		var out struct {
			Values map[string]struct{ Value json.RawMessage } `json:"values"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatalf("batch/get: %s", r.Body)
		}
		seen := map[string]bool{}
		for _, v := range out.Values {
			seen[string(v.Value)] = true
		}
		if len(seen) != 1 {
			mixes++
		}
	}
	stop.Store(true)
	wg.Wait()
	if mixes != 0 {
		t.Fatalf("batch/get saw a mix of batches %d times in %d reads", mixes, reads)
	}
}

// A batch body of more entries than a batch may hold is refused before
// it is decoded: 40 MiB of {} decoded into items took 4 GB before the
// count refused them, and six such bodies fit the body memory at once.
// Under a name in another case, which encoding/json would decode, they
// are an unknown member, as after the decoding; in a body that is no
// JSON, that body is said to be (both were said to be too many).
func TestBatch_TooManyEntriesAreRefusedBeforeDecoding(t *testing.T) {
	ts := newTestServer(t)
	wantStatus(t, ts.do(t, "PUT", kv("a", "db=app&create_db_if_missing=true"), "1"), 200)
	const entries = 1_000_000
	items := `[` + strings.Repeat(`{},`, entries-1) + `{}]`
	for name, c := range map[string]struct{ body, want string }{
		"set":              {`{"items":` + items + `}`, "got 1000000"},
		"get":              {`{"keys":[` + strings.Repeat(`0,`, entries-1) + `0]}`, "got 1000000"},
		"set ITEMS":        {`{"ITEMS":` + items + `}`, `unknown member "ITEMS"`},
		"set items, again": {`{"items":[],"items":` + items + `}`, "got 1000000"},
		"set \\u0069tems":  {`{"\u0069tems":` + items + `}`, "got 1000000"},
		"set not JSON":     {`{"items":` + items + `,}`, "expected a JSON object"},
	} {
		op, _, _ := strings.Cut(name, " ")
		body := c.body
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := ts.do(t, "POST", batchPath+op+"?db=app", body)
		runtime.ReadMemStats(&after)
		wantError(t, r, 400, "INVALID_PARAMETERS")
		if msg := r.JSON(t)["message"]; !contains(msg, c.want) {
			t.Errorf("%s: message %q, want %q", name, msg, c.want)
		}
		// The body is read (3 MB) and copied in the test's client; decoded,
		// it took more than 100 MB.
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 10*uint64(len(body)) {
			t.Errorf("%s of %d entries (%d bytes): %d MB allocated", name, entries, len(body), allocated>>20)
		}
	}
}
