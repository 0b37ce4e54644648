package topology

import (
	"os"
	"path/filepath"
	"testing"
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
	})
}
