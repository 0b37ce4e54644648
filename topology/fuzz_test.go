package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that no input makes Parse panic or hang, and that its
// errors always have the documented form.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		topo, err := Parse(name, data)
		if err != nil {
			if topo != nil {
				t.Fatalf("Parse returned both a topology and an error")
			}
			checkErrorList(t, name, err)
			return
		}
		if topo == nil || len(topo.Nodes) == 0 {
			t.Fatalf("Parse returned no error and no nodes")
		}
		_ = topo.String()
		for _, s := range topo.Steps {
			checkStep(t, topo, s)
		}
	})
}

// checkStep checks what every step Parse accepts has: a name of one line
// within the limit, a one-line description, and references to nodes that
// exist.
func checkStep(t *testing.T, topo *Topology, s Step) {
	t.Helper()
	if n := utf8.RuneCountInString(s.Name); n == 0 || n > MaxStepNameLen || strings.ContainsFunc(s.Name, isControl) {
		t.Errorf("step name %q is not one line of 1 to %d characters", s.Name, MaxStepNameLen)
	}
	if strings.Contains(s.String(), "\n") {
		t.Errorf("step %q is described on more than one line", s.Name)
	}
	refs := []string{s.From, s.To, s.Server, s.Rendezvous}
	switch s.Kind {
	case StepPunch, StepRelay, StepICE:
		refs = append(refs, s.Between[:]...)
		if s.Between[0] == s.Between[1] {
			t.Errorf("step %q is between %s and itself", s.Name, s.Between[0])
		}
	case StepExec:
		if s.Node != Internet {
			refs = append(refs, s.Node)
		}
		if len(s.Command) == 0 {
			t.Errorf("step %q has no command", s.Name)
		}
	}
	for _, name := range refs {
		if name != "" && topo.Node(name) == nil {
			t.Errorf("step %q refers to %q, which is not a node", s.Name, name)
		}
	}
}
