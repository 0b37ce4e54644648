package topology

import (
	"strings"
	"testing"
)

// What the external tests (package topology_test, which may import
// package step and its kinds) use of the package's own.

// IsControl is isControl.
var IsControl = isControl

// CheckErrorList checks the properties every error of Parse has.
func CheckErrorList(t *testing.T, file string, err error) {
	t.Helper()
	list, ok := err.(ErrorList)
	if !ok {
		t.Fatalf("error is a %T, not an ErrorList: %v", err, err)
	}
	if len(list) == 0 {
		t.Fatalf("empty ErrorList")
	}
	for i, e := range list {
		if e.Pos.File != file {
			t.Errorf("error %q is about file %q, not %q", e, e.Pos.File, file)
		}
		if strings.ContainsAny(e.Msg, "\n\r") {
			t.Errorf("error %q has more than one line", e)
		}
		if i > 0 {
			prev := list[i-1]
			if prev.Pos.Line > e.Pos.Line || prev.Pos.Line == e.Pos.Line && prev.Pos.Column > e.Pos.Column {
				t.Errorf("errors out of order: %q before %q", prev, e)
			}
			if *prev == *e {
				t.Errorf("duplicate error %q", e)
			}
		}
	}
}
