package topology_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natlab/natlab/nat"
	"github.com/natlab/natlab/step"
)

// TestPortBlock checks what port-block: gives a nat, in its short and
// long forms, and that its subscribers are the nodes behind it in the
// order of their addresses.
func TestPortBlock(t *testing.T) {
	for _, tc := range []struct {
		name, nat string
		want      nat.PortBlocks
		ports     nat.PortAllocation
	}{
		{name: "short", nat: "{kind: nat, port-block: 128}",
			want: nat.PortBlocks{Size: 128, Count: 1, Quota: 128, ICMP: true, ReuseDelay: 2 * time.Minute}, ports: nat.PortRandom},
		{name: "long", nat: "{kind: nat, ports: sequential, port-block: {size: 32, blocks: 2, quota: 40, exhausted: drop, reuse-delay: 10s}}",
			want: nat.PortBlocks{Size: 32, Count: 2, Quota: 40, ReuseDelay: 10 * time.Second}, ports: nat.PortSequential},
		{name: "no reuse delay", nat: "{kind: nat, port-block: {size: 64, reuse-delay: 0}}",
			want: nat.PortBlocks{Size: 64, Count: 1, Quota: 64, ICMP: true}, ports: nat.PortRandom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "nodes:\n  cgn: " + tc.nat + "\n  b: {kind: host, behind: cgn, address: 192.168.1.9}\n  a: {kind: host, behind: cgn}\n"
			topo, err := step.Parse("f.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			n := topo.Node("cgn")
			if n.NAT.Blocks != tc.want || n.NAT.Behaviour.Ports != tc.ports {
				t.Errorf("blocks %+v, ports %s; want %+v, %s", n.NAT.Blocks, n.NAT.Behaviour.Ports, tc.want, tc.ports)
			}
			subs := topo.Subscribers(n)
			var got []string
			for _, s := range subs {
				got = append(got, s.Node.Name+" "+s.Addr.String())
			}
			if want := []string{"a 192.168.1.2", "b 192.168.1.9"}; !slices.Equal(got, want) {
				t.Errorf("subscribers %v, want %v", got, want)
			}
			r := n.NAT.Behaviour.PortRange
			if len(subs) == 2 && (!slices.Equal(subs[0].Blocks, tc.want.Blocks(0, r)) || !slices.Equal(subs[1].Blocks, tc.want.Blocks(1, r)) || len(subs[1].Blocks) != tc.want.Count) {
				t.Errorf("blocks %v and %v", subs[0].Blocks, subs[1].Blocks)
			}
		})
	}
	// A move behind or away from one is refused.
	topo, err := step.Parse("f.yaml", []byte("nodes:\n  cgn: {kind: nat, port-block: 128}\n  home: {kind: nat}\n  a: {kind: host, behind: home}\n  b: {kind: host, behind: cgn}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{"a", "cgn"}, {"b", "home"}} {
		if p := topo.MoveProblem(topo.Node(m[0]), m[1]); !strings.Contains(p, "allocates ports in blocks") {
			t.Errorf("move %s behind %s: %q", m[0], m[1], p)
		}
	}
}
