// Package srcconst reads a package's string constants of one type from its
// source, for tests that check a list kept by hand (sqlitekv.Codes, the
// HTTP status table) names every constant declared: a constant added
// without its entry then fails a test instead of going unnoticed.
package srcconst

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"strconv"
	"strings"
)

// Declared returns the constants of type typ (as spelled in the source:
// "Code", "sqlitekv.Code") declared in the Go files of dir, tests aside,
// each name with its value. A constant of that type whose value is not a
// string literal is an error, so none is skipped unseen.
func Declared(dir, typ string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	consts := map[string]string{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				if vs.Type == nil || types.ExprString(vs.Type) != typ {
					continue
				}
				for i, name := range vs.Names {
					var lit *ast.BasicLit
					if i < len(vs.Values) {
						lit, _ = vs.Values[i].(*ast.BasicLit)
					}
					if lit == nil || lit.Kind != token.STRING {
						return nil, fmt.Errorf("%s: %s is not a string literal", fset.Position(name.Pos()), name.Name)
					}
					value, err := strconv.Unquote(lit.Value)
					if err != nil {
						return nil, err
					}
					consts[name.Name] = value
				}
			}
		}
	}
	return consts, nil
}
