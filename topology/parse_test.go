package topology_test

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// The golden files are the specification of what natlab accepts and of
// every message it gives: when one changes, read the diff.

func TestValid(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			topo, err := step.ParseFile(file)
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", dump(topo))
		})
	}
}

func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			topo, err := step.ParseFile(file)
			if err == nil {
				t.Fatalf("ParseFile succeeded:\n%s", topo)
			}
			topology.CheckErrorList(t, file, err)
			golden(t, strings.TrimSuffix(file, ".yaml")+".err", err.Error()+"\n")
		})
	}
}

// dump is String plus what String leaves out: the source and positions.
func dump(t *topology.Topology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s\n%s", filepath.ToSlash(t.Source), t)
	b.WriteString("positions:\n")
	for _, n := range t.Nodes {
		fmt.Fprintf(&b, "  %s %d:%d\n", n.Name, n.Pos.Line, n.Pos.Column)
		if n.NAT != nil {
			for i, f := range n.NAT.Forwards {
				fmt.Fprintf(&b, "    forward[%d] %d:%d\n", i, f.Pos.Line, f.Pos.Column)
			}
		}
	}
	for i, s := range t.Steps {
		fmt.Fprintf(&b, "  steps[%d] %d:%d\n", i, s.Pos.Line, s.Pos.Column)
	}
	return b.String()
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./topology -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant (%s):\n%s", got, file, want)
	}
}

func TestParseFileProblems(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", topology.MaxFileSize)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	for _, tc := range []struct {
		path, want string
	}{
		{dir, dir + ": is a directory; want a scenario file"},
		{big, big + ": file is 1.0 MiB; a scenario file is at most 1 MiB"},
		{missing, missing + ": cannot read it: no such file or directory"},
	} {
		_, err := step.ParseFile(tc.path)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseFile(%q) = %v, want %s", tc.path, err, tc.want)
			continue
		}
		topology.CheckErrorList(t, tc.path, err)
	}
	if _, err := step.ParseFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ParseFile(missing) = %v, which is not fs.ErrNotExist", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  *topology.Error
		want string
	}{
		{&topology.Error{Pos: topology.Position{File: "a.yaml", Line: 3, Column: 7}, Msg: "m"}, "a.yaml:3:7: m"},
		{&topology.Error{Pos: topology.Position{File: "a.yaml"}, Msg: "m"}, "a.yaml: m"},
		{&topology.Error{Pos: topology.Position{Line: 3, Column: 7}, Msg: "m"}, "3:7: m"},
		{&topology.Error{Msg: "m"}, "m"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	var list topology.ErrorList
	if list.Err() != nil {
		t.Errorf("empty topology.ErrorList.Err() is not nil")
	}
	at := func(line, col int, msg string) *topology.Error {
		return &topology.Error{Pos: topology.Position{File: "f", Line: line, Column: col}, Msg: msg}
	}
	list = topology.ErrorList{at(2, 1, "b"), at(1, 5, "a"), at(2, 1, "b"), at(0, 0, "whole file"), at(1, 2, "c")}
	want := "f: whole file\nf:1:2: c\nf:1:5: a\nf:2:1: b"
	if got := list.Err().Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var e *topology.Error
	if !errors.As(list.Err(), &e) || e.Msg != "whole file" {
		t.Errorf("errors.As found %v", e)
	}
}

// TestLarge parses a lab of the largest size allowed: 500 NATs with 9
// hosts each.
func TestLarge(t *testing.T) {
	const nats, hosts = 500, 9
	var b strings.Builder
	b.WriteString("name: large\ninternet: 198.18.0.0/15\nnodes:\n")
	for i := range nats {
		fmt.Fprintf(&b, "  nat-%d: {kind: nat, type: full-cone, lan: 10.%d.%d.0/24}\n", i, i/256, i%256)
		for j := range hosts {
			fmt.Fprintf(&b, "  host-%d-%d: {kind: host, behind: nat-%d}\n", i, j, i)
		}
	}
	topo, err := step.Parse("large.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) != nats*(hosts+1) {
		t.Fatalf("%d nodes, want %d", len(topo.Nodes), nats*(hosts+1))
	}
	behind := make(map[string]int)
	for _, n := range topo.Nodes {
		if n.Kind == topology.KindHost {
			behind[n.Behind]++
			if len(n.Addresses) != 1 {
				t.Fatalf("%s has addresses %v", n.Name, n.Addresses)
			}
		}
	}
	if len(behind) != nats {
		t.Fatalf("hosts are behind %d nats, want %d", len(behind), nats)
	}
	for nat, count := range behind {
		if count != hosts {
			t.Errorf("%d hosts behind %s, want %d", count, nat, hosts)
		}
	}
	last := topo.Nodes[len(topo.Nodes)-1]
	if got, want := last.Addresses[0].String(), "10.1.243.10"; got != want {
		t.Errorf("last host has address %s, want %s", got, want)
	}

	// One more node is one too many.
	b.WriteString("  one-more: {kind: host}\n")
	_, err = step.Parse("large.yaml", []byte(b.String()))
	want := "large.yaml:3:1: nodes: 5001 nodes; a lab has at most 5000"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestTopologyHelpers(t *testing.T) {
	topo, err := step.ParseFile("testdata/valid/symmetric.yaml")
	if err != nil {
		t.Fatal(err)
	}
	alice := topo.Node("alice")
	if got := topo.Uplink(alice).String(); got != "192.168.1.0/24" {
		t.Errorf("alice's uplink is %s", got)
	}
	if gw, ok := topo.Gateway(alice); !ok || gw.String() != "192.168.1.1" {
		t.Errorf("alice's gateway is %s, %v", gw, ok)
	}
	if got := topo.Behind("nat-a"); len(got) != 1 || got[0] != alice {
		t.Errorf("behind nat-a: %v", got)
	}
}

// A LAN written with host bits is read as the LAN and the nat's address
// on it, and Parse says so, at the value's line and column; the usual
// forms say nothing.
func TestLANWithHostBitsWarns(t *testing.T) {
	for _, tc := range []struct {
		lan, want string
	}{
		{"192.168.1.77/24", `lan.yaml:2:43: warning: nodes.home.lan: 192.168.1.77/24 has host bits set, so natlab reads it as LAN 192.168.1.0/24 with the nat on 192.168.1.77; write 192.168.1.0/24 to put the nat on 192.168.1.1`},
		{"192.168.1.0/24", ""},
		{"192.168.1.1/24", ""},
	} {
		file := "nodes:\n  home: {kind: nat, type: full-cone, lan: " + tc.lan + "}\n  pc: {kind: host, behind: home}\n"
		topo, err := step.Parse("lan.yaml", []byte(file))
		if err != nil {
			t.Fatalf("lan %s: %v", tc.lan, err)
		}
		if home := topo.Node("home"); home.NAT.LAN.String() != "192.168.1.0/24" {
			t.Errorf("lan %s: LAN %s", tc.lan, home.NAT.LAN)
		}
		if got := topo.Warnings.Error(); tc.want == "" && len(topo.Warnings) > 0 || tc.want != "" && got != tc.want {
			t.Errorf("lan %s: warnings %q, want %q", tc.lan, topo.Warnings, tc.want)
		}
	}
}
