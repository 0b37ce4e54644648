package topology_test

import (
	"strings"
	"testing"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/step"
	"github.com/natlab/natlab/topology"
)

// TestOneToOne checks what a one-to-one nat takes: exactly one host
// behind it, hairpin, and knobs that agree with it; and that everything
// else is refused at the value that says it, with file, line and column.
func TestOneToOne(t *testing.T) {
	const vm = "  vm: {kind: host, behind: cloud}\n"
	for _, tc := range []struct {
		name, nodes string
		steps       string
		// want is "" for a file that parses, else the start of the
		// one error it gives.
		want string
	}{
		{name: "one host", nodes: "  cloud: {kind: nat, type: one-to-one}\n" + vm},
		{name: "no hairpin", nodes: "  cloud: {kind: nat, type: one-to-one, hairpin: false}\n" + vm},
		{name: "knobs that agree", nodes: "  cloud: {kind: nat, type: one-to-one, mapping: endpoint-independent, filtering: endpoint-independent}\n" + vm},
		{name: "port-mapping none", nodes: "  cloud: {kind: nat, type: one-to-one, port-mapping: none}\n" + vm},
		{name: "behind a nat", nodes: "  home: {kind: nat}\n  cloud: {kind: nat, type: one-to-one, behind: home}\n" + vm},

		{name: "port range", nodes: "  cloud: {kind: nat, type: one-to-one, port-range: 20000-20999}\n" + vm,
			want: "f.yaml:3:52: nodes.cloud.port-range: a one-to-one nat takes no port-range: it translates no port"},
		{name: "ports", nodes: "  cloud: {kind: nat, type: one-to-one, ports: random}\n" + vm,
			want: "f.yaml:3:47: nodes.cloud.ports: a one-to-one nat takes no ports: it translates no port"},
		{name: "timeout", nodes: "  cloud: {kind: nat, type: one-to-one, timeout: 30s}\n" + vm,
			want: "f.yaml:3:49: nodes.cloud.timeout: a one-to-one nat takes no timeout"},
		{name: "mapping", nodes: "  cloud: {kind: nat, type: one-to-one, mapping: address-dependent}\n" + vm,
			want: "f.yaml:3:49: nodes.cloud.mapping: address-dependent contradicts type: one-to-one, which means mapping: endpoint-independent"},
		{name: "filtering", nodes: "  cloud: {kind: nat, type: one-to-one, filtering: address-and-port-dependent}\n" + vm,
			want: "f.yaml:3:51: nodes.cloud.filtering: address-and-port-dependent contradicts type: one-to-one, which means filtering: endpoint-independent"},
		{name: "port-mapping", nodes: "  cloud: {kind: nat, type: one-to-one, port-mapping: nat-pmp}\n" + vm,
			want: "f.yaml:3:54: nodes.cloud.port-mapping: a one-to-one nat takes no port-mapping"},
		{name: "forward", nodes: "  cloud: {kind: nat, type: one-to-one, forward: [{proto: udp, port: 53, to: vm}]}\n" + vm,
			want: "f.yaml:3:49: nodes.cloud.forward: a one-to-one nat takes no forward"},
		{name: "nobody behind", nodes: "  cloud: {kind: nat, type: one-to-one}\n",
			want: "f.yaml:3:28: nodes.cloud.type: a one-to-one nat gives its public address to the one host behind it, and no node is behind cloud"},
		{name: "two hosts", nodes: "  cloud: {kind: nat, type: one-to-one}\n" + vm + "  vm2: {kind: host, behind: cloud}\n",
			want: "f.yaml:5:29: nodes.vm2.behind: cloud is a one-to-one nat, and its public address is vm's already (nodes.vm, line 4)"},
		{name: "a nat behind", nodes: "  cloud: {kind: nat, type: one-to-one}\n  inner: {kind: nat, behind: cloud}\n",
			want: "f.yaml:4:30: nodes.inner.behind: cloud is a one-to-one nat, and only a host can be behind one"},
		{name: "move onto", nodes: "  cloud: {kind: nat, type: one-to-one}\n" + vm + "  home: {kind: nat}\n  laptop: {kind: host, behind: home}\n",
			steps: "steps:\n  - move: {node: laptop, behind: cloud}\n",
			want:  "f.yaml:8:34: steps[0].move.behind: cloud is a one-to-one nat, which has one host behind it"},
		{name: "move off", nodes: "  cloud: {kind: nat, type: one-to-one}\n" + vm + "  home: {kind: nat}\n",
			steps: "steps:\n  - move: {node: vm, behind: home}\n",
			want:  "f.yaml:7:30: steps[0].move.behind: vm owns the public address of cloud, a one-to-one nat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "name: o\nnodes:\n" + tc.nodes + tc.steps
			topo, err := step.Parse("f.yaml", []byte(file))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%s\ndoes not parse: %v", file, err)
				}
				cloud := topo.Node("cloud")
				if cloud.NAT.Type != nat.OneToOne {
					t.Errorf("cloud's type is %q", cloud.NAT.Type)
				}
				if host, msg := topo.OneToOneHost(cloud); host == nil || host.Name != "vm" {
					t.Errorf("OneToOneHost(cloud) = %v, %q; want vm", host, msg)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s\nparses, want %s", file, tc.want)
			}
			topology.CheckErrorList(t, "f.yaml", err)
			if list := err.(topology.ErrorList); len(list) != 1 || !strings.HasPrefix(list[0].Error(), tc.want) {
				t.Errorf("%s\ngives\n%v\nwant one error starting\n%s", file, err, tc.want)
			}
		})
	}
}

// TestOneToOneDescribed checks the line natlab show prints of a
// one-to-one nat and the one natlab status prints: neither claims a port
// allocation or a timeout the nat does not have.
func TestOneToOneDescribed(t *testing.T) {
	topo, err := topology.Parse("f.yaml", []byte("nodes:\n  cloud: {kind: nat, type: one-to-one}\n  vm: {kind: host, behind: cloud}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	const show = "  one-to-one: mapping endpoint-independent, filtering endpoint-independent, every port to its host, kept, hairpin, port-mapping none\n"
	if s := topo.String(); !strings.Contains(s, show) {
		t.Errorf("String =\n%s\nwant the line\n%s", s, show)
	}
	if got, want := topo.Node("cloud").NAT.Summary(), "one-to-one, every port to its host, kept, hairpin"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if host, msg := topo.OneToOneHost(topo.Node("cloud")); host == nil || msg != "" {
		t.Errorf("OneToOneHost = %v, %q", host, msg)
	}
	// A nat with two hosts behind it is no one-to-one nat's place, as
	// when the page switches one on a running lab.
	topo, err = topology.Parse("f.yaml", []byte("nodes:\n  home: {kind: nat}\n  a: {kind: host, behind: home}\n  b: {kind: host, behind: home}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if host, msg := topo.OneToOneHost(topo.Node("home")); host != nil || !strings.Contains(msg, "2 nodes are behind home") {
		t.Errorf("OneToOneHost(home) = %v, %q", host, msg)
	}
}
