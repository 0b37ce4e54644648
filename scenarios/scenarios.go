// Package scenarios holds natlab's built-in scenario library, embedded in
// the binary so `natlab up NAME` works from anywhere.
package scenarios

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the built-in scenarios, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Read returns the scenario file called name, and the path it is shown
// under in messages.
func Read(name string) (data []byte, path string, ok bool) {
	path = "scenarios/" + name + ".yaml"
	data, err := files.ReadFile(name + ".yaml")
	return data, path, err == nil
}
