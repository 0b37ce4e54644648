package labtest

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite the goldens in testdata")

// The grid's files, for every kind of cell: passed (with its time),
// failed with and without a text, skipped, not run, a text with a pipe
// and a second line, and the mirrored half of an unordered grid.
func TestGridFiles(t *testing.T) {
	names := []string{"full-cone", "port-restricted-cone", "symmetric"}
	cells := map[[2]string]Cell{
		{"full-cone", "full-cone"}:                       {Ran: true, Text: "direct", Took: 812345 * time.Microsecond},
		{"full-cone", "port-restricted-cone"}:            {Ran: true, Text: "direct\nvia 203.0.113.2:4000", Took: 1234567 * time.Nanosecond},
		{"full-cone", "symmetric"}:                       {Ran: true, Text: "relay | 3 tries", Took: 2*time.Second + 345*time.Millisecond},
		{"port-restricted-cone", "port-restricted-cone"}: {Ran: true, Failed: true, Text: "relay, want direct"},
		{"port-restricted-cone", "symmetric"}:            {Ran: true, Failed: true},
		{"symmetric", "symmetric"}:                       {Ran: true, Skipped: true},
	}
	for _, tc := range []struct {
		name      string
		unordered bool
	}{{"grid-ordered", false}, {"grid-unordered", true}} {
		t.Run(tc.name, func(t *testing.T) {
			o := &Outcome{Title: "punch <grid>", Names: names, Cells: cells, Unordered: tc.unordered}
			for ext, got := range map[string]string{".md": o.Markdown(), ".html": o.HTML()} {
				path := filepath.Join("testdata", tc.name+ext)
				if *updateGolden {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the golden (go test -run TestGridFiles -update rewrites it):\n%s", path, got)
				}
			}
		})
	}
}

// Presets with a name that is empty, repeated or would split a subtest's
// name are refused before any lab comes up, and so is a grid of none.
func TestGridRefusesBadPresets(t *testing.T) {
	for _, names := range [][]string{{"a", "a"}, {""}, {"a/b"}, {"a b"}, nil} {
		var ps []Preset
		for _, n := range names {
			ps = append(ps, Preset{Name: n})
		}
		if _, err := (Grid{Presets: ps}).names(); err == nil {
			t.Errorf("presets %q: accepted", names)
		}
	}
	if _, err := (Grid{Presets: []Preset{{Name: "a"}, {Name: "b"}}}).names(); err != nil {
		t.Errorf("presets a, b: %v", err)
	}
}
