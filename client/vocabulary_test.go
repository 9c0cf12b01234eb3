package client_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"strconv"
	"testing"
)

// sentinel is one Err... variable of errors.go, read from the source: Go
// cannot list a package's variables otherwise.
type sentinel struct {
	name   string
	status int
}

// sentinels reads the &Error{StatusCode: ..., Code: "..."} variables of
// errors.go, by code.
func sentinels(t *testing.T) map[string]sentinel {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]sentinel{}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.VAR {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, value := range vs.Values {
				addr, ok := value.(*ast.UnaryExpr)
				if !ok {
					continue
				}
				lit, ok := addr.X.(*ast.CompositeLit)
				if !ok || typeName(lit) != "Error" {
					continue
				}
				var code string
				s := sentinel{name: vs.Names[i].Name}
				for _, elt := range lit.Elts {
					kv := elt.(*ast.KeyValueExpr)
					v, _ := kv.Value.(*ast.BasicLit)
					if v == nil {
						t.Fatalf("%s: %s is not a literal", s.name, kv.Key)
					}
					switch kv.Key.(*ast.Ident).Name {
					case "StatusCode":
						s.status, _ = strconv.Atoi(v.Value)
					case "Code":
						code, _ = strconv.Unquote(v.Value)
					}
				}
				if code == "" || s.status == 0 {
					t.Fatalf("%s: want both StatusCode and Code", s.name)
				}
				if other, dup := found[code]; dup {
					t.Errorf("%s and %s share the code %s", other.name, s.name, code)
				}
				found[code] = s
			}
		}
	}
	return found
}

func typeName(lit *ast.CompositeLit) string {
	id, _ := lit.Type.(*ast.Ident)
	if id == nil {
		return ""
	}
	return id.Name
}

// TestSentinels_MatchKvdsCodes fails when kvd answers a code the client
// has no sentinel for, or the client has one kvd never answers, or their
// statuses differ: the list is kvd's own OpenAPI document, which kvd
// builds from its status table.
func TestSentinels_MatchKvdsCodes(t *testing.T) {
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, kvdURL+"/api/v1/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
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
	kvd := doc.Components.Schemas.Error.Properties.Code
	if len(kvd.Enum) == 0 || len(kvd.Statuses) != len(kvd.Enum) {
		t.Fatalf("document: codes %v, statuses %v", kvd.Enum, kvd.Statuses)
	}
	ours := sentinels(t)
	for _, code := range kvd.Enum {
		s, ok := ours[code]
		switch {
		case !ok:
			t.Errorf("kvd answers %s (%d): no sentinel in errors.go", code, kvd.Statuses[code])
		case s.status != kvd.Statuses[code]:
			t.Errorf("%s: status %d, kvd answers %s with %d", s.name, s.status, code, kvd.Statuses[code])
		}
	}
	for code, s := range ours {
		if _, ok := kvd.Statuses[code]; !ok {
			t.Errorf("%s: kvd never answers %s", s.name, code)
		}
	}
}
