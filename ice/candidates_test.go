package ice

import "testing"

// A failed ICE says what each side gathered in words, not Go's map syntax.
func TestCandidates(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]int
		want string
	}{
		{map[string]int{"srflx": 1, "host": 2}, "2 host, 1 srflx"},
		{map[string]int{"relay": 1, "host": 1, "srflx": 1}, "1 host, 1 srflx, 1 relay"},
		{map[string]int{}, "none"},
		{nil, "none"},
	} {
		if got := Candidates(tc.in); got != tc.want {
			t.Errorf("Candidates(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
