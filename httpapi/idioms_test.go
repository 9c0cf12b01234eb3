package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestSource_OneLeaseAndNoErrorAssertions keeps to one idiom per job what
// behaviour tests cannot see: a handler reaches a database only through
// withDB (lease.go), and no error is type-asserted (an unchecked
// err.(*sqlitekv.Error) panics the day a cause is wrapped; errors.As does
// not). An Is method comparing its target is the one assertion allowed.
func TestSource_OneLeaseAndNoErrorAssertions(t *testing.T) {
	dirs := []string{".", "../actors", "../client", "../cmd/kvd", "../cmd/kvctl", "../cmd/kvbench"}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			checkIdioms(t, name, dir == "." && filepath.Base(name) != "lease.go")
		}
	}
}

func checkIdioms(t *testing.T, name string, noOpen bool) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, decl := range f.Decls {
		fn, isFunc := decl.(*ast.FuncDecl)
		isMethodIs := isFunc && fn.Recv != nil && fn.Name.Name == "Is"
		ast.Inspect(decl, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeAssertExpr:
				if n.Type != nil && assertsError(n) && !isMethodIs {
					t.Errorf("%s: an error is type-asserted; use errors.As", fset.Position(n.Pos()))
				}
			case *ast.SelectorExpr:
				if inner, ok := n.X.(*ast.SelectorExpr); noOpen && ok && inner.Sel.Name == "Registry" && n.Sel.Name == "Open" {
					t.Errorf("%s: Registry.Open outside withDB; lease through s.withDB", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}

// assertsError: the value is named like an error, or the type is one.
func assertsError(n *ast.TypeAssertExpr) bool {
	if id, ok := n.X.(*ast.Ident); ok && (id.Name == "err" || strings.HasSuffix(id.Name, "Err")) {
		return true
	}
	typ := n.Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	switch typ := typ.(type) {
	case *ast.Ident:
		return strings.HasSuffix(typ.Name, "Error")
	case *ast.SelectorExpr:
		return strings.HasSuffix(typ.Sel.Name, "Error")
	}
	return false
}
