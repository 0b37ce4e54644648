package labtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/scenarios"
	"github.com/natlab/natlab/topology"
)

// Lab is a lab that is up for the length of one test.
type Lab struct {
	// Name is the lab's unique name, which replaces the scenario's own:
	// `natlab status NAME` and `natlab exec NAME NODE` work on it while
	// the test runs.
	Name string
	// Topology is the parsed scenario, every default filled in: the
	// nodes' addresses, LANs and NAT behaviour. It must not be modified.
	Topology *topology.Topology
	// State is the lab's record, as `natlab status` reads it: among other
	// things the credentials of its TURN servers.
	State *labstate.State

	t     testing.TB
	mu    sync.Mutex
	nodes map[string]*Node
}

// Up brings up the lab that scenario, a scenario file's YAML, describes,
// and takes it down when the test ends. The scenario's name: is replaced
// by a unique one, so tests can share a scenario and run in parallel. A
// scenario that does not parse fails the test with every problem, each
// with its line and column; without the privileges a lab needs, Up skips
// the test.
func Up(t testing.TB, scenario string) *Lab {
	t.Helper()
	return up(t, "scenario.yaml", []byte(scenario))
}

// UpFile is Up with the scenario read from the file at path.
func UpFile(t testing.TB, path string) *Lab {
	t.Helper()
	data, err := topology.ReadFile(path)
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	return up(t, path, data)
}

// UpBuiltin is Up with one of natlab's built-in scenarios, such as
// "symmetric" or "act3-the-wall" (`natlab list` shows them all, and
// scenarios.Names returns them).
func UpBuiltin(t testing.TB, name string) *Lab {
	t.Helper()
	data, path, ok := scenarios.Read(name)
	if !ok {
		t.Fatalf("labtest: no built-in scenario %q; there are %v", name, scenarios.Names())
	}
	return up(t, path, data)
}

// UpSpec is Up with the scenario given as a Go value; see Spec.
func UpSpec(t testing.TB, spec Spec) *Lab {
	t.Helper()
	data, err := spec.YAML()
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	return up(t, "spec.yaml", []byte(data))
}

func up(t testing.TB, file string, data []byte) *Lab {
	t.Helper()
	Require(t)
	name, err := uniqueName()
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	topo, err := topology.Parse(file, data, nil)
	if err != nil {
		t.Fatalf("labtest: scenario: %v", err)
	}
	topo.Name = name
	st, err := lab.Up(context.Background(), topo, lab.Options{Source: "test:" + t.Name(), Scenario: data})
	if err != nil {
		t.Fatalf("labtest: bring up %s: %v", file, err)
	}
	l := &Lab{Name: name, Topology: topo, State: st, t: t, nodes: map[string]*Node{}}
	// Registered first, so it runs after every cleanup registered later:
	// the sockets and handles opened inside the lab are closed before it
	// goes.
	t.Cleanup(func() {
		if _, err := lab.Down(context.Background(), name, nil); err != nil {
			t.Errorf("labtest: take lab %s down: %v (run `natlab down %s`)", name, err, name)
		}
	})
	t.Logf("labtest: lab %s is up (%s)", name, file)
	return l
}

// uniqueName returns a lab name no other test uses: "t" and eight hex
// digits, short because namespace and interface names are built from it.
func uniqueName() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lab name: %w", err)
	}
	return "t" + hex.EncodeToString(b), nil
}

// Node returns the node called name, which fails the test if the lab has
// no such node. The name "internet" gives the namespace of the internet's
// bridge, where a capture sees the traffic between NATs and servers.
// Call it from the test's goroutine.
func (l *Lab) Node(name string) *Node {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.nodes[name]; ok {
		return n
	}
	tn := l.Topology.Node(name)
	if tn == nil && name != topology.Internet {
		var names []string
		for _, n := range l.Topology.Nodes {
			names = append(names, n.Name)
		}
		l.t.Fatalf("labtest: the lab has no node %q; it has %v", name, names)
	}
	n := &Node{Name: name, Topology: tn, lab: l}
	l.nodes[name] = n
	return n
}
