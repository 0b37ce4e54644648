package tour

import (
	"slices"
	"testing"
)

// --act takes an act's roman or arabic number or its name, written as
// people write it; a number or a name shared by several scenes picks
// them all.
func TestSelect(t *testing.T) {
	scenes := func(acts []Act) []string {
		var s []string
		for _, a := range acts {
			s = append(s, a.Scenario)
		}
		return s
	}
	seven := []string{"act7-ice-ladder", "act7-relay-then-direct", "act7-nat-pmp", "act7-reverse-tunnel", "act7-ipv6"}
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"III", []string{"act3-the-wall"}},
		{"iii", []string{"act3-the-wall"}},
		{"3", []string{"act3-the-wall"}},
		{"The wall", []string{"act3-the-wall"}},
		{"the-wall", []string{"act3-the-wall"}},
		{"wall", []string{"act3-the-wall"}},
		{"act3-the-wall", []string{"act3-the-wall"}},
		{"1", []string{"act1-address-problem"}},
		{"address problem", []string{"act1-address-problem"}},
		{"6", []string{"turn-fallback", "act6-relay-costs"}},
		{"When it breaks", []string{"turn-fallback", "act6-relay-costs"}},
		{"relay costs", []string{"act6-relay-costs"}},
		{"act6-relay-costs", []string{"act6-relay-costs"}},
		{"VII", seven},
		{"7", seven},
		{"the real world", seven},
		{"The real world: IPv6", []string{"act7-ipv6"}},
		{"ipv6", []string{"act7-ipv6"}},
		{"ICE", []string{"act7-ice-ladder"}},
		{"reverse tunnel", []string{"act7-reverse-tunnel"}},
		{"port forwarding", []string{"act7-nat-pmp"}},
		{"IX", nil},
		{"8", nil},
		{"0", nil},
		{"", nil},
		{"the", nil},
	} {
		if got := scenes(Select(tc.arg)); !slices.Equal(got, tc.want) {
			t.Errorf("Select(%q) = %v, want %v", tc.arg, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	for arg, want := range map[string]string{"wal": "wall", "the-mirorr": "the-mirror", "xyzzy": ""} {
		if got := Suggest(arg); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", arg, got, want)
		}
	}
}
