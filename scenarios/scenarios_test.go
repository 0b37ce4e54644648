package scenarios_test

import (
	"context"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/runner"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/step"
)

// Every built-in scenario parses, has a description, and, run for real,
// does what its expectations say.
func TestEveryScenarioPasses(t *testing.T) {
	testutil.RequireRoot(t)
	for _, name := range scenarios.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testutil.CheckRoutines(t)
			data, path, _ := scenarios.Read(name)
			topo, err := step.Parse(path, data)
			if err != nil {
				t.Fatal(err)
			}
			if topo.Description == "" || len(topo.Steps) == 0 {
				t.Errorf("%s has no description or no steps", path)
			}
			topo.Name = testutil.UniqueName(t)
			st, err := lab.Up(context.Background(), topo, lab.Options{Source: path, Scenario: data})
			if err != nil {
				t.Fatal(err)
			}
			defer lab.Down(context.Background(), st.Name, nil)
			rep, err := runner.Run(context.Background(), st, topo, runner.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range rep.Steps {
				if !s.Pass {
					t.Errorf("step %d %q: expected %s, observed %s: %s\n%s", s.Index+1, s.Name, s.Expect, s.Observed, s.Reason, indent(s.Detail))
				}
			}
		})
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

func TestNamesAndRead(t *testing.T) {
	names := scenarios.Names()
	if len(names) < 20 {
		t.Errorf("only %d built-in scenarios", len(names))
	}
	if _, _, ok := scenarios.Read("no-such-scenario"); ok {
		t.Error("a missing scenario was found")
	}
}
