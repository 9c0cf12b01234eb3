package bench

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestVerify_PassesAgainstACorrectServer(t *testing.T) {
	for _, cfg := range []Config{
		{Scenario: "incr-hot"},
		{Scenario: "incr-spread", Keys: 20},
		{Scenario: "cas", Keys: 4},
		{Scenario: "cas", Keys: 2, ETag: true},
	} {
		name := cfg.Scenario
		if cfg.ETag {
			name += "/etag"
		}
		t.Run(name, func(t *testing.T) {
			_, u := newFake(t, nil)
			cfg.URL, cfg.Conns, cfg.Requests, cfg.Verify = u, 8, 400, true
			res := run(t, cfg)
			v := res.Verify
			if v == nil || !v.OK {
				t.Fatalf("got verification %+v, want ok", v)
			}
			if v.Acknowledged != res.Status["200"] || v.Applied != v.Acknowledged || v.Unknown != 0 {
				t.Errorf("got %d acknowledged, %d applied, %d unknown; want %d, %d, 0",
					v.Acknowledged, v.Applied, v.Unknown, res.Status["200"], res.Status["200"])
			}
			if cfg.Scenario != "cas" && v.Acknowledged != 400 {
				t.Errorf("got %d incr acknowledged, want 400", v.Acknowledged)
			}
			if cfg.Scenario == "cas" && res.Status["200"]+res.Status["412"] != 400 {
				t.Errorf("got cas status %v, want only 200 and 412", res.Status)
			}
		})
	}
}

// Verification must be able to fail: a server that acknowledges a write it
// did not store, or stores one twice, is caught.
func TestVerify_FailsAgainstAFaultyServer(t *testing.T) {
	for name, tc := range map[string]struct {
		fake     *fakeKV
		scenario string
		applied  int64 // relative to acknowledged
	}{
		"incr-hot drops one":    {&fakeKV{dropIncr: 57}, "incr-hot", -1},
		"incr-spread drops one": {&fakeKV{dropIncr: 57}, "incr-spread", -1},
		"incr-hot doubles one":  {&fakeKV{doubleIncr: 57}, "incr-hot", +1},
		"cas loses an ok write": {&fakeKV{dropCAS: 7}, "cas", -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, u := newFake(t, tc.fake)
			res := run(t, Config{URL: u, Scenario: tc.scenario, Keys: 5, Conns: 4, Requests: 200, Verify: true})
			v := res.Verify
			if v.OK || len(v.Mismatches) != 1 {
				t.Fatalf("got ok=%v with %d mismatches, want a failure on one key: %s", v.OK, len(v.Mismatches), v.Message)
			}
			if got := v.Applied - v.Acknowledged; got != tc.applied {
				t.Errorf("got applied-acknowledged = %d, want %d", got, tc.applied)
			}
		})
	}
}

func TestVerify_CountsFromTheInitialValue(t *testing.T) {
	f, u := newFake(t, nil)
	f.set(DefaultDB, "kvbench/hot", []byte("1000"))
	res := run(t, Config{URL: u, Scenario: "incr-hot", Conns: 2, Requests: 50, Verify: true})
	if !res.Verify.OK {
		t.Fatalf("verification failed: %s", res.Verify.Message)
	}
	if v, _ := f.value(DefaultDB, "kvbench/hot"); string(v) != "1050" {
		t.Errorf("got counter %s, want 1050", v)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		o                Outcome
		acked, uncertain bool
	}{
		{Outcome{Status: 200}, true, false},
		{Outcome{Status: 412}, false, false},
		{Outcome{Status: 503}, false, false}, // OVERLOADED: refused, not applied
		{Outcome{Status: 500}, false, true},
		{Outcome{Err: errors.New("reset")}, false, true},
	} {
		a, u := classify(tc.o)
		if a != tc.acked || u != tc.uncertain {
			t.Errorf("classify(%+v) = %v, %v; want %v, %v", tc.o, a, u, tc.acked, tc.uncertain)
		}
	}
}

// A write that got no answer may or may not have been applied; either way
// the run still verifies, but a missing acknowledged write never does.
func TestVerifyCounters_AllowsUnknownWrites(t *testing.T) {
	f, u := newFake(t, nil)
	c, err := NewClient(u, DefaultDB, "", "", 1, DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := newIncr(c, []string{DefaultDB}, []string{"a", "b"})
	f.set(DefaultDB, "a", []byte("3"))
	f.set(DefaultDB, "b", []byte("5"))
	s.initial = []int64{0, 0}
	if v := verifyCounters(t.Context(), &s.counters, []int64{2, 5}, []int64{1, 0}); !v.OK {
		t.Errorf("2 acknowledged + 1 unknown, stored 3: got %s, want ok", v.Message)
	}
	if v := verifyCounters(t.Context(), &s.counters, []int64{4, 5}, []int64{0, 0}); v.OK {
		t.Error("4 acknowledged, stored 3: got ok, want a failure")
	}
}

// Across databases every (database, key) is counted and read back from its
// own database, and each database's totals add up.
func TestVerify_PassesAcrossDatabases(t *testing.T) {
	for _, cfg := range []Config{
		{Scenario: "incr-hot"},
		{Scenario: "incr-spread", Keys: 10},
		{Scenario: "cas", Keys: 2},
	} {
		t.Run(cfg.Scenario, func(t *testing.T) {
			f, u := newFake(t, nil)
			cfg.URL, cfg.DBs, cfg.Conns, cfg.Requests, cfg.Verify = u, 3, 8, 600, true
			res := run(t, cfg)
			v := res.Verify
			if v == nil || !v.OK || v.Applied != res.Status["200"] || len(v.PerDB) != 3 {
				t.Fatalf("got verification %+v, want ok with %d applied over 3 databases", v, res.Status["200"])
			}
			if v.Keys != 3*res.Keys {
				t.Errorf("got %d counters, want %d keys in each of 3 databases", v.Keys, res.Keys)
			}
			for _, d := range v.PerDB {
				var stored int64
				for k := range res.Keys {
					key := "kvbench/hot"
					if cfg.Scenario != "incr-hot" {
						key = keyNames("kvbench/"+map[string]string{"incr-spread": "counter/", "cas": "cas/"}[cfg.Scenario], res.Keys)[k]
					}
					b, _ := f.value(d.DB, key)
					n, _ := strconv.ParseInt(string(b), 10, 64)
					stored += n
				}
				if d.Applied != d.Acknowledged || stored != d.Acknowledged || d.Acknowledged == 0 {
					t.Errorf("database %s: %d acknowledged, %d applied, the fake holds %d", d.DB, d.Acknowledged, d.Applied, stored)
				}
			}
		})
	}
}

// A server that loses one acknowledged increment in one database fails the
// verification, which names that database and no other.
func TestVerify_FailsNamingTheDatabaseThatLostAnIncrement(t *testing.T) {
	for _, scenario := range []string{"incr-hot", "incr-spread"} {
		t.Run(scenario, func(t *testing.T) {
			_, u := newFake(t, &fakeKV{dropIncr: 20, dropIncrDB: "bench-2"})
			res := run(t, Config{URL: u, Scenario: scenario, DBs: 4, Keys: 5, Conns: 4, Requests: 400, Verify: true})
			v := res.Verify
			if v.OK || len(v.Mismatches) != 1 || v.Mismatches[0].DB != "bench-2" {
				t.Fatalf("got ok=%v, mismatches %+v; want one, in bench-2: %s", v.OK, v.Mismatches, v.Message)
			}
			if v.Applied-v.Acknowledged != -1 {
				t.Errorf("got applied-acknowledged = %d, want -1", v.Applied-v.Acknowledged)
			}
			if !strings.Contains(v.Message, "in 1 database (bench-2)") {
				t.Errorf("message %q does not name bench-2", v.Message)
			}
			for _, d := range v.PerDB {
				if got, want := d.Mismatches, map[bool]int{true: 1}[d.DB == "bench-2"]; got != want {
					t.Errorf("database %s: %d mismatches, want %d", d.DB, got, want)
				}
			}
			err := res.Failed()
			var table bytes.Buffer
			res.WriteTable(&table)
			if err == nil || !strings.Contains(err.Error(), "bench-2") || !strings.Contains(table.String(), "in database bench-2") {
				t.Errorf("got error %v and table\n%s\nwant both to name bench-2", err, table.String())
			}
		})
	}
}
