package sqlitekv

import (
	"testing"

	"github.com/kvd/kvd/internal/srcconst"
)

// TestCodes_ListsEveryDeclaredCode fails when a Code constant is declared
// without being added to Codes(): httpapi's tests check each code there
// has its HTTP status, so a code left out would answer 500.
func TestCodes_ListsEveryDeclaredCode(t *testing.T) {
	declared, err := srcconst.Declared(".", "Code")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[Code]bool{}
	for _, c := range Codes() {
		if listed[c] {
			t.Errorf("Codes() lists %s twice", c)
		}
		listed[c] = true
	}
	values := map[Code]bool{}
	for name, value := range declared {
		values[Code(value)] = true
		if !listed[Code(value)] {
			t.Errorf("%s (%s) is declared but not in Codes()", name, value)
		}
	}
	for c := range listed {
		if !values[c] {
			t.Errorf("Codes() lists %s, declared as no constant", c)
		}
	}
}
