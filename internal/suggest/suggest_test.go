package suggest

import "testing"

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		word     string
		accepted []string
		want     string
	}{
		{"symetric", []string{"full-cone", "symmetric"}, "symmetric"},
		{"Symmetric", []string{"full-cone", "symmetric"}, "symmetric"},
		{"ful-cone", []string{"full-cone", "symmetric"}, "full-cone"},
		{"bogus", []string{"full-cone", "symmetric"}, ""},
		{"nod", []string{"node", "nodes"}, "node"},
		{"ab", []string{"xy"}, ""},
		{"", nil, ""},
	} {
		if got := Closest(tc.word, tc.accepted); got != tc.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", tc.word, tc.accepted, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"symetric", "symmetric", 1},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
