package sqlitekv

import (
	"path/filepath"
	"testing"
)

// TestResolverName_IsRelativeToItsRoot: the name metrics show for a
// database never holds a root's absolute path.
func TestResolverName_IsRelativeToItsRoot(t *testing.T) {
	data, first, second := t.TempDir(), t.TempDir(), t.TempDir()
	r, err := NewResolver(data, []string{first, second}, true)
	if err != nil {
		t.Fatal(err)
	}
	real := func(p string) string {
		t.Helper()
		out, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for path, want := range map[string]string{
		filepath.Join(real(data), "app.db"):         "app.db",
		filepath.Join(real(data), "sub", "x.db"):    "sub/x.db",
		real(first):                                 "allow-dir-1",
		filepath.Join(real(second), "team", "x.db"): "allow-dir-2/team/x.db",
		filepath.Join(real(second)+"2", "x.db"):     "outside/x.db", // beside a root is not inside it
		"/srv/elsewhere/y.db":                       "outside/y.db",
	} {
		if got := r.Name(path); got != want {
			t.Errorf("Name(%s): got %q, want %q", path, got, want)
		}
	}
}
