package cli_test

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// Two shards of a small set, merged, hold exactly the test cases of the
// same set run unsplit, and in the same order.
func TestRunShardsAndMerge(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	files, labs := renamedBuiltins(t, "act1-address-problem", "full-cone", "restricted-cone")
	out := func(name string) string { return filepath.Join(dir, name) }
	// Given out of order: the shards split the sorted list, which an
	// unsplit run given in that order runs as it is.
	given := []string{files[2], files[0], files[1]}

	r := run(t, append([]string{"run", "--json", out("whole.json"), "--junit", out("whole.xml")}, files...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "3 scenarios: 3 passed, 0 failed") {
		t.Fatalf("unsplit run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, sh := range []string{"1", "2"} {
		r := run(t, append([]string{"run", "--shard", sh + "/2", "--json", out("shard" + sh + ".json"), "--junit", out("shard" + sh + ".xml")}, given...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "shard "+sh+"/2: ") {
			t.Fatalf("shard %s/2: exit %d\n%s%s", sh, r.code, r.stdout, r.stderr)
		}
	}
	if got := runLabs(t, out("shard1.json")); !reflect.DeepEqual(got, []string{labs[0], labs[2]}) {
		t.Errorf("shard 1/2 ran %v, want the first and third of the sorted list", got)
	}
	if got := runLabs(t, out("shard2.json")); !reflect.DeepEqual(got, []string{labs[1]}) {
		t.Errorf("shard 2/2 ran %v, want the second", got)
	}

	r = run(t, "report", "merge", "-o", out("merged.json"), "--junit", out("merged.xml"), out("shard2.json"), out("shard1.json"))
	if r.code != 0 || !strings.Contains(r.stdout, "merged 2 files: 3 scenarios (0 failed)") {
		t.Fatalf("merge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, want := runLabs(t, out("merged.json")), runLabs(t, out("whole.json")); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(want, labs) {
		t.Errorf("merged runs %v, unsplit %v, want both %v", got, want, labs)
	}
	whole, merged := testCases(t, out("whole.xml")), testCases(t, out("merged.xml"))
	if len(whole) < 3 || !reflect.DeepEqual(merged, whole) {
		t.Errorf("merged JUnit test cases:\n%v\nunsplit run's:\n%v", merged, whole)
	}
	// JUnit files merge too, in the order given.
	r = run(t, "report", "merge", "--junit", out("junit.xml"), out("shard1.xml"), out("shard2.xml"))
	if got := testCases(t, out("junit.xml")); r.code != 0 || !reflect.DeepEqual(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(whole))) {
		t.Errorf("merging JUnit: exit %d %s; test cases %v, want %v", r.code, r.stderr, got, whole)
	}
	// A shard left out is an error, and nothing is written.
	r = run(t, "report", "merge", "-o", out("partial.json"), out("shard1.json"))
	if _, err := os.Stat(out("partial.json")); r.code != 2 || !strings.Contains(r.stderr, "shard 2/2 is missing") || err == nil {
		t.Errorf("merging one of two shards: exit %d, %s (file written: %v)", r.code, r.stderr, err == nil)
	}
}

func runLabs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Format string
		Runs   []struct{ Lab string }
	}
	if err := json.Unmarshal(data, &suite); err != nil || suite.Format != "natlab-suite/1" {
		t.Fatalf("%s: %v, format %q", path, err, suite.Format)
	}
	var labs []string
	for _, r := range suite.Runs {
		labs = append(labs, r.Lab)
	}
	return labs
}

// testCases lists a JUnit file's test cases as "classname name".
func testCases(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Classname string `xml:"classname,attr"`
				Name      string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var cases []string
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			cases = append(cases, c.Classname+" "+c.Name)
		}
	}
	return cases
}

// Shards are parsed strictly, every misuse is a one-line usage error, and
// nothing is run.
func TestShardUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--all", "--shard", "0/4"}, `shard "0/4"`},
		{[]string{"run", "--all", "--shard", "5/4"}, "from 1 to 4"},
		{[]string{"run", "--all", "--shard", "1/4x"}, "not a whole number"},
		{[]string{"run", "--all", "--shard", "2"}, "want i/n"},
		{[]string{"run", "--all", "full-cone"}, "--all runs the built-in library"},
		{[]string{"run", "--all", "--name", "x"}, "--name renames one scenario"},
		{[]string{"run", "full-cone", "symmetric", "--keep"}, "--keep leaves one scenario's lab up"},
		{[]string{"run", "full-cone", "no-such-scenario", "--shard", "1/2"}, "no-such-scenario"},
		{[]string{"matrix", "--shard", "3/2"}, "from 1 to 2"},
		{[]string{"report", "merge", "x.json"}, "-o FILE"},
		{[]string{"report", "marge", "x.json"}, `unknown command "marge"`},
		{[]string{"report", "merge", "-o", "-", "no-such-file.json"}, "no-such-file.json"},
	} {
		r := run(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("natlab %v: exit %d, stderr %q; want exit 2 and one line saying %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
