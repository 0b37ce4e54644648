package lab

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbidden are the packages the kernel layer must not link, as import
// path prefixes: the agents and what serves the services, which
// belong to the layers above it (docs/architecture.md). A package matches
// a prefix ending in "/" if it starts with it, any other if it is it or
// below it.
var forbidden = []struct{ prefix, what string }{
	{"github.com/pion/", "pion's STUN, TURN and ICE"},
	{"tailscale.com/", "Tailscale's DERP"},
	{"github.com/natlab/natlab/punch", "an agent"},
	{"github.com/natlab/natlab/relay", "an agent"},
	{"github.com/natlab/natlab/ice", "an agent"},
	{"github.com/natlab/natlab/classify", "an agent"},
	{"github.com/natlab/natlab/stunclient", "an agent"},
	{"github.com/natlab/natlab/goodput", "an agent"},
	{"github.com/natlab/natlab/upgrade", "an agent"},
	{"github.com/natlab/natlab/stunserver", "a service's implementation"},
	{"github.com/natlab/natlab/turnserver", "a service's implementation"},
	{"github.com/natlab/natlab/rendezvous", "a service's implementation"},
	{"github.com/natlab/natlab/tunnel", "a service's implementation"},
	{"github.com/natlab/natlab/natpmp", "a service's implementation"},
	{"github.com/natlab/natlab/service/serve", "the services' process"},
	{"github.com/natlab/natlab/step", "the steps, a layer above"},
	{"github.com/natlab/natlab/runner", "the runner, a layer above"},
}

// rule returns the entry of forbidden that pkg matches, or -1.
func rule(pkg string) int {
	for i, f := range forbidden {
		if strings.HasSuffix(f.prefix, "/") && strings.HasPrefix(pkg, f.prefix) ||
			pkg == f.prefix || strings.HasPrefix(pkg, f.prefix+"/") {
			return i
		}
	}
	return -1
}

// The kernel layer links no agent and no service's implementation: a
// program that only builds labs, and every test binary of a package
// below the agents, stays small, and the layers keep their one-way flow.
func TestLinksNoAgent(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to list the package's dependencies")
	}
	const self = "github.com/natlab/natlab/lab"
	out, err := exec.Command(gotool, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, self).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", self, err, stderr(err))
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	if _, ok := imports[self]; !ok {
		t.Fatalf("go list -deps %s does not list the package itself:\n%s", self, out)
	}
	// For each rule broken, the package nearest to lab that breaks it,
	// with the imports that bring it in, and how many more do.
	found := make([][]string, len(forbidden))
	count := make([]int, len(forbidden))
	for _, path := range importPaths(imports, self) {
		if r := rule(path[len(path)-1]); r >= 0 {
			if found[r] == nil {
				found[r] = path
			}
			count[r]++
		}
	}
	for r, path := range found {
		if path == nil {
			continue
		}
		more := ""
		if count[r] > 1 {
			more = fmt.Sprintf(", and %d more packages of %s", count[r]-1, forbidden[r].prefix)
		}
		t.Errorf("lab links %s (%s), through %s%s", path[len(path)-1], forbidden[r].what, strings.Join(path, " -> "), more)
	}
}

// importPaths returns a shortest chain of imports from from to every
// package it links, nearest first.
func importPaths(imports map[string][]string, from string) [][]string {
	paths := [][]string{{from}}
	seen := map[string]bool{from: true}
	for i := 0; i < len(paths); i++ {
		p := paths[i]
		for _, q := range imports[p[len(p)-1]] {
			if !seen[q] {
				seen[q] = true
				paths = append(paths, append(slices.Clip(p), q))
			}
		}
	}
	return paths
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func TestRule(t *testing.T) {
	for pkg, want := range map[string]bool{
		"github.com/pion/stun/v3":                   true,
		"tailscale.com/derp":                        true,
		"github.com/natlab/natlab/punch":            true,
		"github.com/natlab/natlab/service/serve":    true,
		"github.com/natlab/natlab/service":          false,
		"github.com/natlab/natlab/relayx":           false,
		"github.com/natlab/natlab/internal/namedns": false,
		"github.com/natlab/natlab/lab":              false,
	} {
		if got := rule(pkg) >= 0; got != want {
			t.Errorf("rule(%s) = %d, want one: %v", pkg, rule(pkg), want)
		}
	}
}
