package lab_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/internal/labtest"
	"github.com/natlab/natlab/internal/namedns"
	"github.com/natlab/natlab/internal/testutil"
	"github.com/natlab/natlab/lab"
	"github.com/natlab/natlab/labstate"
	"github.com/natlab/natlab/topology"
)

const twoNATs = `
nodes:
  stun:  {kind: server, addresses: [203.0.113.10, 203.0.113.11], services: [stun]}
  nat-a: {kind: nat, type: symmetric}
  nat-b: {kind: nat, type: port-restricted-cone, forward: [{proto: tcp, port: 8080, to: bob}]}
  alice: {kind: host, behind: nat-a}
  bob:   {kind: host, behind: nat-b}
`

func runIn(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// rootSnapshot records what natlab must never change: the root namespace's
// links, addresses, routes, rules and nft ruleset, and the named
// namespaces that are not natlab's.
func rootSnapshot(t *testing.T) map[string]string {
	t.Helper()
	testutil.RequireTool(t, "nft")
	snap := map[string]string{}
	for name, args := range map[string][]string{
		"links":     {"ip", "-d", "link", "show"},
		"addresses": {"ip", "addr", "show"},
		"routes":    {"ip", "route", "show", "table", "all"},
		"rules":     {"ip", "rule", "show"},
		"nft":       {"nft", "list", "ruleset"},
	} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		snap[name] = string(out)
	}
	// The sysctls natlab sets inside labs, as the root namespace has them.
	var sysctls []string
	for _, name := range []string{
		"net/ipv4/ip_forward", "net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6",
		"net/ipv6/conf/all/forwarding", "net/netfilter/nf_conntrack_udp_timeout",
		"net/netfilter/nf_conntrack_udp_timeout_stream", "net/bridge/bridge-nf-call-iptables",
	} {
		v, _ := os.ReadFile("/proc/sys/" + name)
		sysctls = append(sysctls, name+"="+strings.TrimSpace(string(v)))
	}
	snap["sysctls"] = strings.Join(sysctls, "\n")
	entries, _ := os.ReadDir(namedns.Dir)
	var others []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "natlab-") {
			others = append(others, e.Name())
		}
	}
	sort.Strings(others)
	snap["other namespaces"] = strings.Join(others, "\n")
	return snap
}

func labObjects(t *testing.T, name string) []string {
	t.Helper()
	var found []string
	matches, _ := filepath.Glob(filepath.Join(namedns.Dir, "natlab-"+name+"-*"))
	found = append(found, matches...)
	for _, ext := range []string{".json", ".lock"} {
		if _, err := os.Stat(filepath.Join(labstate.Dir, name+ext)); err == nil {
			found = append(found, filepath.Join(labstate.Dir, name+ext))
		}
	}
	return found
}

func TestUpDownLeavesNoTrace(t *testing.T) {
	testutil.RequireRoot(t)
	before := rootSnapshot(t)
	name := testutil.UniqueName(t)
	topo, err := topology.Parse(name+".yaml", []byte(twoNATs), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lab.Up(context.Background(), topo, lab.Options{Source: "test", Scenario: []byte(twoNATs)})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Complete || len(st.Namespaces) != len(topo.Nodes)+1 {
		t.Errorf("record: complete=%v with %d namespaces, want complete with %d", st.Complete, len(st.Namespaces), len(topo.Nodes)+1)
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Stat(namedns.Path(ns.Name)); err != nil {
			t.Errorf("namespace %s missing while the lab is up: %v", ns.Name, err)
		}
	}
	// The lab is visible to iproute2 and nft, as a user would look at it.
	out, err := runIn(lab.NamespaceName(name, "nat-a"), "nft", "list", "table", "ip", "natlab")
	if err != nil || !strings.Contains(out, "chain outbound") {
		t.Errorf("nft in nat-a: %v\n%s", err, out)
	}
	if out, err := runIn(lab.NamespaceName(name, "alice"), "ip", "route"); err != nil || !strings.Contains(out, "default via") {
		t.Errorf("alice's routes: %v\n%s", err, out)
	}
	if _, err := lab.Up(context.Background(), topo, lab.Options{Scenario: []byte(twoNATs)}); !errors.Is(err, lab.ErrExists) {
		t.Errorf("second up of the same lab: %v, want ErrExists", err)
	}

	removed, err := lab.Down(context.Background(), name, nil)
	if err != nil || !removed {
		t.Fatalf("down: removed=%v err=%v", removed, err)
	}
	if left := labObjects(t, name); len(left) > 0 {
		t.Errorf("left behind after down: %v", left)
	}
	after := rootSnapshot(t)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("root namespace %s changed:\nbefore:\n%s\nafter:\n%s", k, v, after[k])
		}
	}
	if removed, err := lab.Down(context.Background(), name, nil); err != nil || removed {
		t.Errorf("second down: removed=%v err=%v; want a quiet no-op", removed, err)
	}
}

// A failure in the last phase of bring-up removes everything built before.
func TestUpRollsBackOnFailure(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	topo, err := topology.Parse(name+".yaml", []byte(twoNATs), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A behaviour the rule builder refuses: it fails after every
	// namespace, link and address exists.
	topo.Node("nat-b").NAT.Behaviour.Timeout.UDP = 0
	_, err = lab.Up(context.Background(), topo, lab.Options{Scenario: []byte(twoNATs)})
	if err == nil || !strings.Contains(err.Error(), "nat-b") {
		t.Fatalf("up with a broken NAT: %v, want an error naming nat-b", err)
	}
	if left := labObjects(t, name); len(left) > 0 {
		t.Errorf("left behind after a failed up: %v", left)
	}
	lab.Down(context.Background(), name, nil)
}

// Cancelling bring-up (Ctrl-C) at any point removes what was built.
func TestUpCancelled(t *testing.T) {
	testutil.RequireRoot(t)
	var hosts strings.Builder
	for i := 0; i < 20; i++ {
		hosts.WriteString("  h" + string(rune('a'+i)) + ": {kind: host, behind: nat}\n")
	}
	scenario := "nodes:\n  nat: {kind: nat, type: full-cone}\n" + hosts.String()
	for _, delay := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond} {
		name := testutil.UniqueName(t)
		topo, err := topology.Parse(name+".yaml", []byte(scenario), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(delay, cancel)
		_, err = lab.Up(ctx, topo, lab.Options{Scenario: []byte(scenario)})
		cancel()
		if err == nil {
			// It finished before the cancel: fine, take it down.
			if _, err := lab.Down(context.Background(), name, nil); err != nil {
				t.Fatal(err)
			}
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %v: %v, want context.Canceled", delay, err)
		}
		if left := labObjects(t, name); len(left) > 0 {
			t.Errorf("cancelled after %v, left behind: %v", delay, left)
		}
		lab.Down(context.Background(), name, nil)
	}
}

// down works from the record alone, after a bring-up died half way: here
// the namespaces exist, the record says incomplete.
func TestDownAfterCrash(t *testing.T) {
	l := labtest.Up(t, twoNATs)
	st := *l.State
	st.Complete = false
	if err := labstate.Save(&st); err != nil {
		t.Fatal(err)
	}
	if removed, err := lab.Down(context.Background(), st.Name, nil); err != nil || !removed {
		t.Fatalf("down: removed=%v err=%v", removed, err)
	}
	if left := labObjects(t, st.Name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// natlab never deletes a namespace it did not make, even if its record
// names it.
func TestDownLeavesForeignNamespaces(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	foreign := lab.NamespaceName(name, "alice")
	ns, _ := testutil.NewNSNamed(t, foreign)
	ns.Close()
	st := &labstate.State{Version: labstate.FormatVersion, Name: name, ID: "0123456789ab",
		Namespaces: []labstate.Namespace{{Name: foreign, Node: "alice"}}}
	if err := labstate.Save(st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		labstate.Remove(name)
		os.Remove(filepath.Join(labstate.Dir, name+".lock"))
	})
	_, err := lab.Down(context.Background(), name, nil)
	if err == nil || !strings.Contains(err.Error(), "not this lab's") {
		t.Errorf("down: %v, want a refusal naming the foreign namespace", err)
	}
	if _, err := os.Stat(namedns.Path(foreign)); err != nil {
		t.Errorf("the foreign namespace was removed: %v", err)
	}
}

// down finds the namespaces natlab marked as a lab's even when the lab's
// record is gone.
func TestDownWithoutRecord(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	topo, err := topology.Parse(name+".yaml", []byte(twoNATs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Up(context.Background(), topo, lab.Options{Scenario: []byte(twoNATs)}); err != nil {
		t.Fatal(err)
	}
	labstate.Remove(name)
	if removed, err := lab.Down(context.Background(), name, nil); err != nil || !removed {
		t.Fatalf("down: removed=%v err=%v", removed, err)
	}
	if left := labObjects(t, name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// A record that cannot be read (truncated, edited by hand) does not make
// a lab impossible to remove: down finds its namespaces by their markers,
// stops its services and removes the record.
func TestDownWithCorruptRecord(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	scenario := twoNATs // its stun server runs a service process
	topo, err := topology.Parse(name+".yaml", []byte(scenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lab.Up(context.Background(), topo, lab.Options{Scenario: []byte(scenario)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Down(context.Background(), name, nil) })
	if len(st.Processes) == 0 {
		t.Fatal("the lab has no service process")
	}
	if err := os.WriteFile(filepath.Join(labstate.Dir, name+".json"), []byte(`{"name": "`+name+`", "namesp`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := labstate.Load(name); !errors.Is(err, labstate.ErrCorrupt) {
		t.Fatalf("load of the damaged record: %v, want ErrCorrupt", err)
	}
	if removed, err := lab.Down(context.Background(), name, nil); err != nil || !removed {
		t.Fatalf("down: removed=%v err=%v", removed, err)
	}
	if left := labObjects(t, name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := os.Stat(filepath.Join(labstate.Dir, name+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged record is still there: %v", err)
	}
	for _, p := range st.Processes {
		if lab.ProcessAlive(p.PID, p.StartTime) {
			t.Errorf("the service process %d of %s is still running", p.PID, p.Node)
		}
	}
}
