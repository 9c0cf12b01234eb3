package srcconst

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDeclared_FindsTypedStringConstantsOutsideTests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", `package p
type Code string
const (
	A Code = "A"
	B, C Code = "B", "C"
	other = "x"
	D string = "D"
)
const E Code = `+"`E`"+`
`)
	write("a_test.go", `package p
const T Code = "T"
`)
	got, err := Declared(dir, "Code")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "A", "B": "B", "C": "C", "E": "E"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for name, value := range want {
		if got[name] != value {
			t.Errorf("%s: got %q, want %q", name, got[name], value)
		}
	}
}

func TestDeclared_RefusesAValueItCannotRead(t *testing.T) {
	dir := t.TempDir()
	src := "package p\ntype Code string\nconst base = \"B\"\nconst X Code = base + \"X\"\n"
	if err := os.WriteFile(filepath.Join(dir, "a.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Declared(dir, "Code"); err == nil {
		t.Errorf("got %v, want an error naming X", got)
	}
}
