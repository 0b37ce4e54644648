package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/step"
)

// TestEveryKindIsDocumented checks that every registered kind of step is
// in the schema, the reference, natlab run --help and the README's step
// table: a kind added to step.Kinds and left out of one fails here.
func TestEveryKindIsDocumented(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal([]byte(read("schema/natlab.schema.json")), &schema); err != nil {
		t.Fatal(err)
	}
	reference, readme, help := read("docs/reference.md"), read("README.md"), newRunCmd().Long
	for _, k := range step.All() {
		key := k.Key()
		if _, ok := schema.Defs["StepEntry"].Properties[key]; !ok {
			t.Errorf("the schema's StepEntry has no %s", key)
		}
		if !strings.Contains(reference, "| [`"+key+"`](#"+key+") |") && !strings.Contains(reference, "| `"+key+": ") {
			t.Errorf("docs/reference.md's step table has no row for %s", key)
		}
		if !strings.Contains(readme, "| `"+key+": ") {
			t.Errorf("README.md's step table has no row for %s", key)
		}
		if !strings.Contains(help, "\n  "+key+" ") {
			t.Errorf("natlab run --help does not list %s", key)
		}
	}
	if n := len(schema.Defs["StepEntry"].Properties); n != len(step.All()) {
		t.Errorf("the schema has %d kinds of step, the registry %d", n, len(step.All()))
	}
}
