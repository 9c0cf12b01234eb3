package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/kvd/kvd/internal/srcconst"
	"github.com/kvd/kvd/sqlitekv"
)

// TestStatusTable_HasEveryCode fails when a code is added in one place
// only: a storage code (sqlitekv.Codes) or a code of this package with no
// status would answer 500, and a status for a code declared nowhere is a
// typo. The OpenAPI document served must list exactly the table's codes,
// with their statuses, since the client's tests check against it.
func TestStatusTable_HasEveryCode(t *testing.T) {
	known := map[sqlitekv.Code]string{}
	for _, code := range sqlitekv.Codes() {
		known[code] = "sqlitekv"
	}
	declared, err := srcconst.Declared(".", "sqlitekv.Code")
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range declared {
		known[sqlitekv.Code(value)] = name
	}
	for code, where := range known {
		if _, ok := statusOf[code]; !ok {
			t.Errorf("%s (%s) has no status in statusOf", code, where)
		}
	}
	for code := range statusOf {
		if known[code] == "" {
			t.Errorf("statusOf maps %s, declared as no constant here or in sqlitekv.Codes()", code)
		}
	}

	srv := httptest.NewServer(newDocServer(t))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Code struct {
							Enum     []string       `json:"enum"`
							Statuses map[string]int `json:"x-statuses"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET openapi.json: %d, %v", resp.StatusCode, err)
	}
	code := doc.Components.Schemas.Error.Properties.Code
	if !slices.IsSorted(code.Enum) || len(code.Enum) != len(statusOf) || len(code.Statuses) != len(statusOf) {
		t.Errorf("document: codes %v (want sorted), statuses %v; want the %d of statusOf", code.Enum, code.Statuses, len(statusOf))
	}
	for _, c := range code.Enum {
		if status, ok := statusOf[sqlitekv.Code(c)]; !ok || code.Statuses[c] != status {
			t.Errorf("document: %s answers %d, statusOf says %d (%v)", c, code.Statuses[c], status, ok)
		}
	}
}
